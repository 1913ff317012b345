"""Clusters come and go: retirement at the end of a run, by hand, and coming back.

Real runs (collector.running.collect_once) against simulated clusters over HTTPS, stored in a
real PostgreSQL. Three fleets of one cluster each, each with its own kubeconfig file: `stays`
is always configured and up; `leaves` has its kubeconfig dropped from the settings (its context
removed) and later added back; `down` stays configured while its API server is stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from collector.errors import ConfigError
from collector.running import RunReport, collect_once
from collector.settings import Settings, load_settings
from collector.sim import ClusterSpec, Fleet
from collector.store import Store
from tests.store.builders import fetch_view


def _settings(kubeconfigs: Sequence[Path], retire_after: str) -> Settings:
    return load_settings(
        {
            "kubeconfigs": [str(p) for p in kubeconfigs],
            "lifecycle": {"retire_after": retire_after},
            "collection": {"timeout": 2.0, "cluster_timeout": 10.0, "max_retries": 0},
        },
        environ={},
    )


async def _run(store: Store, kubeconfigs: Sequence[Path], retire_after: str = "0s") -> RunReport:
    return await collect_once(_settings(kubeconfigs, retire_after), store=store)


async def _fleets(sim_fleet: Any) -> tuple[Fleet, Fleet, Fleet]:
    stays = await sim_fleet(clusters=[ClusterSpec(name="stays", version="v1.31.2", nodes=2)])
    leaves = await sim_fleet(clusters=[ClusterSpec(name="leaves", version="v1.30.6", nodes=3)])
    down = await sim_fleet(clusters=[ClusterSpec(name="down", version="v1.29.10", nodes=1)])
    return stays, leaves, down


def _by_context(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["context_names"][0]: r for r in rows}


async def _counts(store: Store, cluster_id: str) -> dict[str, int]:
    async with store.connection() as conn:
        return {
            table: await conn.fetchval(
                f"SELECT count(*) FROM inventory.{table} WHERE cluster_id = $1", cluster_id
            )
            for table in (
                "cluster_version_history",
                "node_history",
                "api_resource_history",
                "cluster_service_history",
            )
        }


async def _open(store: Store, cluster_id: str) -> dict[str, int]:
    async with store.connection() as conn:
        return {
            table: await conn.fetchval(
                f"SELECT count(*) FROM inventory.{table} "
                "WHERE cluster_id = $1 AND valid_to IS NULL",
                cluster_id,
            )
            for table in (
                "cluster_version_history",
                "node_history",
                "api_resource_history",
                "cluster_service_history",
            )
        }


async def test_removed_context_retires_down_cluster_stays_and_removed_context_comes_back(
    store: Store, sim_fleet: Any
) -> None:
    stays, leaves, down = await _fleets(sim_fleet)
    every = [stays.kubeconfig, leaves.kubeconfig, down.kubeconfig]

    first = await _run(store, every)
    assert [o.status for o in first.outcomes] == ["ok", "ok", "ok"]
    assert first.retired == []
    ids = _by_context(await fetch_view(store, "cluster_current"))
    leaves_id, down_id = ids["leaves"]["cluster_id"], ids["down"]["cluster_id"]

    # `down` stops answering but stays configured: stale, never retired, even at 0s.
    await down.stop()
    for _ in range(2):
        report = await _run(store, every)
        assert report.retired == []
    registry = _by_context(await store.cluster_registry())
    assert registry["down"]["state"] == "stale"
    assert registry["down"]["cluster_id"] == down_id
    assert registry["down"]["retired_at"] is None
    assert registry["down"]["last_status"] == "failed"
    assert {registry[c]["state"] for c in ("stays", "leaves")} == {"active"}
    assert "down" in _by_context(await fetch_view(store, "cluster_current"))

    # `leaves`'s kubeconfig is removed: retired at the end of that run (retire_after 0s).
    before = await _counts(store, leaves_id)
    open_before = await _open(store, leaves_id)
    assert open_before["node_history"] == 3 and open_before["cluster_version_history"] == 1
    report = await _run(store, [stays.kubeconfig, down.kubeconfig])
    assert [r.cluster_id for r in report.retired] == [leaves_id]
    retired_at = report.retired[0].retired_at
    assert retired_at is not None

    current = _by_context(await fetch_view(store, "cluster_current"))
    assert sorted(current) == ["down", "stays"]
    assert leaves_id not in {n["cluster_id"] for n in await fetch_view(store, "node_current")}
    for view in ("api_resource_current", "cluster_service_current", "node_skew_current"):
        assert leaves_id not in {r["cluster_id"] for r in await fetch_view(store, view)}, view
    assert leaves_id not in {r["cluster_id"] for r in await fetch_view(store, "cluster_support")}
    # Nothing deleted, every open version closed at the retirement time, nothing else touched.
    assert await _counts(store, leaves_id) == before
    assert await _open(store, leaves_id) == dict.fromkeys(open_before, 0)
    async with store.connection() as conn:
        closed_at = await conn.fetch(
            "SELECT DISTINCT valid_to FROM inventory.node_history WHERE cluster_id = $1 "
            "UNION SELECT DISTINCT valid_to FROM inventory.api_resource_history "
            "WHERE cluster_id = $1 UNION SELECT valid_to FROM inventory.cluster_version_history "
            "WHERE cluster_id = $1 UNION SELECT valid_to FROM inventory.cluster_service_history "
            "WHERE cluster_id = $1",
            leaves_id,
        )
    assert [r["valid_to"] for r in closed_at] == [retired_at]
    # Its past is still there: the nodes as of before the retirement.
    then = await fetch_view(store, "node_as_of", retired_at - timedelta(microseconds=1))
    assert sum(1 for n in then if n["cluster_id"] == leaves_id) == 3

    registry = _by_context(await store.cluster_registry())
    assert registry["leaves"]["state"] == "retired"
    assert registry["leaves"]["retired_at"] == retired_at
    assert registry["leaves"]["retired_by"] == "unseen"
    assert registry["down"]["state"] == "stale" and registry["down"]["retired_at"] is None
    assert registry["stays"]["state"] == "active"

    changes = await fetch_view(store, "changes", retired_at)
    assert [(c["cluster_id"], c["kind"]) for c in changes] == [(leaves_id, "cluster-retired")]
    assert changes[0]["detail"]["nodes"] == 3
    assert changes[0]["detail"]["retired_by"] == "unseen"
    assert changes[0]["subject"] == "leaves"

    # A later run that still does not reach it changes nothing.
    again = await _run(store, [stays.kubeconfig, down.kubeconfig])
    assert again.retired == []
    assert await _counts(store, leaves_id) == before

    # The context is added back: the cluster comes back with new versions from that run on.
    back = await _run(store, every)
    assert back.retired == []
    current = _by_context(await fetch_view(store, "cluster_current"))
    assert sorted(current) == ["down", "leaves", "stays"]
    assert current["leaves"]["node_count"] == 3
    assert await _open(store, leaves_id) == open_before
    registry = _by_context(await store.cluster_registry())
    assert registry["leaves"]["state"] == "active" and registry["leaves"]["retired_at"] is None
    changes = await fetch_view(store, "changes", retired_at)
    assert [c["kind"] for c in changes] == ["cluster-retired", "cluster-returned"]
    assert changes[1]["detail"]["nodes"] == 3
    async with store.connection() as conn:
        row = await conn.fetchrow(
            "SELECT retired_at, returned_at FROM inventory.cluster_retirement "
            "WHERE cluster_id = $1",
            leaves_id,
        )
        first_version = await conn.fetchval(
            "SELECT min(valid_from) FROM inventory.cluster_version_history WHERE cluster_id = $1",
            leaves_id,
        )
    assert row["retired_at"] == retired_at and row["returned_at"] > retired_at
    # The earlier versions are as they were: the past is never rewritten.
    assert first_version < retired_at


async def test_retire_after_counts_from_the_last_run_that_reached_the_cluster(
    store: Store, sim_fleet: Any
) -> None:
    stays, leaves, _down = await _fleets(sim_fleet)
    await _run(store, [stays.kubeconfig, leaves.kubeconfig], "7d")
    leaves_id = _by_context(await fetch_view(store, "cluster_current"))["leaves"]["cluster_id"]

    # Not reached, but reached less than 7 days ago: kept (stale); `never` keeps it too.
    assert (await _run(store, [stays.kubeconfig], "7d")).retired == []
    assert (await _run(store, [stays.kubeconfig], "never")).retired == []
    registry = _by_context(await store.cluster_registry())
    assert registry["leaves"]["state"] == "stale"
    assert "leaves" in _by_context(await fetch_view(store, "cluster_current"))

    # Eight days later (the history moved back in time: the database clock cannot be set).
    async with store.connection() as conn:
        await conn.execute(
            "UPDATE inventory.cluster SET last_reached_at = last_reached_at - interval '8 days',"
            " last_collected_at = last_collected_at - interval '8 days' WHERE cluster_id = $1",
            leaves_id,
        )
    assert (await _run(store, [stays.kubeconfig], "never")).retired == []
    report = await _run(store, [stays.kubeconfig], "7d")
    assert [r.cluster_id for r in report.retired] == [leaves_id]
    assert _by_context(await store.cluster_registry())["leaves"]["retired_by"] == "unseen"


async def test_a_target_that_fails_for_longer_than_retire_after_keeps_its_cluster(
    store: Store, sim_fleet: Any
) -> None:
    """Down but configured for longer than retire_after (and its ledger pruned): not retired."""
    stays, _leaves, down = await _fleets(sim_fleet)
    every = [stays.kubeconfig, down.kubeconfig]
    await _run(store, every, "1d")
    down_id = _by_context(await fetch_view(store, "cluster_current"))["down"]["cluster_id"]
    await down.stop()
    async with store.connection() as conn:
        await conn.execute(
            "UPDATE inventory.cluster SET last_reached_at = last_reached_at - interval '30 days',"
            " last_collected_at = last_collected_at - interval '30 days'"
        )
        # The ledger rows that identified it are gone (retention.ledger prunes the ledger).
        await conn.execute("DELETE FROM inventory.cluster_collection")
    report = await _run(store, every, "1d")
    assert report.retired == []
    registry = _by_context(await store.cluster_registry())
    assert registry["down"]["state"] == "stale" and registry["down"]["retired_at"] is None
    assert registry["down"]["cluster_id"] == down_id


async def test_retire_by_hand_by_context_name_or_id(store: Store, sim_fleet: Any) -> None:
    stays, leaves, down = await _fleets(sim_fleet)
    await _run(store, [stays.kubeconfig, leaves.kubeconfig, down.kubeconfig], "never")
    ids = {k: v["cluster_id"] for k, v in _by_context(await store.cluster_registry()).items()}

    [by_name] = await store.retire_clusters(["leaves"])
    assert (by_name.cluster_id, by_name.retired_by) == (ids["leaves"], "manual")
    assert by_name.retired_at is not None
    [by_id, again] = await store.retire_clusters([ids["down"], "leaves"])
    assert by_id.cluster_id == ids["down"] and by_id.retired_at is not None
    assert again.retired_at is None and again.previous == by_name.retired_at

    registry = _by_context(await store.cluster_registry())
    assert [registry[c]["state"] for c in ("stays", "leaves", "down")] == [
        "active",
        "retired",
        "retired",
    ]
    assert registry["leaves"]["retired_by"] == "manual"
    assert sorted(_by_context(await fetch_view(store, "cluster_current"))) == ["stays"]

    with pytest.raises(ConfigError, match="no cluster has the id or context name 'nope'"):
        await store.retire_clusters(["nope"])

    # A manually retired cluster that a run collects again comes back; one that is down stays.
    await down.stop()
    await _run(store, [stays.kubeconfig, leaves.kubeconfig, down.kubeconfig], "never")
    registry = _by_context(await store.cluster_registry())
    assert registry["leaves"]["state"] == "active"
    assert registry["down"]["state"] == "retired"


async def test_retirement_survives_concurrent_store_rules(store: Store, sim_fleet: Any) -> None:
    """The SQL function refuses nothing twice: retiring a retired cluster is a no-op."""
    stays, _leaves, _down = await _fleets(sim_fleet)
    await _run(store, [stays.kubeconfig], "never")
    [cid] = [r["cluster_id"] for r in await store.cluster_registry()]
    async with store.connection() as conn:
        assert await conn.fetchval(
            "SELECT inventory.retire_cluster($1, clock_timestamp(), 'manual')", cid
        )
        assert not await conn.fetchval(
            "SELECT inventory.retire_cluster($1, clock_timestamp(), 'manual')", cid
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO inventory.cluster_retirement (cluster_id, retired_at, retired_by) "
                "VALUES ($1, now(), 'forgotten')",
                cid,
            )


async def test_migration_0022_on_a_database_with_history(pg_empty_dsn: str, tmp_path: Path) -> None:
    """An existing inventory: each cluster's last attempt becomes its last reach, and each
    target's latest identification in the ledger its remembered cluster. 0022 is the last
    pre-release migration (tests/fixtures/pre_release_migrations): a database at 0021 is brought
    to 0022 the pre-release way, then adopted as the schema."""
    from collector.store import open_store  # noqa: PLC0415
    from tests.store.test_schema import build_pre_release  # noqa: PLC0415

    assert await build_pre_release(pg_empty_dsn, up_to="0021")
    store = await open_store(pg_empty_dsn)
    try:
        async with store.connection() as conn:
            await conn.execute(
                """
                INSERT INTO inventory.cluster (cluster_id, first_seen_at, last_collected_at,
                                               last_attempt_at, last_status, last_run_id)
                VALUES ('c1', '2026-01-01', '2026-01-02', '2026-01-05', 'failed', 2);
                INSERT INTO inventory.collection_run (started_at, finished_at, status)
                VALUES ('2026-01-02', '2026-01-02', 'ok'), ('2026-01-05', '2026-01-05', 'failed');
                INSERT INTO inventory.cluster_collection
                    (run_id, kubeconfig_path, context_name, cluster_id, status, finished_at)
                VALUES (1, '/k', 'ctx', 'c1', 'ok', '2026-01-02 00:00:01+00'),
                       (2, '/k', 'ctx', NULL, 'failed', '2026-01-05 00:00:01+00');
                """
            )
        assert await build_pre_release(pg_empty_dsn, after="0021") == ["0022"]
        assert await store.migrate() == ["0100"]  # adopted, nothing run
        async with store.connection() as conn:
            reached = await conn.fetchrow(
                "SELECT last_reached_at, last_reached_run_id FROM inventory.cluster"
            )
            target = await conn.fetchrow("SELECT * FROM inventory.target_cluster")
        assert reached["last_reached_at"].isoformat() == "2026-01-05T00:00:00+00:00"
        assert reached["last_reached_run_id"] == 2
        assert (target["kubeconfig_path"], target["context_name"], target["cluster_id"]) == (
            "/k",
            "ctx",
            "c1",
        )
        assert target["run_id"] == 1
        [row] = await store.cluster_registry()
        assert (row["state"], row["retired_at"]) == ("stale", None)
    finally:
        await store.close()
