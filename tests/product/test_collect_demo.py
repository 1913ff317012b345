"""`kubeinv collect` and `kubeinv demo` end to end: real subprocesses, simulator, PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from collector.sim import ClusterSpec, FleetSpec
from collector.store.embedded import EmbeddedServer

from .conftest import clean_env, kubeinv_async

SECRET_TOKEN_FRAGMENT_LEN = 12


def _secrets_of(kubeconfig: Path) -> list[str]:
    import yaml  # noqa: PLC0415

    doc = yaml.safe_load(kubeconfig.read_text())
    found = []
    for user in doc.get("users", []):
        u = user.get("user") or {}
        for key in ("token", "client-key-data", "password"):
            if u.get(key):
                found.append(str(u[key]))
    return found


async def test_dry_run_json_needs_no_database_and_exit_codes(
    sim_fleet: Callable[..., object], tmp_path: Path
) -> None:
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(
            clusters=[
                ClusterSpec(name="one", version="v1.30.6", nodes=2, users=("token",)),
                ClusterSpec(name="two", version="v1.31.2", flavour="eks", nodes=3),
            ]
        )
    )
    # An unreachable database: a dry run must not try it.
    env = clean_env(tmp_path, {"KUBEINV_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    result = await kubeinv_async(
        "collect",
        "--dry-run",
        "--output",
        "json",
        "--kubeconfig",
        str(fleet.kubeconfig),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "ok"
    assert sorted(o["context_name"] for o in doc["outcomes"]) == ["one", "two"]
    by_nodes = sorted(len(inv["nodes"]) for inv in doc["inventories"])
    assert by_nodes == [2, 3]
    versions = sorted(inv["version"]["git_version"] for inv in doc["inventories"])
    assert versions[0].startswith("v1.30.6")
    assert all(inv["api_resources"] for inv in doc["inventories"])
    for secret in _secrets_of(fleet.kubeconfig):
        assert secret not in result.stdout + result.stderr

    # One cluster refusing nodes: exit 1, table summary names the partial target.
    fleet.cluster("two").faults.fail("/api/v1/nodes", 403)
    result = await kubeinv_async(
        "collect", "--dry-run", "--kubeconfig", str(fleet.kubeconfig), env=env
    )
    assert result.returncode == 1, result.stderr
    assert "dry run (nothing stored)" in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("two "))
    assert "partial" in line and "Forbidden" in line


async def test_collect_stores_and_reports_exit_1_when_a_cluster_is_down(
    sim_fleet: Callable[..., object], pg_dsn: str, tmp_path: Path
) -> None:
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(
            clusters=[
                ClusterSpec(name="up", version="v1.29.10", flavour="k3s", nodes=2),
                ClusterSpec(name="down", server="closed-port"),
            ]
        )
    )
    env = clean_env(tmp_path, {"KUBEINV_DATABASE_URL": pg_dsn})
    result = await kubeinv_async(
        "collect", "--kubeconfig", str(fleet.kubeconfig), "--log-format", "json", env=env
    )
    assert result.returncode == 1, result.stderr
    assert "run 1: 1/2 targets ok" in result.stdout
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(
            "SELECT context_name, status, error_class FROM inventory.cluster_collection "
            "ORDER BY context_name"
        )
        assert [(r["context_name"], r["status"], r["error_class"]) for r in rows] == [
            ("down", "failed", "Unreachable"),
            ("up", "ok", None),
        ]
        assert await conn.fetchval("SELECT node_count FROM inventory.cluster_current") == 2
        assert await conn.fetchval("SELECT status FROM inventory.collection_run") == "partial"
    finally:
        await conn.close()
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(line.get("context") == "down" for line in logged)


@pytest.fixture
def demo_data_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="kinv-demo-"))
    base.chmod(0o755)
    try:
        yield base / "data"
    finally:
        EmbeddedServer(base / "data").stop()
        shutil.rmtree(base, ignore_errors=True)


async def _snapshot(dsn: str) -> dict[str, str]:
    """Every table of the database (any schema but the catalogs): its rows, hashed."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        )
        return {
            t["name"]: await conn.fetchval(
                f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' "
                f"ORDER BY t::text)), '') FROM {t['name']} t"
            )
            for t in tables
        }
    finally:
        await conn.close()


def _demo(env: dict[str, str], workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", "demo", *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
async def test_two_demos_in_a_row_leave_the_inventory_as_it_was(
    demo_data_dir: Path, tmp_path: Path, pg_dsn: str, sim_fleet: Callable[..., object]
) -> None:
    """The README's demo: exit 0, every section printed, into the scratch database kubeinv_demo
    of the embedded server, recreated each time, even with KUBEINV_DATABASE_URL set; neither that
    database nor the embedded server's inventory database changes."""
    # A configured inventory with a cluster in it, and an embedded inventory database.
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(clusters=[ClusterSpec(name="real-prod", version="v1.30.6", nodes=2)])
    )
    configured = clean_env(tmp_path, {"KUBEINV_DATABASE_URL": pg_dsn})
    stored = await kubeinv_async("collect", "--kubeconfig", str(fleet.kubeconfig), env=configured)
    assert stored.returncode == 0, stored.stderr
    embedded_env = clean_env(tmp_path, {"KUBEINV_DATA_DIR": str(demo_data_dir)})
    migrated = await kubeinv_async("migrate", env=embedded_env)
    assert migrated.returncode == 0, migrated.stderr
    inventory_dsn = EmbeddedServer(demo_data_dir).dsn()
    before = await _snapshot(pg_dsn), await _snapshot(inventory_dsn)
    assert before[0]["inventory.cluster"].startswith("1:")

    env = {**embedded_env, "KUBEINV_DATABASE_URL": pg_dsn}
    workdir = tmp_path / "work"
    workdir.mkdir()
    for _ in range(2):
        result = await asyncio.to_thread(_demo, env, workdir)
        assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for section in (
        "1. First collection",
        "2. The fleet changes",
        "3. Second collection",
        "4. Fleet summary",
        "5. Version history",
        "6. Changes between the runs",
        "7. Version skew",
        "8. Support status",
    ):
        assert section in out, section
    assert "run 1: 7/8 targets ok, 6 clusters" in out  # run 1: a fresh database each time
    assert "ok (dedup)" in out
    assert "dr-site" in out and "Unreachable" in out
    history = out.split("5. Version history")[1].split("== 6.")[0]
    prod_us = [ln for ln in history.splitlines() if ln.startswith("prod-us")]
    assert len(prod_us) == 2  # the upgrade closed one version and opened another
    assert "v1.30.6" in prod_us[0] and "(current)" not in prod_us[0]
    assert "v1.31.2" in prod_us[1] and "(current)" in prod_us[1]
    changes = out.split("6. Changes between the runs")[1].split("== 7.")[0]
    assert "node-removed" in changes and "version" in changes
    assert "scratch database kubeinv_demo of the embedded PostgreSQL" in out
    chart = workdir / "kubeinv-versions.html"
    assert (chart.is_file() and "<svg" in chart.read_text()) or "<canvas" in chart.read_text()
    assert (demo_data_dir / "pgdata" / "PG_VERSION").is_file()
    if os.geteuid() == 0:
        assert (demo_data_dir / "pgdata").stat().st_uid != 0  # the server ran as 'nobody'

    # Both inventories are as they were; the scratch database holds one demo: 6 clusters.
    assert (await _snapshot(pg_dsn), await _snapshot(inventory_dsn)) == before
    demo_dsn = EmbeddedServer(demo_data_dir).dsn("kubeinv_demo")
    conn = await asyncpg.connect(demo_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM inventory.cluster") == 6
        assert await conn.fetchval("SELECT count(*) FROM inventory.demo_cluster") == 6
    finally:
        await conn.close()
    # The last line: a psql command for the demo's database, which psql accepts.
    last = out.strip().splitlines()[-1]
    assert last == f"psql '{demo_dsn}' -c 'table inventory.cluster_current'"
    psql = shutil.which("psql")
    if psql is not None:
        shown = await asyncio.to_thread(
            subprocess.run,
            [psql, demo_dsn, "-Atc", "SELECT count(*) FROM inventory.cluster_current"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert shown.stdout.strip() == "6", shown.stderr


async def test_demo_database_url_refuses_an_inventory_with_real_clusters(
    tmp_path: Path, pg_dsn: str, pg_empty_dsn: str, sim_fleet: Callable[..., object]
) -> None:
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(clusters=[ClusterSpec(name="real-prod", version="v1.30.6", nodes=2)])
    )
    env = clean_env(tmp_path, {"KUBEINV_DATABASE_URL": pg_dsn})
    stored = await kubeinv_async("collect", "--kubeconfig", str(fleet.kubeconfig), env=env)
    assert stored.returncode == 0, stored.stderr
    before = await _snapshot(pg_dsn)
    refused = await kubeinv_async("demo", "--no-chart", "--database-url", pg_dsn, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "holds 1 cluster(s) that no demo created" in refused.stderr
    assert "Run 'kubeinv demo' without --database-url" in refused.stderr
    assert await _snapshot(pg_dsn) == before

    # A database holding no inventory yet is accepted; what the demo made is recorded as the
    # demo's, so a later demo is accepted too, and a cluster from elsewhere is not.
    from collector.store import open_store, redact_dsn  # noqa: PLC0415

    demo = await kubeinv_async("demo", "--no-chart", "--database-url", pg_empty_dsn, env=env)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "the database given with --database-url" in demo.stdout
    assert demo.stdout.strip().splitlines()[-1].startswith(f"psql '{redact_dsn(pg_empty_dsn)}'")
    assert await _snapshot(pg_dsn) == before
    store = await open_store(pg_empty_dsn)
    try:
        assert await store.non_demo_clusters() == []
        assert len(await store.cluster_registry()) == 6
        async with store.connection() as conn:
            await conn.execute("INSERT INTO inventory.cluster (cluster_id) VALUES ('mine')")
        assert await store.non_demo_clusters() == ["mine"]
    finally:
        await store.close()


async def test_contexts_check_probes_each_target(
    sim_fleet: Callable[..., object], tmp_path: Path
) -> None:
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(
            clusters=[
                ClusterSpec(name="good", users=("cert-data", "invalid-token")),
                ClusterSpec(name="gone", server="closed-port"),
            ]
        )
    )
    env = clean_env(tmp_path)
    listed = await kubeinv_async("contexts", "-o", "json", "--kubeconfig", str(fleet.kubeconfig),
                                 env=env)  # fmt: skip
    assert listed.returncode == 0
    assert all("status" not in row for row in json.loads(listed.stdout))  # no network
    result = await kubeinv_async(
        "contexts", "--check", "-o", "json", "--kubeconfig", str(fleet.kubeconfig),
        "--timeout", "2", env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    rows = {row["context"]: row for row in json.loads(result.stdout)}
    assert len(rows) == 3
    good = [r for name, r in rows.items() if name.startswith("good") and r["status"] == "ok"]
    bad = [r for name, r in rows.items() if name.startswith("good") and r["status"] != "ok"]
    assert len(good) == 1 and good[0]["cluster_id"]
    assert len(bad) == 1 and bad[0]["error"].startswith("Auth")
    assert rows["gone"]["status"] == "failed"
    assert rows["gone"]["error"].startswith("Unreachable")
