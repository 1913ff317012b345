"""The analytics views with a retired cluster (sql/schema/), exact results on the shared fleet
history (tests/analytics/scenario.py): cluster-b, last stored 03-02 (03-04 unchanged), is
retired 2026-03-08 12:00 because no run reached it, and in the second half comes back
2026-03-09 10:00, upgraded to v1.25.16.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest

from collector.store import Store
from tests.analytics.history import FleetHistory, ts
from tests.analytics.scenario import NOW, build_fleet

RETIRED_AT = "2026-03-08 12:00"
RETURNED_AT = "2026-03-09 10:00"
d = date.fromisoformat


async def rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


@pytest.fixture
async def history(store: Store) -> FleetHistory:
    fleet = FleetHistory(store)
    await build_fleet(fleet)
    return fleet


@pytest.fixture
async def db(history: FleetHistory, conn: asyncpg.Connection) -> asyncpg.Connection:
    assert await conn.fetchval(
        "SELECT inventory.retire_cluster('cluster-b', $1, 'unseen')", ts(RETIRED_AT)
    )
    await conn.execute(f"SET kubeinv.now = '{NOW}'")
    await conn.execute("SET TimeZone = 'America/Los_Angeles'")  # days must still be UTC days
    return conn


async def test_current_views_drop_the_retired_cluster(db: asyncpg.Connection) -> None:
    for view in (
        "cluster_current",
        "node_current",
        "api_resource_current",
        "cluster_service_current",
        "node_skew_current",
        "cluster_support",
        "api_removal_readiness",
    ):
        got = await db.fetch(f"SELECT DISTINCT cluster_id FROM inventory.{view}")
        assert [r["cluster_id"] for r in got] in (["cluster-a"], []), view
    assert await db.fetchval("SELECT count(*) FROM inventory.node_current") == 3
    # Its past is intact: as of the morning of 03-08, cluster-b had its 3 nodes and 10 APIs.
    assert (
        await db.fetchval(
            "SELECT count(*) FROM inventory.node_as_of('2026-03-08 11:00+00') "
            "WHERE cluster_id = 'cluster-b'"
        )
        == 3
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM inventory.api_resource_as_of('2026-03-08 11:00+00') "
            "WHERE cluster_id = 'cluster-b'"
        )
        == 10
    )


async def test_registry_lists_every_cluster(db: asyncpg.Connection) -> None:
    got = await rows(
        db,
        "SELECT cluster_id, context_names, first_seen_at, last_collected_at, last_status, "
        "retired_at, retired_by, state, git_version FROM inventory.cluster_registry "
        "ORDER BY cluster_id",
    )
    assert got == [
        {
            "cluster_id": "cluster-a",
            "context_names": ["prod-a"],
            "first_seen_at": ts("2026-03-01 10:00"),
            "last_collected_at": ts("2026-03-07 16:30"),
            "last_status": "ok",
            "retired_at": None,
            "retired_by": None,
            "state": "active",
            "git_version": "v1.29.1",
        },
        {
            "cluster_id": "cluster-b",
            "context_names": ["b-admin", "staging-b"],
            "first_seen_at": ts("2026-03-02 08:00"),
            "last_collected_at": ts("2026-03-04 08:00"),
            "last_status": "ok",
            "retired_at": ts(RETIRED_AT),
            "retired_by": "unseen",
            "state": "retired",
            "git_version": "v1.24.9",  # the last version it had
        },
    ]


async def test_daily_series_stop_counting_from_the_retirement_day(db: asyncpg.Connection) -> None:
    got = await rows(db, "SELECT * FROM inventory.fleet_versions_daily('2026-03-07', '2026-03-31')")
    assert got == [
        {"day": d("2026-03-07"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-07"), "minor_version": 29, "clusters": 1, "nodes": 3},
        # retired 03-08 12:00: that day ends without cluster-b
        {"day": d("2026-03-08"), "minor_version": 29, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-09"), "minor_version": 29, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-10"), "minor_version": 29, "clusters": 1, "nodes": 3},
    ]
    capacity = await rows(
        db,
        "SELECT day, cluster_id, nodes FROM inventory.capacity_daily('2026-03-06', '2026-03-10')",
    )
    assert capacity == [
        {"day": d("2026-03-06"), "cluster_id": "cluster-a", "nodes": 2},
        {"day": d("2026-03-06"), "cluster_id": "cluster-b", "nodes": 3},
        {"day": d("2026-03-07"), "cluster_id": "cluster-a", "nodes": 3},
        {"day": d("2026-03-07"), "cluster_id": "cluster-b", "nodes": 3},
        {"day": d("2026-03-08"), "cluster_id": "cluster-a", "nodes": 3},
        {"day": d("2026-03-09"), "cluster_id": "cluster-a", "nodes": 3},
        {"day": d("2026-03-10"), "cluster_id": "cluster-a", "nodes": 3},
    ]
    # Before the retirement, now on 03-08 at 11:00, today still counts cluster-b.
    await db.execute("SET kubeinv.now = '2026-03-08 11:00:00+00'")
    today = await rows(
        db,
        "SELECT minor_version, clusters, nodes FROM inventory.fleet_versions_daily($1, $1)",
        d("2026-03-08"),
    )
    assert today == [
        {"minor_version": 24, "clusters": 1, "nodes": 3},
        {"minor_version": 29, "clusters": 1, "nodes": 3},
    ]


async def test_changes_report_one_cluster_retired_row(db: asyncpg.Connection) -> None:
    got = await rows(db, "SELECT * FROM inventory.changes('2026-03-07')")
    summary = [(r["cluster_id"], r["at"], r["kind"], r["subject"]) for r in got]
    assert summary == [
        ("cluster-a", ts("2026-03-07 16:30"), "node-added", "a4"),
        # one row, not a node-removed per node and an api-removed per API resource
        ("cluster-b", ts(RETIRED_AT), "cluster-retired", "b-admin"),
    ]
    detail = got[1]["detail"]
    assert {k: v for k, v in detail.items() if k != "last_reached_at"} == {
        "retired_by": "unseen",
        "context_names": ["b-admin", "staging-b"],
        "git_version": "v1.24.9",
        "nodes": 3,
        "api_resources": 10,
    }


async def test_a_retired_cluster_comes_back(history: FleetHistory, db: asyncpg.Connection) -> None:
    history.upgrade("cluster-b", "v1.25.16")
    await history.collect("cluster-b", RETURNED_AT)

    current = await rows(
        db,
        "SELECT cluster_id, git_version, node_count FROM inventory.cluster_current "
        "ORDER BY cluster_id",
    )
    assert current == [
        {"cluster_id": "cluster-a", "git_version": "v1.29.1", "node_count": 3},
        {"cluster_id": "cluster-b", "git_version": "v1.25.16", "node_count": 3},
    ]
    registry = await rows(
        db,
        "SELECT state, retired_at, retired_by FROM inventory.cluster_registry "
        "WHERE cluster_id = 'cluster-b'",
    )
    assert registry == [{"state": "active", "retired_at": None, "retired_by": None}]

    got = await rows(db, "SELECT * FROM inventory.fleet_versions_daily('2026-03-07', '2026-03-10')")
    assert got == [
        {"day": d("2026-03-07"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-07"), "minor_version": 29, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-08"), "minor_version": 29, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-09"), "minor_version": 25, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-09"), "minor_version": 29, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-10"), "minor_version": 25, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-10"), "minor_version": 29, "clusters": 1, "nodes": 3},
    ]

    changes = await rows(db, "SELECT * FROM inventory.changes('2026-03-08')")
    summary = [(r["cluster_id"], r["at"], r["kind"]) for r in changes]
    # one row for the return: no version, node-added or api-added rows at that instant
    assert summary == [
        ("cluster-b", ts(RETIRED_AT), "cluster-retired"),
        ("cluster-b", ts(RETURNED_AT), "cluster-returned"),
    ]
    back = changes[1]["detail"]
    assert back["git_version"] == "v1.25.16"
    assert (back["nodes"], back["api_resources"], back["retired_by"]) == (3, 10, "unseen")

    # The retirement stays on record; the past before it is unchanged.
    spans = await rows(
        db,
        "SELECT git_version, valid_from, valid_to FROM inventory.cluster_version_history "
        "WHERE cluster_id = 'cluster-b' ORDER BY valid_from",
    )
    assert spans == [
        {
            "git_version": "v1.24.9",
            "valid_from": ts("2026-03-02 08:00"),
            "valid_to": ts(RETIRED_AT),
        },
        {"git_version": "v1.25.16", "valid_from": ts(RETURNED_AT), "valid_to": None},
    ]
    assert await db.fetchval(
        "SELECT returned_at FROM inventory.cluster_retirement WHERE cluster_id = 'cluster-b'"
    ) == ts(RETURNED_AT)


async def test_per_day_summaries_follow_the_retirement(
    history: FleetHistory, db: asyncpg.Connection
) -> None:
    """node_daily_delta (0013) and node_change (0017) are kept by triggers: a retirement and a
    return keep them equal to the history they summarize, and make no node-changed pair."""
    from tests.analytics.test_daily_summary import assert_summary_exact  # noqa: PLC0415

    await assert_summary_exact(db)
    history.upgrade("cluster-b", "v1.25.16")
    await history.collect("cluster-b", RETURNED_AT)
    await assert_summary_exact(db)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM inventory.node_change WHERE cluster_id = 'cluster-b'"
        )
        == 0
    )
