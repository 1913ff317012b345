"""Database faults end to end: PostgreSQL down at start, a collector SIGKILLed in the middle of a
cluster's store, two collectors at once on one database.

(PostgreSQL restarted while the daemon runs is tested in tests/product/test_daemon.py.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from collector.sim import ClusterSpec, Fleet
from tests.plugins.pg import database_of

from .harness import (
    assert_get_only,
    assert_stored_in_full,
    cli_env,
    collect_argv,
    connect,
    kubeinv,
    start,
    stored_state,
)

pytestmark = pytest.mark.slow


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_postgres_down_at_start_exits_3_with_one_line(sim_fleet, tmp_path):
    fleet: Fleet = await sim_fleet(clusters=[ClusterSpec(name="a")])
    dsn = f"postgresql://kubeinv:hunter2-pw@127.0.0.1:{_closed_port()}/kubeinv"
    result = await kubeinv(*collect_argv(fleet.kubeconfig_paths, dsn), env=cli_env(tmp_path))
    assert result.code == 3, str(result)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, str(result)  # one line: the reason, no traceback
    assert lines[0].startswith("kubeinv: error:") and "PostgreSQL" in lines[0], lines[0]
    assert "hunter2-pw" not in result.stderr + result.stdout
    assert result.elapsed < 60
    # nothing was collected: the database is checked before any cluster is contacted
    assert list(fleet.cluster("a").request_log) == []


async def _waiting_backends(dsn: str, database: str) -> list[int]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


async def _backends_alive(dsn: str, pids: list[int]) -> bool:
    conn = await connect(dsn)
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
            )
        )
    finally:
        await conn.close()


async def _poll(predicate: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_sigkill_during_a_large_store_leaves_old_or_new_state_never_a_mix(
    sim_fleet, pg_dsn, tmp_path
):
    fleet: Fleet = await sim_fleet(
        clusters=[
            ClusterSpec(name="big", nodes=2500, version="v1.31.2"),
            ClusterSpec(name="other", nodes=600, version="v1.31.2"),
        ]
    )
    big, other = fleet.cluster("big"), fleet.cluster("other")
    env = cli_env(tmp_path / "home")
    argv = collect_argv(fleet.kubeconfig_paths, pg_dsn, cluster_timeout=120, output=None)
    first = await kubeinv(*argv, env=env)
    assert first.code == 0, str(first)
    old_big = await assert_stored_in_full(pg_dsn, big)

    # Every node changes (kubelets upgraded), one goes, one comes; discovery changes too.
    for cluster in (big, other):
        cluster.upgrade("v1.32.1", kubelets=True)
        cluster.remove_node(cluster.node_names[0])
        cluster.add_node()

    # Hold a row lock on big's current API resources: its store transaction has written the
    # cluster row, its version and all its nodes when it reaches them, and waits there.
    database = database_of(pg_dsn)
    blocker = await connect(pg_dsn)
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute(
        "SELECT 1 FROM inventory.api_resource_history WHERE cluster_id = $1 "
        "AND valid_to IS NULL FOR UPDATE",
        big.uid,
    )
    proc = await start(*argv, env=env)
    try:

        async def big_is_blocked() -> bool:
            assert proc.returncode is None, "the collector ended before it was blocked"
            return bool(await _waiting_backends(pg_dsn, database))

        async def other_is_stored() -> bool:
            state = await stored_state(pg_dsn, other.uid)
            return bool(state["cluster"]) and state["cluster"]["git_version"] == "v1.32.1"

        await _poll(big_is_blocked, 120, "big's store to reach the locked rows")
        await _poll(other_is_stored, 120, "the other cluster to be stored")
        blocked = await _waiting_backends(pg_dsn, database)
        proc.kill()  # SIGKILL in the middle of big's store transaction
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await tx.rollback()
        await blocker.close()

    await _poll(lambda: _not(_backends_alive(pg_dsn, blocked)), 60, "the killed backends to end")
    # big: complete old state (version, nodes and their kubelets, API resources)
    after_big = await stored_state(pg_dsn, big.uid)
    assert after_big["cluster"]["git_version"] == old_big["cluster"]["git_version"] == "v1.31.2"
    assert after_big["nodes"] == old_big["nodes"]
    assert after_big["api"] == old_big["api"]
    assert after_big["cluster"]["node_count"] == 2500
    # other: complete new state
    await assert_stored_in_full(pg_dsn, other)

    assert_get_only(fleet.clusters)


async def _not(awaitable: Any) -> bool:
    return not await awaitable


async def test_two_collectors_at_once_collect_each_cluster_once(sim_fleet, pg_dsn, tmp_path):
    fleet: Fleet = await sim_fleet(
        clusters=[ClusterSpec(name=f"c{i}", nodes=3, latency=1.0) for i in range(4)]
    )
    env = cli_env(tmp_path / "home")
    argv = collect_argv(fleet.kubeconfig_paths, pg_dsn, cluster_timeout=60)
    procs = [await start(*argv, env=env) for _ in range(2)]
    results = await asyncio.gather(*(p.communicate() for p in procs))
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
    conn = await connect(pg_dsn)
    try:
        runs = await conn.fetch(
            "SELECT run_id, started_at, finished_at FROM inventory.collection_run"
        )
        rows = await conn.fetch("SELECT * FROM inventory.cluster_collection")
        versions = await conn.fetch(
            "SELECT cluster_id, count(*) AS n FROM inventory.cluster_version_history "
            "GROUP BY cluster_id"
        )
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT cluster_id, name FROM inventory.node_history "
            "GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
    finally:
        await conn.close()
    assert len(runs) == 2
    # the two runs overlapped in time: the test really ran two collectors at once
    (a, b) = sorted(runs, key=lambda r: r["started_at"])
    assert b["started_at"] < a["finished_at"]
    for cluster in fleet.clusters:
        mine = [r for r in rows if r["cluster_id"] == cluster.uid]
        assert len(mine) == 2  # one ledger row per run
        collected = [r for r in mine if not r["deduplicated"]]
        assert len(collected) == 1, mine  # collected by exactly one of the two collectors
        # the other ledger row says who collected the cluster instead of it
        (skipped,) = [r for r in mine if r["deduplicated"]]
        assert skipped["error_message"].startswith(
            f"not collected by this run: run {collected[0]['run_id']} ("
        ), skipped
        assert all(r["status"] == "ok" for r in mine)
        await assert_stored_in_full(pg_dsn, cluster)
    assert {r["cluster_id"]: r["n"] for r in versions} == {c.uid: 1 for c in fleet.clusters}
    assert duplicates == 0


async def test_a_killed_collectors_claims_do_not_block_the_next_run(sim_fleet, pg_dsn, tmp_path):
    fleet: Fleet = await sim_fleet(clusters=[ClusterSpec(name="a", nodes=3)])
    env = cli_env(tmp_path / "home")
    argv = collect_argv(fleet.kubeconfig_paths, pg_dsn, cluster_timeout=60, output=None)
    database = database_of(pg_dsn)
    blocker = await connect(pg_dsn)
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("LOCK TABLE inventory.node_history IN ACCESS EXCLUSIVE MODE")
    proc = await start(*argv, env=env)
    try:

        async def blocked() -> bool:
            assert proc.returncode is None, "the collector ended before it was blocked"
            return bool(await _waiting_backends(pg_dsn, database))

        await _poll(blocked, 120, "the store to block")
        pids = await _waiting_backends(pg_dsn, database)
        proc.kill()
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await tx.rollback()
        await blocker.close()
    await _poll(lambda: _not(_backends_alive(pg_dsn, pids)), 60, "the killed backends to end")
    assert (await stored_state(pg_dsn, fleet.cluster("a").uid))["cluster"] is None

    again = await kubeinv(*argv, env=env)
    assert again.code == 0, str(again)
    await assert_stored_in_full(pg_dsn, fleet.cluster("a"))
    conn = await connect(pg_dsn)
    try:
        runs = await conn.fetch("SELECT run_id, status FROM inventory.collection_run ORDER BY 1")
        rows = await conn.fetch("SELECT run_id, deduplicated FROM inventory.cluster_collection")
    finally:
        await conn.close()
    # the killed run is marked abandoned by the next one, which collected the cluster itself
    assert [r["status"] for r in runs] == ["abandoned", "ok"]
    assert [(r["run_id"], r["deduplicated"]) for r in rows] == [(runs[1]["run_id"], False)]
