"""The analytics views and functions (sql/schema/analytics/) on real PostgreSQL, against a
history built through the store's write path at controlled times (tests/analytics/scenario.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest

from collector.store import Store
from tests.analytics.history import FleetHistory, node, ts
from tests.analytics.scenario import NOW, build_fleet


@pytest.fixture
async def db(store: Store, conn: asyncpg.Connection) -> asyncpg.Connection:
    await build_fleet(FleetHistory(store))
    await conn.execute(f"SET kubeinv.now = '{NOW}'")
    await conn.execute("SET TimeZone = 'America/Los_Angeles'")  # days must still be UTC days
    return conn


async def rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


# --- fleet_versions_daily -------------------------------------------------------------------


async def test_fleet_versions_daily_shows_the_upgrade_on_its_day(db: asyncpg.Connection) -> None:
    got = await rows(db, "SELECT * FROM inventory.fleet_versions_daily('2026-02-27', '2026-03-31')")
    d = date.fromisoformat
    assert got == [
        {"day": d("2026-03-01"), "minor_version": 28, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-02"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-02"), "minor_version": 28, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-03"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-03"), "minor_version": 28, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-04"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-04"), "minor_version": 28, "clusters": 1, "nodes": 3},
        # upgraded 03-05 09:00: the day ends at 1.29
        {"day": d("2026-03-05"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-05"), "minor_version": 29, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-06"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-06"), "minor_version": 29, "clusters": 1, "nodes": 2},
        {"day": d("2026-03-07"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-07"), "minor_version": 29, "clusters": 1, "nodes": 3},
        # cluster-b was last stored 03-02 (03-04 unchanged) and still counts as it was
        {"day": d("2026-03-08"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-08"), "minor_version": 29, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-09"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-09"), "minor_version": 29, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-10"), "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": d("2026-03-10"), "minor_version": 29, "clusters": 1, "nodes": 3},
        # no day after today (2026-03-10)
    ]


async def test_today_shows_the_state_now(db: asyncpg.Connection) -> None:
    # At 03-05 08:59 the upgrade (09:00) has not happened yet: today shows 1.28.
    await db.execute("SET kubeinv.now = '2026-03-05 08:59:00+00'")
    got = await rows(
        db,
        "SELECT minor_version, clusters, nodes FROM inventory.fleet_versions_daily($1, $1)",
        date(2026, 3, 5),
    )
    assert got == [
        {"minor_version": 24, "clusters": 1, "nodes": 3},
        {"minor_version": 28, "clusters": 1, "nodes": 3},
    ]
    assert (
        await db.fetch("SELECT * FROM inventory.fleet_versions_daily('2026-03-06', '2026-03-09')")
        == []
    )


# --- capacity_daily -------------------------------------------------------------------------


async def test_capacity_daily(db: asyncpg.Connection) -> None:
    got = await rows(
        db,
        "SELECT day, cluster_id, nodes, cpu_capacity_millicores, memory_capacity_bytes, "
        "gpu_capacity FROM inventory.capacity_daily('2026-03-05', '2026-03-07') "
        "WHERE cluster_id = 'cluster-a'",
    )
    gib = 2**30
    d = date.fromisoformat
    assert got == [
        {
            "day": d("2026-03-05"),
            "cluster_id": "cluster-a",
            "nodes": 3,
            "cpu_capacity_millicores": 20000,
            "memory_capacity_bytes": 80 * gib,
            "gpu_capacity": 2,
        },
        {
            "day": d("2026-03-06"),
            "cluster_id": "cluster-a",
            "nodes": 2,
            "cpu_capacity_millicores": 12000,
            "memory_capacity_bytes": 48 * gib,
            "gpu_capacity": 0,
        },
        {
            "day": d("2026-03-07"),
            "cluster_id": "cluster-a",
            "nodes": 3,
            "cpu_capacity_millicores": 28000,
            "memory_capacity_bytes": 112 * gib,
            "gpu_capacity": 0,
        },
    ]
    # cluster-b does not exist before its first collection
    first = await rows(
        db, "SELECT day, cluster_id FROM inventory.capacity_daily('2026-03-01', '2026-03-02')"
    )
    assert first == [
        {"day": d("2026-03-01"), "cluster_id": "cluster-a"},
        {"day": d("2026-03-02"), "cluster_id": "cluster-a"},
        {"day": d("2026-03-02"), "cluster_id": "cluster-b"},
    ]


# --- changes --------------------------------------------------------------------------------


async def test_changes_since_the_beginning(db: asyncpg.Connection) -> None:
    got = await rows(db, "SELECT * FROM inventory.changes('2026-01-01')")
    summary = [(r["cluster_id"], r["at"], r["kind"], r["subject"]) for r in got]
    assert summary == [
        ("cluster-a", ts("2026-03-01 10:00"), "cluster-added", "prod-a"),
        ("cluster-b", ts("2026-03-02 08:00"), "cluster-added", "b-admin"),
        ("cluster-a", ts("2026-03-03 14:00"), "node-changed", "a2"),
        ("cluster-a", ts("2026-03-05 09:00"), "version", "v1.29.1"),
        ("cluster-a", ts("2026-03-05 09:00"), "node-changed", "a1"),
        (
            "cluster-a",
            ts("2026-03-05 09:00"),
            "api-added",
            "flowcontrol.apiserver.k8s.io/v1/flowschemas",
        ),
        (
            "cluster-a",
            ts("2026-03-05 09:00"),
            "api-removed",
            "flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
        ),
        (
            "cluster-a",
            ts("2026-03-05 09:00"),
            "api-removed",
            "flowcontrol.apiserver.k8s.io/v1beta3/prioritylevelconfigurations",
        ),
        ("cluster-a", ts("2026-03-06 11:00"), "node-removed", "a3"),
        ("cluster-a", ts("2026-03-07 16:30"), "node-added", "a4"),
    ]
    by_kind = {(r["kind"], r["subject"]): r["detail"] for r in got}
    assert by_kind[("node-changed", "a2")] == {
        "unschedulable": {"old": False, "new": True},
        "labels": {
            "old": {"kubernetes.io/hostname": "a2"},
            "new": {"kubernetes.io/hostname": "a2", "pool": "batch"},
        },
    }
    assert by_kind[("node-changed", "a1")] == {
        "kubelet_version": {"old": "v1.28.5", "new": "v1.29.1"}
    }
    assert by_kind[("version", "v1.29.1")] == {
        "git_version": {"old": "v1.28.5", "new": "v1.29.1"},
        "minor_version": {"old": 28, "new": 29},
    }
    added = by_kind[("cluster-added", "b-admin")]
    assert added["git_version"] == "v1.24.9"
    assert added["nodes"] == 3
    assert added["context_names"] == ["b-admin", "staging-b"]
    assert added["api_resources"] == 10


async def test_changes_include_since_itself_and_nothing_before(db: asyncpg.Connection) -> None:
    got = await rows(db, "SELECT at, kind, subject FROM inventory.changes('2026-03-06 11:00+00')")
    assert got == [
        {"at": ts("2026-03-06 11:00"), "kind": "node-removed", "subject": "a3"},
        {"at": ts("2026-03-07 16:30"), "kind": "node-added", "subject": "a4"},
    ]
    after = await db.fetch("SELECT * FROM inventory.changes('2026-03-07 16:30:00.000001+00')")
    assert after == []


# --- node_skew_current ----------------------------------------------------------------------


async def test_skew_flags_exactly_the_out_of_policy_nodes(db: asyncpg.Connection) -> None:
    got = await rows(
        db,
        "SELECT cluster_id, node_name, kubelet_version, kubelet_minor, server_minor, skew, "
        "within_policy FROM inventory.node_skew_current ORDER BY cluster_id, node_name",
    )
    assert got == [
        # server 1.29: up to 3 minors older is allowed
        {
            "cluster_id": "cluster-a",
            "node_name": "a1",
            "kubelet_version": "v1.29.1",
            "kubelet_minor": 29,
            "server_minor": 29,
            "skew": 0,
            "within_policy": True,
        },
        {
            "cluster_id": "cluster-a",
            "node_name": "a2",
            "kubelet_version": "v1.25.3",
            "kubelet_minor": 25,
            "server_minor": 29,
            "skew": 4,
            "within_policy": False,
        },
        {
            "cluster_id": "cluster-a",
            "node_name": "a4",
            "kubelet_version": "v1.29.1",
            "kubelet_minor": 29,
            "server_minor": 29,
            "skew": 0,
            "within_policy": True,
        },
        # server 1.24: only 2 minors
        {
            "cluster_id": "cluster-b",
            "node_name": "b1",
            "kubelet_version": "v1.24.9",
            "kubelet_minor": 24,
            "server_minor": 24,
            "skew": 0,
            "within_policy": True,
        },
        {
            "cluster_id": "cluster-b",
            "node_name": "b2",
            "kubelet_version": "v1.21.0",
            "kubelet_minor": 21,
            "server_minor": 24,
            "skew": 3,
            "within_policy": False,
        },
        {
            "cluster_id": "cluster-b",
            "node_name": "b3",
            "kubelet_version": None,
            "kubelet_minor": None,
            "server_minor": 24,
            "skew": None,
            "within_policy": None,
        },
    ]


async def test_skew_policy_edges(conn: asyncpg.Connection, store: Store) -> None:
    """3 minors from 1.28 on, 2 before; a newer kubelet is never within policy."""
    fleet = FleetHistory(store)

    cases = {  # server -> [(kubelet, within_policy)]
        "v1.28.0": [("v1.25.9", True), ("v1.24.0", False), ("v1.29.0", False)],
        "v1.27.3": [("v1.25.1", True), ("v1.24.0", False), ("v1.27.3-eks-1", True)],
    }
    for i, (server, kubelets) in enumerate(cases.items()):
        await fleet.add_cluster(
            f"c{i}",
            "2026-03-01 00:00",
            server,
            contexts=(f"ctx{i}",),
            nodes=[node(f"c{i}-n{j}", f"n{j}", k) for j, (k, _) in enumerate(kubelets)],
            apis=[],
        )
    got = {
        (r["cluster_id"], r["node_name"]): r["within_policy"]
        for r in await conn.fetch("SELECT * FROM inventory.node_skew_current")
    }
    expected = {
        (f"c{i}", f"n{j}"): ok
        for i, kubelets in enumerate(cases.values())
        for j, (_, ok) in enumerate(kubelets)
    }
    assert got == expected


# --- api_resource_diff ----------------------------------------------------------------------


async def test_api_resource_diff_by_context_and_id(db: asyncpg.Connection) -> None:
    by_context = await rows(db, "SELECT * FROM inventory.api_resource_diff('prod-a', 'b-admin')")
    assert by_context == [
        {
            "api_group": "autoscaling",
            "api_version": "v2beta2",
            "resource": "horizontalpodautoscalers",
            "only_in": "b",
        },
        {"api_group": "batch", "api_version": "v1beta1", "resource": "cronjobs", "only_in": "b"},
        {"api_group": "example.com", "api_version": "v1", "resource": "widgets", "only_in": "a"},
        {
            "api_group": "extensions",
            "api_version": "v1beta1",
            "resource": "widgetscales",
            "only_in": "b",
        },
        # the same resource at v1 in one cluster and v1beta2 in the other: one row each side
        {
            "api_group": "flowcontrol.apiserver.k8s.io",
            "api_version": "v1",
            "resource": "flowschemas",
            "only_in": "a",
        },
        {
            "api_group": "flowcontrol.apiserver.k8s.io",
            "api_version": "v1beta2",
            "resource": "flowschemas",
            "only_in": "b",
        },
        {
            "api_group": "policy",
            "api_version": "v1beta1",
            "resource": "podsecuritypolicies",
            "only_in": "b",
        },
    ]
    by_id = await rows(db, "SELECT * FROM inventory.api_resource_diff('cluster-a', 'cluster-b')")
    assert by_id == by_context


async def test_api_resource_diff_as_of_a_past_time(db: asyncpg.Connection) -> None:
    got = await rows(
        db,
        "SELECT api_version, resource, only_in FROM inventory.api_resource_diff("
        "'cluster-a', 'cluster-b', '2026-03-04 00:00+00') "
        "WHERE api_group = 'flowcontrol.apiserver.k8s.io'",
    )
    assert got == [
        {"api_version": "v1beta2", "resource": "flowschemas", "only_in": "b"},
        {"api_version": "v1beta3", "resource": "flowschemas", "only_in": "a"},
        {"api_version": "v1beta3", "resource": "prioritylevelconfigurations", "only_in": "a"},
    ]


async def test_api_resource_diff_names_unknown_and_ambiguous_clusters(
    db: asyncpg.Connection, store: Store
) -> None:
    with pytest.raises(asyncpg.NoDataFoundError, match="'nope'"):
        await db.fetch("SELECT * FROM inventory.api_resource_diff('nope', 'cluster-a')")
    await FleetHistory(store).add_cluster(
        "cluster-c", "2026-03-08 00:00", "v1.30.0", contexts=("prod-a",), nodes=[], apis=[]
    )
    with pytest.raises(asyncpg.CardinalityViolationError, match="cluster-a, cluster-c"):
        await db.fetch("SELECT * FROM inventory.api_resource_diff('prod-a', 'cluster-b')")


# --- reference data, cluster_support, api_removal_readiness -----------------------------------


@pytest.mark.parametrize(
    ("minor", "released_on", "end_of_life", "kind"),
    [
        (10, "2018-03-26", "2019-02-13", "actual"),
        (22, "2021-08-04", "2022-12-08", "actual"),
        (25, "2022-08-23", "2023-10-28", "actual"),
        (28, "2023-08-15", "2024-10-22", "actual"),
        (31, "2024-08-13", "2025-11-11", "actual"),
        (35, "2025-12-17", "2027-02-28", "planned"),
    ],
)
async def test_reference_releases(
    conn: asyncpg.Connection, minor: int, released_on: str, end_of_life: str, kind: str
) -> None:
    row = await conn.fetchrow(
        "SELECT release, released_on, end_of_life, end_of_life_kind "
        "FROM inventory.kubernetes_release WHERE major_version = 1 AND minor_version = $1",
        minor,
    )
    assert row is not None
    assert dict(row) == {
        "release": f"1.{minor}",
        "released_on": date.fromisoformat(released_on),
        "end_of_life": date.fromisoformat(end_of_life),
        "end_of_life_kind": kind,
    }


async def test_reference_releases_are_complete(conn: asyncpg.Connection) -> None:
    minors = [
        r[0]
        for r in await conn.fetch(
            "SELECT minor_version FROM inventory.kubernetes_release ORDER BY 1"
        )
    ]
    assert minors == list(range(0, 38))
    sources = await conn.fetch("SELECT source_id, taken_on FROM inventory.reference_source")
    assert {r["taken_on"] for r in sources} == {date(2026, 11, 27)}


@pytest.mark.parametrize(
    ("group", "version", "resource", "minor"),
    [
        ("batch", "v1beta1", "cronjobs", 25),
        ("policy", "v1beta1", "podsecuritypolicies", 25),
        ("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", 32),
        ("flowcontrol.apiserver.k8s.io", "v1beta2", "prioritylevelconfigurations", 29),
        ("extensions", "v1beta1", "ingresses", 22),
        ("extensions", "v1beta1", "deployments", 16),
        ("autoscaling", "v2beta2", "horizontalpodautoscalers", 26),
        ("storage.k8s.io", "v1beta1", "csistoragecapacities", 27),
    ],
)
async def test_reference_removals(
    conn: asyncpg.Connection, group: str, version: str, resource: str, minor: int
) -> None:
    got = await conn.fetchval(
        "SELECT removed_in_minor FROM inventory.kubernetes_api_removal "
        "WHERE api_group = $1 AND api_version = $2 AND resource = $3",
        group,
        version,
        resource,
    )
    assert got == minor


async def test_cluster_support(db: asyncpg.Connection, store: Store) -> None:
    fleet = FleetHistory(store)
    for cid, ver in [
        ("c-eol", "v1.30.4"),
        ("c-soon", "v1.35.2"),
        ("c-new", "v1.37.0"),
        ("c-future", "v1.40.0"),
    ]:
        await fleet.add_cluster(cid, "2026-03-08 00:00", ver, contexts=(cid,), nodes=[], apis=[])
    # pretend today is 2026-12-01
    await db.execute("SET kubeinv.now = '2026-12-01 06:00+00'")
    got = await rows(
        db,
        "SELECT cluster_id, git_version, minor_version, end_of_life, days_left, support_status "
        "FROM inventory.cluster_support ORDER BY cluster_id",
    )
    d = date.fromisoformat
    assert got == [
        {
            "cluster_id": "c-eol",
            "git_version": "v1.30.4",
            "minor_version": 30,
            "end_of_life": d("2025-07-15"),
            "days_left": -504,
            "support_status": "end-of-life",
        },
        {
            "cluster_id": "c-future",
            "git_version": "v1.40.0",
            "minor_version": 40,
            "end_of_life": None,
            "days_left": None,
            "support_status": "unknown",
        },
        {
            "cluster_id": "c-new",
            "git_version": "v1.37.0",
            "minor_version": 37,
            "end_of_life": d("2027-10-28"),
            "days_left": 331,
            "support_status": "supported",
        },
        {
            "cluster_id": "c-soon",
            "git_version": "v1.35.2",
            "minor_version": 35,
            "end_of_life": d("2027-02-28"),
            "days_left": 89,
            "support_status": "ending-soon",
        },
        {
            "cluster_id": "cluster-a",
            "git_version": "v1.29.1",
            "minor_version": 29,
            "end_of_life": d("2025-02-28"),
            "days_left": -641,
            "support_status": "end-of-life",
        },
        {
            "cluster_id": "cluster-b",
            "git_version": "v1.24.9",
            "minor_version": 24,
            "end_of_life": d("2023-07-28"),
            "days_left": -1222,
            "support_status": "end-of-life",
        },
    ]
    # the end-of-life day itself still counts as ending-soon (0 days left); the day after not
    await db.execute("SET kubeinv.now = '2027-02-28 23:59+00'")
    assert (
        await db.fetchval(
            "SELECT support_status FROM inventory.cluster_support WHERE cluster_id = 'c-soon'"
        )
        == "ending-soon"
    )
    await db.execute("SET kubeinv.now = '2027-03-01 00:00+00'")
    assert (
        await db.fetchval(
            "SELECT support_status FROM inventory.cluster_support WHERE cluster_id = 'c-soon'"
        )
        == "end-of-life"
    )


async def test_api_removal_readiness(db: asyncpg.Connection) -> None:
    got = await rows(
        db,
        "SELECT cluster_id, api_group, api_version, resource, removed_in_minor, minors_left "
        "FROM inventory.api_removal_readiness ORDER BY cluster_id, minors_left, api_group, "
        "api_version, resource",
    )
    assert got == [
        # cluster-b, server 1.24
        {
            "cluster_id": "cluster-b",
            "api_group": "batch",
            "api_version": "v1beta1",
            "resource": "cronjobs",
            "removed_in_minor": 25,
            "minors_left": 1,
        },
        {
            "cluster_id": "cluster-b",
            "api_group": "policy",
            "api_version": "v1beta1",
            "resource": "podsecuritypolicies",
            "removed_in_minor": 25,
            "minors_left": 1,
        },
        {
            "cluster_id": "cluster-b",
            "api_group": "autoscaling",
            "api_version": "v2beta2",
            "resource": "horizontalpodautoscalers",
            "removed_in_minor": 26,
            "minors_left": 2,
        },
        {
            "cluster_id": "cluster-b",
            "api_group": "flowcontrol.apiserver.k8s.io",
            "api_version": "v1beta2",
            "resource": "flowschemas",
            "removed_in_minor": 29,
            "minors_left": 5,
        },
        # extensions/v1beta1 is gone entirely in 1.22 (its last listed removal) -- but this
        # cluster is 1.24: a resource still served there is past every listed removal
    ]


async def test_api_removal_readiness_before_an_upgrade(db: asyncpg.Connection) -> None:
    """Built from history: cluster-a served flowcontrol v1beta3 at 1.28 (removed in 1.32)."""
    await db.execute("SET kubeinv.now = '2026-03-04 00:00+00'")
    # the view reads current rows; check the underlying reference join through api_resource_as_of
    got = await rows(
        db,
        "SELECT a.api_version, a.resource, r.removed_in_minor "
        "FROM inventory.api_resource_as_of('2026-03-04 00:00+00') a "
        "JOIN inventory.kubernetes_api_removal r USING (api_group, api_version, resource) "
        "WHERE a.cluster_id = 'cluster-a' ORDER BY 2",
    )
    assert got == [
        {"api_version": "v1beta3", "resource": "flowschemas", "removed_in_minor": 32},
        {
            "api_version": "v1beta3",
            "resource": "prioritylevelconfigurations",
            "removed_in_minor": 32,
        },
    ]
