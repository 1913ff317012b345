"""The command line: --help for every command and flag, lazy imports, exit codes."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from collector import __version__
from collector.cli import build_parser

from .conftest import REPO, kubeinv, write_kubeconfig

COMMANDS = [
    ["collect"],
    ["run"],
    ["contexts"],
    ["migrate"],
    ["report"],
    ["demo"],
    ["sim", "serve"],
    ["db", "url"],
]


def _subparser(argv: list[str]) -> argparse.ArgumentParser:
    parser = build_parser(argv)
    for word in argv:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_flag_has_help(argv: list[str]) -> None:
    parser = _subparser(argv)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if action.option_strings:
            assert action.help and len(action.help) > 10, (argv, action.option_strings)


def test_design_flags_exist_on_collect_and_run() -> None:
    for command in ("collect", "run"):
        options = {o for a in _subparser([command])._actions for o in a.option_strings}
        for flag in (
            "--kubeconfig",
            "--context",
            "--exclude-context",
            "--database-url",
            "--config",
            "--concurrency",
            "--timeout",
            "--cluster-timeout",
            "--log-format",
            "-v",
            "--in-cluster",
        ):
            assert flag in options, (command, flag)
    assert "--output" in {o for a in _subparser(["collect"])._actions for o in a.option_strings}
    run_options = {o for a in _subparser(["run"])._actions for o in a.option_strings}
    assert {"--interval", "--cron", "--jitter", "--metrics-port"} <= run_options


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_of_every_command(argv: list[str], env: dict[str, str]) -> None:
    result = kubeinv(*argv, "--help", env=env)
    assert result.returncode == 0, result.stderr
    assert "usage: kubeinv" in result.stdout


def test_top_level_help_lists_every_command(env: dict[str, str]) -> None:
    result = kubeinv("--help", env=env)
    assert result.returncode == 0
    for command in ("collect", "run", "contexts", "migrate", "report", "demo", "sim", "db"):
        assert f"\n    {command} " in result.stdout
    assert "Exit codes" in result.stdout


def test_version_and_python_dash_m(env: dict[str, str]) -> None:
    result = kubeinv("--version", env=env)
    assert result.returncode == 0
    assert result.stdout.strip() == f"kubeinv {__version__}"


def test_usage_error_exits_2(env: dict[str, str]) -> None:
    assert kubeinv(env=env).returncode == 2
    assert kubeinv("nonsense", env=env).returncode == 2
    assert kubeinv("collect", "--concurrency", "many", env=env).returncode == 2


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["collect", "--help"], ["contexts"]],
    ids=["help", "collect-help", "contexts"],
)
def test_lazy_imports(argv: list[str], tmp_path: Path) -> None:
    """Neither kubernetes_asyncio (~0.45 s) nor asyncpg is imported where they are not needed."""
    kc = write_kubeconfig(tmp_path / "kc.yaml", {"a": "https://127.0.0.1:1"})
    code = (
        "import sys\n"
        "from collector.cli import main\n"
        f"argv = {argv!r}\n"
        f"if argv == ['contexts']: argv += ['--kubeconfig', {str(kc)!r}]\n"
        "try:\n    main(argv)\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('kubernetes_asyncio', 'asyncpg', 'aiohttp'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "HEAVY []" in result.stderr, result.stderr[-2000:]


# --- exit codes -----------------------------------------------------------------------------


def test_no_target_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    # No flag, no KUBECONFIG, an empty HOME: nothing to collect.
    result = kubeinv("collect", "--dry-run", env=env)
    assert result.returncode == 2
    assert "no target" in result.stderr
    kc = write_kubeconfig(tmp_path / "kc.yaml", {"a": "https://127.0.0.1:1"})
    result = kubeinv("collect", "--dry-run", "--kubeconfig", str(kc), "--context", "zz*", env=env)
    assert result.returncode == 2
    assert "--context zz*" in result.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_down_exits_3_with_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    kc = write_kubeconfig(tmp_path / "kc.yaml", {"a": "https://127.0.0.1:1"})
    dsn = f"postgresql://kubeinv:pa55word@127.0.0.1:{_closed_port()}/kubeinv"
    result = kubeinv("collect", "--kubeconfig", str(kc), "--database-url", dsn, env=env)
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("kubeinv: error:")]
    assert len(errors) == 1, result.stderr
    assert "PostgreSQL" in errors[0]
    assert "pa55word" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr

    # The daemon waits for it instead: tests/product/test_daemon.py.


def test_contexts_lists_file_context_server_auth(tmp_path: Path, env: dict[str, str]) -> None:
    kc = write_kubeconfig(
        tmp_path / "kc.yaml",
        {"prod": "https://10.0.0.1:6443", "stage": "https://10.0.0.2:6443"},
        token="s3cr3t-token-value",
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters: [unclosed\n")
    result = kubeinv("contexts", "--kubeconfig", str(kc), env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["CURRENT", "KUBECONFIG", "CONTEXT", "SERVER", "AUTH", "PROBLEM"]
    assert lines[2].split() == ["*", str(kc), "prod", "https://10.0.0.1:6443", "token"]
    assert lines[3].split() == [str(kc), "stage", "https://10.0.0.2:6443", "token"]
    if shutil.which("kubectl"):  # the same star as kubectl's
        theirs = subprocess.run(
            ["kubectl", "config", "get-contexts", "--kubeconfig", str(kc)],
            capture_output=True,
            text=True,
            check=True,
            env={**env, "HOME": str(tmp_path)},
        ).stdout.splitlines()
        assert [line.split()[:2] for line in theirs[1:]] == [["*", "prod"], ["stage", "stage"]]

    result = kubeinv(
        "contexts", "-o", "json", "--kubeconfig", str(kc), "--kubeconfig", str(bad), env=env
    )
    assert result.returncode == 1  # a broken file is a failed target
    rows = json.loads(result.stdout)
    assert [r["context"] for r in rows] == ["prod", "stage", None]
    assert [r["current"] for r in rows] == [True, False, False]
    assert rows[2]["kubeconfig"] == str(bad)
    assert str(bad) in rows[2]["problem"]
    assert "s3cr3t-token-value" not in result.stdout + result.stderr
