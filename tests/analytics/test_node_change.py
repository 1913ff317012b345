"""changes() reads node-changed rows from a table kept by triggers
(sql/schema/history/node_change.sql).

These tests check inventory.node_change, and the node-changed rows of changes(), against an
independent row-by-row definition: every pair of versions of a node where one ends as the other
starts, compared field by field through their JSON, after the store's own writes and after direct
INSERT (in either order: successor first, then its predecessor), UPDATE (content, created_at, a
moved start or end, many rows at once), DELETE and TRUNCATE, on real PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from collector.store import Store
from tests.analytics.history import FleetHistory, node
from tests.analytics.scenario import build_fleet

# The fields whose change is a node change (all but the key, bookkeeping and validity).
FIELDS = [
    "name",
    "created_at",
    "roles",
    "ready",
    "unschedulable",
    "kubelet_version",
    "container_runtime_version",
    "os_image",
    "kernel_version",
    "architecture",
    "operating_system",
    "internal_ip",
    "external_ip",
    "provider_id",
    "cloud_provider",
    "region",
    "zone",
    "instance_type",
    "cpu_capacity_millicores",
    "memory_capacity_bytes",
    "pods_capacity",
    "ephemeral_storage_capacity_bytes",
    "gpu_capacity",
    "cpu_allocatable_millicores",
    "memory_allocatable_bytes",
    "pods_allocatable",
    "capacity",
    "allocatable",
    "labels",
    "taints",
    "conditions",
]

# Row by row: each pair (p ends when n starts), each differing field as {"old", "new"}.
REFERENCE = """
SELECT n.cluster_id, n.node_uid, n.valid_from AS at, n.name, d.detail
FROM inventory.node_history n
JOIN inventory.node_history p
  ON p.cluster_id = n.cluster_id AND p.node_uid = n.node_uid AND p.valid_to = n.valid_from
CROSS JOIN LATERAL (SELECT to_jsonb(p) AS pj, to_jsonb(n) AS nj) j
CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(f, jsonb_build_object('old', j.pj -> f, 'new', j.nj -> f)) AS detail
    FROM unnest($1::text[]) f
    WHERE j.pj -> f IS DISTINCT FROM j.nj -> f
) d
WHERE d.detail IS NOT NULL
ORDER BY 1, 2, 3
"""

STORED = """
SELECT cluster_id, node_uid, at, name,
       CASE WHEN created_at_changed
            THEN detail || jsonb_build_object('created_at', jsonb_build_object(
                 'old', to_jsonb(old_created_at), 'new', to_jsonb(new_created_at)))
            ELSE detail END AS detail
FROM inventory.node_change
ORDER BY 1, 2, 3
"""

# What changes() reports for node-changed, with a "now" after every write of these tests.
REPORTED = """
SELECT cluster_id, at, subject AS name, detail
FROM inventory.changes('-infinity') WHERE kind = 'node-changed'
ORDER BY cluster_id, at, subject
"""


async def rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def assert_node_change_exact(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    expected = await rows(conn, REFERENCE, FIELDS)
    assert await rows(conn, STORED) == expected
    reported = await rows(conn, REPORTED)
    assert reported == sorted(
        ({k: r[k] for k in ("cluster_id", "at", "name", "detail")} for r in expected),
        key=lambda r: (r["cluster_id"], r["at"], r["name"]),
    )
    return expected


@pytest.fixture
async def fleet(store: Store, conn: asyncpg.Connection) -> asyncpg.Connection:
    await build_fleet(FleetHistory(store))
    await conn.execute("SET kubeinv.now = '2027-01-01 00:00+00'")
    await conn.execute("SET TimeZone = 'America/Los_Angeles'")
    return conn


async def test_node_change_follows_the_store_writes(fleet: asyncpg.Connection) -> None:
    got = await assert_node_change_exact(fleet)
    # the scenario's two node changes (a2 cordoned and relabelled, a1's kubelet), nothing else:
    # not the first collections, not the removal of a3 nor the addition of a4
    assert [(r["node_uid"], sorted(r["detail"])) for r in got] == [
        ("a1-uid", ["kubelet_version"]),
        ("a2-uid", ["labels", "unschedulable"]),
    ]
    await fleet.execute("TRUNCATE inventory.node_history")
    assert await fleet.fetchval("SELECT count(*) FROM inventory.node_change") == 0


async def test_a_first_store_writes_no_node_change(store: Store, conn: asyncpg.Connection) -> None:
    fleet = FleetHistory(store)
    await fleet.add_cluster(
        "c1",
        "2026-03-01 10:00",
        "v1.30.2",
        contexts=("c1",),
        nodes=[node("u1", "n1", "v1.30.2")],
        apis=[],
    )
    assert await conn.fetchval("SELECT count(*) FROM inventory.node_history") == 1
    assert await conn.fetchval("SELECT count(*) FROM inventory.node_change") == 0
    # the same node changed, then back as it was: two changes, each with its old and new
    fleet.change_node("c1", "u1", kubelet_version="v1.30.3")
    await fleet.collect("c1", "2026-03-02 10:00")
    fleet.change_node("c1", "u1", kubelet_version="v1.30.2")
    await fleet.collect("c1", "2026-03-03 10:00")
    await conn.execute("SET kubeinv.now = '2027-01-01 00:00+00'")
    got = await assert_node_change_exact(conn)
    assert [r["detail"] for r in got] == [
        {"kubelet_version": {"old": "v1.30.2", "new": "v1.30.3"}},
        {"kubelet_version": {"old": "v1.30.3", "new": "v1.30.2"}},
    ]


async def test_node_change_follows_direct_writes(fleet: asyncpg.Connection) -> None:
    conn = fleet
    # A successor inserted first, its predecessor (closed as the successor starts) second.
    await conn.execute(
        "CREATE TEMP TABLE extra AS SELECT * FROM inventory.node_history WHERE node_uid = 'a4-uid'"
    )
    await conn.execute(
        "UPDATE extra SET node_uid = 'x-uid', name = 'x', valid_from = '2026-03-08 00:00+00',"
        " valid_to = NULL"
    )
    await conn.execute("INSERT INTO inventory.node_history SELECT * FROM extra")
    await assert_node_change_exact(conn)
    await conn.execute(
        "UPDATE extra SET valid_from = '2026-03-07 00:00+00', valid_to = '2026-03-08 00:00+00',"
        " zone = 'zone-b', labels = labels || '{\"pool\": \"old\"}', taints = '[{\"k\": 1}]'"
    )
    await conn.execute("INSERT INTO inventory.node_history SELECT * FROM extra")
    got = await assert_node_change_exact(conn)
    assert {"zone", "labels", "taints"} == set(
        next(r["detail"] for r in got if r["node_uid"] == "x-uid")
    )

    # created_at changed, written in another time zone than the one that reads it
    await conn.execute("SET TimeZone = 'Asia/Kolkata'")
    await conn.execute(
        "UPDATE inventory.node_history SET created_at = '2026-02-01 03:04:05+00'"
        " WHERE node_uid = 'x-uid' AND valid_to IS NULL"
    )
    await conn.execute("SET TimeZone = 'America/Los_Angeles'")
    got = await assert_node_change_exact(conn)
    detail = next(r["detail"] for r in got if r["node_uid"] == "x-uid")
    assert detail["created_at"]["new"] == "2026-01-31T19:04:05-08:00"

    # the content of a version in the middle changes: the pairs on both of its sides
    await conn.execute(
        "UPDATE inventory.node_history SET instance_type = 'm7i.xlarge', ready = NULL"
        " WHERE node_uid = 'a1-uid' AND valid_from = ("
        "   SELECT min(valid_from) FROM inventory.node_history WHERE node_uid = 'a1-uid')"
    )
    await assert_node_change_exact(conn)
    # many rows at once, all the pairs they are part of
    await conn.execute(
        "UPDATE inventory.node_history SET labels = labels || jsonb_build_object('v', valid_from)"
        " WHERE cluster_id = 'cluster-a'"
    )
    await assert_node_change_exact(conn)
    # a version's end moved (the pair breaks), then back (it is whole again)
    await conn.execute(
        "UPDATE inventory.node_history SET valid_to = valid_to - interval '1 hour'"
        " WHERE node_uid = 'x-uid' AND valid_to IS NOT NULL"
    )
    assert not [r for r in await assert_node_change_exact(conn) if r["node_uid"] == "x-uid"]
    await conn.execute(
        "UPDATE inventory.node_history SET valid_to = valid_to + interval '1 hour'"
        " WHERE node_uid = 'x-uid' AND valid_to IS NOT NULL"
    )
    assert [r for r in await assert_node_change_exact(conn) if r["node_uid"] == "x-uid"]
    # a version's start moved away from its predecessor's end
    await conn.execute(
        "UPDATE inventory.node_history SET valid_from = valid_from + interval '1 minute'"
        " WHERE node_uid = 'a2-uid' AND valid_to IS NULL"
    )
    await assert_node_change_exact(conn)
    # bookkeeping alone (problems, content hash) changes no detail and no pair
    before = await rows(conn, STORED)
    await conn.execute(
        "UPDATE inventory.node_history SET problems = '{p}', content_hash = 'h' || content_hash"
    )
    assert await assert_node_change_exact(conn) == before
    # a version made identical to its predecessor: no change any more
    await conn.execute(
        "UPDATE inventory.node_history n SET kubelet_version = 'v1.28.5'"
        " WHERE node_uid = 'a1-uid' AND valid_to IS NULL"
    )
    await conn.execute(
        "UPDATE inventory.node_history n SET instance_type = p.instance_type, ready = p.ready,"
        " labels = p.labels FROM inventory.node_history p"
        " WHERE n.node_uid = 'a1-uid' AND n.valid_to IS NULL"
        "   AND p.node_uid = 'a1-uid' AND p.valid_to = n.valid_from"
    )
    assert not [r for r in await assert_node_change_exact(conn) if r["node_uid"] == "a1-uid"]

    # deleting the older version of a pair (p), or the newer one (n), removes the pair
    assert [r for r in await assert_node_change_exact(conn) if r["node_uid"] == "x-uid"]
    await conn.execute(
        "DELETE FROM inventory.node_history WHERE node_uid = 'x-uid' AND valid_to IS NOT NULL"
    )
    assert not [r for r in await assert_node_change_exact(conn) if r["node_uid"] == "x-uid"]
    await conn.execute(
        "UPDATE inventory.node_history SET valid_from = valid_from - interval '1 minute'"
        " WHERE node_uid = 'a2-uid' AND valid_to IS NULL"
    )
    assert [r for r in await assert_node_change_exact(conn) if r["node_uid"] == "a2-uid"]
    await conn.execute(
        "DELETE FROM inventory.node_history WHERE node_uid = 'a2-uid' AND valid_to IS NULL"
    )
    assert not [r for r in await assert_node_change_exact(conn) if r["node_uid"] == "a2-uid"]
