"""Settings: flags > environment > TOML file > defaults; invalid settings name the key (exit 2)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from collector.errors import SettingsError
from collector.settings import (
    Settings,
    default_data_dir,
    load_settings,
    parse_duration,
)

from .conftest import kubeinv, write_kubeconfig


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kubeinv.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_source(tmp_path: Path) -> None:
    s = load_settings({}, environ={"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "x")})
    assert s.database_url is None
    assert s.collection.concurrency == 32
    assert s.collection.timeout == 10.0
    assert s.schedule.interval == "15m"
    assert s.schedule.run_at_start is True
    assert s.metrics.port is None
    assert s.log.format == "text"


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    cfg = _file(
        tmp_path,
        "[collection]\nconcurrency = 5\ntimeout = 7.5\npage_size = 50\n"
        '[schedule]\ninterval = "1h"\njitter = 3\n',
    )
    environ = {
        "KUBEINV_CONFIG": str(cfg),
        "KUBEINV_COLLECTION__CONCURRENCY": "6",
        "KUBEINV_COLLECTION__TIMEOUT": "8",
        "KUBEINV_SCHEDULE__INTERVAL": "30m",
    }
    s = load_settings({"collection": {"concurrency": 7}}, environ=environ)
    assert s.collection.concurrency == 7  # flag beats env and file
    assert s.collection.timeout == 8.0  # env beats file
    assert s.collection.page_size == 50  # file beats default
    assert s.schedule.interval == "30m"  # env beats file within a table
    assert s.schedule.jitter == 3  # the rest of the file's table is kept
    assert s.collection.cluster_timeout == 60.0  # default
    assert s.config_file == cfg


def test_config_flag_beats_kubeinv_config_env(tmp_path: Path) -> None:
    a = _file(tmp_path, "[collection]\nconcurrency = 3\n")
    b = tmp_path / "b.toml"
    b.write_text("[collection]\nconcurrency = 4\n")
    s = load_settings({}, config_file=b, environ={"KUBEINV_CONFIG": str(a)})
    assert s.collection.concurrency == 4


def test_lists_from_env_as_csv_or_json_and_top_level_keys(tmp_path: Path) -> None:
    s = load_settings(
        {},
        environ={
            "KUBEINV_KUBECONFIGS": "/a.yaml,/b/*.yaml",
            "KUBEINV_CONTEXTS": '["prod-*", "stage"]',
            "KUBEINV_DATABASE_URL": "postgresql://u@db:5432/inv",
            "KUBEINV_DATA_DIR": str(tmp_path / "d"),
            "KUBEINV_IN_CLUSTER": "true",
        },
    )
    assert s.kubeconfigs == ["/a.yaml", "/b/*.yaml"]
    assert s.contexts == ["prod-*", "stage"]
    assert s.database_url == "postgresql://u@db:5432/inv"
    assert s.data_dir == tmp_path / "d"
    assert s.in_cluster is True


def test_default_data_dir_follows_xdg(tmp_path: Path) -> None:
    assert default_data_dir({"XDG_DATA_HOME": "/x"}, is_root=False) == Path("/x/kubeinv")
    assert default_data_dir({"HOME": "/home/a"}, is_root=False) == Path(
        "/home/a/.local/share/kubeinv"
    )
    assert default_data_dir({"XDG_DATA_HOME": "/x"}, is_root=True) == Path("/var/lib/kubeinv")


def test_the_example_config_is_valid_and_documents_every_key() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "kubeinv.example.toml"
    s = load_settings({}, config_file=example, environ={})
    assert s.collection.concurrency == 32
    text = example.read_text()
    top = [name for name, f in Settings.model_fields.items() if not f.exclude]
    for name in top:
        assert name in text, name
    # Every section of Settings, found in its fields: a new section is checked at once.
    sections = {
        name: f.annotation
        for name, f in Settings.model_fields.items()
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)
    }
    assert {"collection", "schedule", "metrics", "log", "lifecycle", "retention"} <= set(sections)
    for section, model in sections.items():
        assert f"[{section}]" in text
        for key in model.model_fields:
            assert f"{key} =" in text, f"{section}.{key} is not documented"


def test_a_duration_setting_keeps_its_text_with_its_meaning() -> None:
    s = load_settings(
        {"retention": {"ledger": 30}}, environ={"KUBEINV_LIFECYCLE__RETIRE_AFTER": "never"}
    )
    assert (s.retention.ledger, s.retention.ledger.delta) == ("30s", timedelta(seconds=30))
    assert (s.lifecycle.retire_after, s.lifecycle.retire_after.delta) == ("never", None)
    assert copy.deepcopy(s).retention.ledger.delta == timedelta(seconds=30)
    default = Settings()
    assert (default.lifecycle.retire_after, default.lifecycle.retire_after.delta) == (
        "7d",
        timedelta(days=7),
    )
    assert default.retention.ledger.delta == timedelta(days=90)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("15m", 900), ("1h30m", 5400), ("90s", 90), ("500ms", 0.5), ("2d", 172800), ("45", 45)],
)
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text).total_seconds() == expected


@pytest.mark.parametrize("text", ["", "soon", "15 m", "m15", "-5", "0", "1h-5m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("flags", "environ", "toml", "needles"),
    [
        (
            {},
            {"KUBEINV_SCHEDULE__INTERVAL": "soon"},
            None,
            ["schedule.interval", "KUBEINV_SCHEDULE__INTERVAL", "'soon'", "15m"],
        ),
        (
            {"collection": {"concurrency": 0}},
            {},
            None,
            ["collection.concurrency", "--concurrency", "greater than or equal to 1"],
        ),
        (
            {},
            {"KUBEINV_COLLECTION__TIMEOUT": "fast"},
            None,
            ["collection.timeout", "KUBEINV_COLLECTION__TIMEOUT", "'fast'"],
        ),
        ({}, {}, "[log]\nformat = 'xml'\n", ["log.format", "config file", "'text' or 'json'"]),
        ({}, {}, "[schedul]\ninterval = '5m'\n", ["unknown setting 'schedul'"]),
        ({}, {}, "[schedule]\nintervall = '5m'\n", ["schedule.intervall", "unknown setting"]),
        ({}, {}, "[collection\n", ["not valid TOML", "line 1"]),
        ({}, {"KUBEINV_SCHEDULE__CRON": "61 * * * *"}, None, ["schedule.cron", "61"]),
        ({}, {"KUBEINV_SCHEDULE__CRON": "* * *"}, None, ["schedule.cron", "5 fields"]),
        ({}, {"KUBEINV_SCHEDULE__TIMEZONE": "Mars/Olympus"}, None, ["schedule.timezone"]),
        ({}, {"KUBEINV_METRICS__PORT": "70000"}, None, ["metrics.port", "65535"]),
        (
            {},
            {"KUBEINV_DATABASE_URL": "mysql://root:hunter2@db/x"},
            None,
            ["database_url", "postgresql://"],
        ),
    ],
)
def test_invalid_settings_name_the_key_and_source(
    tmp_path: Path,
    flags: dict[str, object],
    environ: dict[str, str],
    toml: str | None,
    needles: list[str],
) -> None:
    cfg = _file(tmp_path, toml) if toml is not None else None
    with pytest.raises(SettingsError) as info:
        load_settings(
            flags,
            config_file=cfg,
            environ=environ,
            flag_names={"collection.concurrency": "--concurrency"},
        )
    message = info.value.message
    for needle in needles:
        assert needle in message, (needle, message)
    assert "hunter2" not in message  # a DSN's password is never echoed
    if cfg is not None and "unknown setting 'schedul'" not in needles:
        assert str(cfg) in message


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"config file .*nope\.toml: not found"):
        load_settings({}, config_file=tmp_path / "nope.toml", environ={})


# --- through the real command line ----------------------------------------------------------


def test_cli_precedence_flag_env_file_for_kubeconfigs(tmp_path: Path, env: dict[str, str]) -> None:
    """Which kubeconfig `kubeinv contexts` reads: the flag's, else the env's, else the file's."""
    from_file = write_kubeconfig(tmp_path / "file.yaml", {"from-file": "https://127.0.0.1:1"})
    from_env = write_kubeconfig(tmp_path / "env.yaml", {"from-env": "https://127.0.0.1:1"})
    from_flag = write_kubeconfig(tmp_path / "flag.yaml", {"from-flag": "https://127.0.0.1:1"})
    cfg = _file(tmp_path, f'kubeconfigs = ["{from_file}"]\n')

    def contexts(*args: str, **extra: str) -> list[str]:
        result = kubeinv("contexts", "-o", "json", *args, env={**env, **extra})
        assert result.returncode == 0, result.stderr
        return [row["context"] for row in json.loads(result.stdout)]

    assert contexts("--config", str(cfg)) == ["from-file"]
    assert contexts("--config", str(cfg), KUBEINV_KUBECONFIGS=str(from_env)) == ["from-env"]
    assert contexts(
        "--config", str(cfg), "--kubeconfig", str(from_flag), KUBEINV_KUBECONFIGS=str(from_env)
    ) == ["from-flag"]
    # KUBEINV_CONFIG names the file when --config is absent.
    assert contexts(KUBEINV_CONFIG=str(cfg)) == ["from-file"]


def test_cli_invalid_setting_exits_2_with_the_key(tmp_path: Path, env: dict[str, str]) -> None:
    kc = write_kubeconfig(tmp_path / "kc.yaml", {"a": "https://127.0.0.1:1"})
    result = kubeinv(
        "contexts", "--kubeconfig", str(kc), env={**env, "KUBEINV_COLLECTION__CONCURRENCY": "x"}
    )
    assert result.returncode == 2
    assert "collection.concurrency" in result.stderr
    assert "KUBEINV_COLLECTION__CONCURRENCY" in result.stderr
    assert "Traceback" not in result.stderr

    result = kubeinv("run", "--interval", "whenever", "--kubeconfig", str(kc), env=env)
    assert result.returncode == 2
    assert "schedule.interval (from flag --interval)" in result.stderr

    bad = _file(tmp_path, "[collection]\nconcurrency = 'many'\n")
    result = kubeinv("collect", "--dry-run", "--config", str(bad), env=env)
    assert result.returncode == 2
    assert f"collection.concurrency (from config file {bad})" in result.stderr
