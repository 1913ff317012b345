"""History from real collections: the simulator over HTTPS, gather(), and a real PostgreSQL."""

from __future__ import annotations

from typing import Any

from collector.gathering import GatherOptions, gather
from collector.records import CollectionResult
from collector.settings import CollectionSettings
from collector.sim import ClusterSpec
from collector.store import Store, StoreStats
from collector.targets import load_targets
from tests.store.builders import fetch_view
from tests.store.test_history import _snapshot

OPTIONS = GatherOptions(CollectionSettings(timeout=3, cluster_timeout=15, max_retries=0))


async def _collect(store: Store, kubeconfig: Any) -> tuple[CollectionResult, list[StoreStats]]:
    targets = load_targets([str(kubeconfig)])
    assert not targets.errors
    run = await store.start_run()
    result = await gather(targets.targets, OPTIONS, claim=lambda cid: store.claim_cluster(run, cid))
    stats = [await store.store_inventory(run, inv) for inv in result.inventories]
    await store.record_outcomes(run, result.outcomes)
    await store.finish_run(run, result.status)
    return result, stats


async def test_collect_change_collect_again(store: Store, sim_fleet: Any) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="sim-000")])
    cluster = fleet.clusters[0]

    result, [first] = await _collect(store, fleet.kubeconfig)
    assert [o.status for o in result.outcomes] == ["ok"]
    assert first.nodes.inserted == 3 and first.version.inserted == 1
    before_nodes = {n["name"]: n for n in await fetch_view(store, "node_current")}
    groups = {r["api_group"] for r in await fetch_view(store, "api_resource_current")}
    custom = sorted(g for g in groups if g and not g.endswith(".k8s.io") and "." in g)
    assert custom, groups
    dropped = custom[0]
    dropped_rows = [
        r for r in await fetch_view(store, "api_resource_current") if r["api_group"] == dropped
    ]
    async with store.connection() as conn:
        t1 = await conn.fetchval("SELECT clock_timestamp()")

    [git_version] = [c["git_version"] for c in await fetch_view(store, "cluster_current")]
    major_minor = ".".join(git_version.lstrip("v").split(".")[:2])
    gone, cordon, relabel = sorted(before_nodes)[:3]
    cluster.upgrade(f"v{major_minor}.99")  # a patch upgrade: discovery stays the same
    cluster.remove_node(gone)
    cluster.cordon(cordon)
    cluster.set_labels(relabel, {"team": "payments"})
    cluster.remove_group(dropped)

    _, [second] = await _collect(store, fleet.kubeconfig)
    assert (second.version.inserted, second.version.closed) == (1, 1)
    assert (second.nodes.inserted, second.nodes.closed) == (2, 3)
    assert (second.api_resources.inserted, second.api_resources.closed) == (0, len(dropped_rows))
    now_nodes = {n["name"]: n for n in await fetch_view(store, "node_current")}
    assert set(now_nodes) == set(before_nodes) - {gone}
    assert now_nodes[cordon]["unschedulable"] is True
    assert now_nodes[relabel]["labels"]["team"] == "payments"
    [c] = await fetch_view(store, "cluster_current")
    assert c["git_version"] == f"v{major_minor}.99"
    assert c["context_names"] == ["sim-000"]
    assert dropped not in {r["api_group"] for r in await fetch_view(store, "api_resource_current")}

    # Between the runs: the earlier state.
    then = {n["name"]: n for n in await fetch_view(store, "node_as_of", t1)}
    assert set(then) == set(before_nodes)
    assert then[cordon]["unschedulable"] is False
    assert "team" not in then[relabel]["labels"]

    # A third collection: nothing changed but heartbeats (the simulator sends new ones).
    snapshot = await _snapshot(store)
    _, [third] = await _collect(store, fleet.kubeconfig)
    assert third.versions_written == 0 and third.versions_closed == 0
    assert await _snapshot(store) == snapshot

    # The cluster goes away: failed, its state kept.
    await fleet.stop()
    result, stored = await _collect(store, fleet.kubeconfig)
    assert stored == []
    assert [o.status for o in result.outcomes] == ["failed"]
    assert await _snapshot(store) == snapshot
    [c] = await fetch_view(store, "cluster_current")
    assert c["last_status"] == "failed"
    assert c["last_error"].startswith(result.outcomes[0].error_class or "?")
    assert c["node_count"] == len(before_nodes) - 1
    ledger = await fetch_view(store, "cluster_collection", order_by=["run_id"])
    assert [r["status"] for r in ledger] == ["ok", "ok", "ok", "failed"]
