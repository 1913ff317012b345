"""`kubeinv clusters [retire]`, `--retire-after` and `kubeinv db status|start|stop`, end to end:
real subprocesses, the simulator over HTTPS, a real PostgreSQL, a throwaway embedded server."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from collector.sim import ClusterSpec, FleetSpec
from collector.store.embedded import EmbeddedServer
from tests.plugins.pg import database_of

from .conftest import clean_env, kubeinv, kubeinv_async


async def test_clusters_lists_the_registry_after_a_retirement(
    sim_fleet: Callable[..., object], pg_dsn: str, tmp_path: Path
) -> None:
    kept = await sim_fleet(  # type: ignore[misc]
        FleetSpec(clusters=[ClusterSpec(name="prod-eu", version="v1.31.2", nodes=2)])
    )
    gone = await sim_fleet(  # type: ignore[misc]
        FleetSpec(clusters=[ClusterSpec(name="old-lab", version="v1.27.16", nodes=1)])
    )
    down = await sim_fleet(  # type: ignore[misc]
        FleetSpec(clusters=[ClusterSpec(name="dr-site", version="v1.30.6", nodes=1)])
    )
    env = clean_env(tmp_path, {"KUBEINV_DATABASE_URL": pg_dsn})
    every = ["--kubeconfig", str(kept.kubeconfig), "--kubeconfig", str(down.kubeconfig)]
    first = await kubeinv_async("collect", *every, "--kubeconfig", str(gone.kubeconfig), env=env)
    assert first.returncode == 0, first.stderr
    await down.stop()  # type: ignore[attr-defined]

    # old-lab's context is gone from the kubeconfigs; dr-site is down but still configured.
    kept_env = {**env, "KUBEINV_LIFECYCLE__RETIRE_AFTER": "7d"}
    second = await kubeinv_async("collect", *every, env=kept_env)
    assert second.returncode == 1, second.stderr
    assert "retired" not in second.stderr
    third = await kubeinv_async("collect", *every, "--retire-after", "0s", env=kept_env)
    assert third.returncode == 1, third.stderr
    assert "retired: no target has reached it since" in third.stderr

    listed = await kubeinv_async("clusters", "-o", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["context_names"][0]: r for r in json.loads(listed.stdout)}
    assert {name: r["state"] for name, r in rows.items()} == {
        "prod-eu": "active",
        "dr-site": "stale",
        "old-lab": "retired",
    }
    assert rows["old-lab"]["retired_by"] == "unseen" and rows["old-lab"]["retired_at"]
    assert rows["dr-site"]["retired_at"] is None and rows["dr-site"]["last_status"] == "failed"
    for column in (
        "cluster_id",
        "context_names",
        "first_seen_at",
        "last_collected_at",
        "last_status",
        "retired_at",
        "retired_by",
    ):
        assert column in rows["old-lab"], column

    as_csv = await kubeinv_async("clusters", "--output", "csv", env=env)
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["state"] for r in table] == ["active", "stale", "retired"]

    shown = await kubeinv_async("clusters", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:3] == ["STATE", "CONTEXTS", "CLUSTER_ID"]
    assert lines[1].startswith("active") and "prod-eu" in lines[1]
    assert lines[3].startswith("retired") and "old-lab" in lines[3] and "(unseen)" in lines[3]
    assert "3 clusters: 1 active, 1 stale, 1 retired" in shown.stdout

    # The fleet report no longer counts old-lab.
    fleet = await kubeinv_async("report", "fleet", "-o", "json", env=env)
    assert sorted(r["context_names"][0] for r in json.loads(fleet.stdout)) == [
        "dr-site",
        "prod-eu",
    ]

    # Retire by hand, by context name; a name that matches nothing is a usage error.
    retired = await kubeinv_async("clusters", "retire", "dr-site", env=env)
    assert retired.returncode == 0, retired.stderr
    assert retired.stdout.startswith("retired dr-site (")
    again = await kubeinv_async("clusters", "retire", "dr-site", env=env)
    assert "is retired already" in again.stdout
    unknown = await kubeinv_async("clusters", "retire", "nowhere", env=env)
    assert unknown.returncode == 2
    assert "no cluster has the id or context name 'nowhere'" in unknown.stderr
    listed = await kubeinv_async("clusters", "-o", "json", env=env)
    manual = [r for r in json.loads(listed.stdout) if r["context_names"] == ["dr-site"]]
    assert manual[0]["retired_by"] == "manual"


def _only_context(kubeconfig: Path, context: str, dest: Path) -> Path:
    """A copy of ``kubeconfig`` that defines only ``context``."""
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["contexts"] = [c for c in doc["contexts"] if c["name"] == context]
    dest.write_text(yaml.safe_dump(doc))
    return dest


async def test_a_run_narrowed_by_context_filters_retires_nothing_it_left_out(
    sim_fleet: Callable[..., object], pg_dsn: str, tmp_path: Path
) -> None:
    # A context that --context or --exclude-context leaves out is still configured: like a
    # cluster that is down, its cluster is reached, never retired, even with --retire-after 0s.
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(clusters=[ClusterSpec(name="prod", nodes=1), ClusterSpec(name="lab", nodes=1)])
    )
    env = clean_env(tmp_path, {"KUBEINV_DATABASE_URL": pg_dsn})
    config = ["--kubeconfig", str(fleet.kubeconfig)]  # type: ignore[attr-defined]
    first = await kubeinv_async("collect", *config, env=env)
    assert first.returncode == 0, first.stderr
    for narrowed in (["--context", "prod"], ["--exclude-context", "lab"]):
        run = await kubeinv_async("collect", *config, *narrowed, "--retire-after", "0s", env=env)
        assert run.returncode == 0, run.stderr
        assert "retired" not in run.stderr
    listed = await kubeinv_async("clusters", "-o", "json", env=env)
    states = {r["context_names"][0]: r["state"] for r in json.loads(listed.stdout)}
    assert states == {"prod": "active", "lab": "active"}

    # Gone from the kubeconfig, not filtered out: retired.
    alone = _only_context(fleet.kubeconfig, "prod", tmp_path / "prod-only.yaml")  # type: ignore[attr-defined]
    gone = await kubeinv_async(
        "collect", "--kubeconfig", str(alone), "--retire-after", "0s", env=env
    )
    assert gone.returncode == 0, gone.stderr
    assert "retired: no target has reached it" in gone.stderr
    listed = await kubeinv_async("clusters", "-o", "json", env=env)
    states = {r["context_names"][0]: r["state"] for r in json.loads(listed.stdout)}
    assert states == {"prod": "active", "lab": "retired"}


def test_retire_after_is_checked(tmp_path: Path) -> None:
    env = clean_env(tmp_path, {"KUBEINV_LIFECYCLE__RETIRE_AFTER": "soon"})
    result = kubeinv("collect", "--dry-run", env=env)
    assert result.returncode == 2
    assert "lifecycle.retire_after (from environment variable KUBEINV_LIFECYCLE__RETIRE_AFTER)" in (
        result.stderr
    )
    assert "never" in result.stderr
    helped = kubeinv("run", "--help", env=clean_env(tmp_path))
    assert "--retire-after DURATION" in helped.stdout


def test_db_start_stop_refuse_on_a_configured_database(tmp_path: Path) -> None:
    env = clean_env(tmp_path, {"KUBEINV_DATABASE_URL": "postgresql://u:s3cret@db.example:5432/x"})
    for action in ("start", "stop"):
        result = kubeinv("db", action, env=env)
        assert result.returncode == 2, result.stderr
        assert f"kubeinv db {action}: a database is configured" in result.stderr
        assert "only its embedded PostgreSQL" in result.stderr
        assert "s3cret" not in result.stderr


@pytest.fixture
def data_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="kinv-db-"))
    base.chmod(0o755)  # as root the server runs as 'nobody'
    try:
        yield base / "data"
    finally:
        EmbeddedServer(base / "data").stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_db_status_start_stop_on_the_embedded_server(data_dir: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, {"KUBEINV_DATA_DIR": str(data_dir)})
    fresh = kubeinv("db", "status", env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert "not created yet" in fresh.stdout
    assert not (data_dir / "pgdata").exists()  # status starts and creates nothing

    started = kubeinv("db", "start", env=env, timeout=180)
    assert started.returncode == 0, started.stderr
    pid = EmbeddedServer(data_dir).running_pid()
    assert pid is not None and f"pid {pid}" in started.stdout

    status = kubeinv("db", "status", env=env)
    fields = dict(line.split(":", 1) for line in status.stdout.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["embedded PostgreSQL"] == f"running (pid {pid})"
    assert fields["data dir"] == str(data_dir)
    assert fields["version"].startswith("PostgreSQL ")
    major = (data_dir / "pgdata" / "PG_VERSION").read_text().strip()
    assert fields["version"].split()[1].split(".")[0] == major
    assert fields["pid"] == str(pid)
    assert fields["size"].endswith(("MiB", "GiB"))
    assert fields["socket"] == str(data_dir / "run" / ".s.PGSQL.5432")
    assert (data_dir / "run" / ".s.PGSQL.5432").exists()

    assert "running already" in kubeinv("db", "start", env=env).stdout
    stopped = kubeinv("db", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the embedded PostgreSQL (pid {pid}" in stopped.stdout
    assert EmbeddedServer(data_dir).running_pid() is None
    after = kubeinv("db", "status", env=env)
    assert "embedded PostgreSQL: stopped" in after.stdout
    assert "not running" in kubeinv("db", "stop", env=env).stdout

    # The next command that needs it starts it again.
    url = kubeinv("db", "url", env=env, timeout=180)
    assert url.returncode == 0, url.stderr
    assert EmbeddedServer(data_dir).running_pid() is not None


def test_db_status_on_a_configured_database(pg_dsn: str, tmp_path: Path) -> None:
    env = clean_env(tmp_path, {"KUBEINV_DATABASE_URL": pg_dsn})
    result = kubeinv("db", "status", env=env)
    assert result.returncode == 0, result.stderr
    assert "configured (not the embedded server)" in result.stdout
    assert "version:   PostgreSQL " in result.stdout
    database = database_of(pg_dsn)  # the embedded server's DSN has host=/socket/dir
    assert f"database:  {database}, " in result.stdout
