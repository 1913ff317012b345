"""Change-only history on a real PostgreSQL, with hand-built inventories."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

import collector.gathering
from collector.errors import StoreError
from collector.records import TargetOutcome
from collector.running import LoadedTargets, collect_once
from collector.settings import Settings
from collector.store import Store, open_store
from collector.store.database import SEND_BUFFER_BYTES
from collector.store.queries import load_queries
from collector.store.writing import store_cluster
from tests.store.builders import (
    api_resources,
    cordoned,
    fetch_view,
    inventory,
    node,
    relabelled,
    version,
)

HISTORY_TABLES = (
    "cluster_version_history",
    "node_history",
    "api_resource_history",
    "cluster_service_history",
)


async def _snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every history row with its xmin: equal snapshots mean no row was written or locked."""
    out = {}
    async with store.connection() as conn:
        for table in HISTORY_TABLES:
            rows = await conn.fetch(
                f"SELECT xmin::text AS x, valid_from, valid_to, content_hash "
                f"FROM inventory.{table} ORDER BY valid_from, content_hash"
            )
            out[table] = [tuple(r) for r in rows]
    return out


async def _count(store: Store, sql: str, *args: Any) -> int:
    async with store.connection() as conn:
        return int(await conn.fetchval(sql, *args))


async def test_first_store_writes_everything(store: Store) -> None:
    run = await store.start_run()
    stats = await store.store_inventory(run, inventory(nodes=5))
    assert (stats.version.inserted, stats.nodes.inserted) == (1, 5)
    assert stats.api_resources.inserted == len(api_resources())
    assert stats.services.inserted == 1
    assert stats.versions_closed == 0
    [cluster] = await fetch_view(store, "cluster_current")
    assert cluster["node_count"] == 5
    assert cluster["ready_node_count"] == 5
    assert cluster["cpu_capacity_millicores"] == 20_000
    assert cluster["memory_capacity_bytes"] == 5 * 16 * 2**30
    assert cluster["git_version"] == "v1.30.2"
    assert cluster["minor_version"] == 30
    assert cluster["provider"] == "eks"
    assert cluster["context_names"] == ["ctx-a"]
    assert cluster["last_status"] == "ok"
    nodes = await fetch_view(store, "node_current", order_by=["name"])
    assert nodes[0]["labels"]["kubernetes.io/hostname"] == "node-0"
    assert nodes[0]["internal_ip"] == "10.0.0.1"
    assert nodes[0]["capacity"] == {"cpu": 4, "memory": 16 * 2**30, "pods": 110}
    assert nodes[0]["conditions"][0]["type"] == "Ready"
    assert nodes[0]["first_seen_at"] is not None


async def test_unchanged_restore_writes_and_locks_nothing(store: Store) -> None:
    run = await store.start_run()
    await store.store_inventory(run, inventory(nodes=50))
    before = await _snapshot(store)
    stats = await store.store_inventory(await store.start_run(), inventory(nodes=50))
    assert stats.versions_written == 0
    assert stats.versions_closed == 0
    assert await _snapshot(store) == before


async def test_changes_write_exactly_the_expected_versions(store: Store) -> None:
    base = inventory(nodes=5)
    await store.store_inventory(await store.start_run(), base)
    async with store.connection() as conn:
        first_time = await conn.fetchval("SELECT max(valid_from) FROM inventory.node_history")
    assert base.nodes is not None
    nodes = list(base.nodes)
    changed = inventory(
        nodes=(
            nodes[0],
            cordoned(nodes[1]),
            relabelled(nodes[2], team="payments"),
            nodes[3],  # node-4 deleted
        ),
        version=version("v1.31.1"),
        api_resources=tuple(r for r in api_resources() if r.api_group != "example.com"),
    )
    stats = await store.store_inventory(await store.start_run(), changed)
    assert (stats.version.inserted, stats.version.closed) == (1, 1)
    assert (stats.nodes.inserted, stats.nodes.closed) == (2, 3)
    assert (stats.api_resources.inserted, stats.api_resources.closed) == (0, 3)
    assert (stats.services.inserted, stats.services.closed) == (0, 0)

    async with store.connection() as conn:
        second_time = await conn.fetchval("SELECT max(valid_from) FROM inventory.node_history")
        closed = await conn.fetch(
            "SELECT name, valid_to FROM inventory.node_history WHERE valid_to IS NOT NULL "
            "ORDER BY name"
        )
        assert [(r["name"], r["valid_to"]) for r in closed] == [
            ("node-1", second_time),
            ("node-2", second_time),
            ("node-4", second_time),
        ]
        assert await conn.fetchval("SELECT count(*) FROM inventory.node_history") == 7
        versions = await conn.fetch(
            "SELECT git_version, valid_from, valid_to FROM inventory.cluster_version_history "
            "ORDER BY valid_from"
        )
        assert [tuple(v) for v in versions] == [
            ("v1.30.2", first_time, second_time),
            ("v1.31.1", second_time, None),
        ]
        dropped = await conn.fetch(
            "SELECT resource, api_version FROM inventory.api_resource_history "
            "WHERE valid_to = $1 ORDER BY 1, 2",
            second_time,
        )
        assert [tuple(r) for r in dropped] == [
            ("gadgets", "v1"),
            ("widgets", "v1"),
            ("widgets", "v1alpha1"),
        ]
    current = {n["name"]: n for n in await fetch_view(store, "node_current")}
    assert sorted(current) == ["node-0", "node-1", "node-2", "node-3"]
    assert current["node-1"]["unschedulable"] is True
    assert current["node-2"]["labels"]["team"] == "payments"
    # first_seen_at is carried over to the new version of a node.
    assert current["node-1"]["first_seen_at"] == first_time
    [cluster] = await fetch_view(store, "cluster_current")
    assert (cluster["git_version"], cluster["minor_version"]) == ("v1.31.1", 31)
    assert cluster["node_count"] == 4

    # As of a moment between the two stores: the earlier state.
    between = first_time + (second_time - first_time) / 2
    then = {n["name"]: n for n in await fetch_view(store, "node_as_of", between)}
    assert sorted(then) == ["node-0", "node-1", "node-2", "node-3", "node-4"]
    assert then["node-1"]["unschedulable"] is False
    assert "team" not in then["node-2"]["labels"]
    api_then = await fetch_view(store, "api_resource_as_of", between)
    assert len(api_then) == len(api_resources())
    assert len(await fetch_view(store, "api_resource_current")) == len(api_resources()) - 3

    # A third, unchanged store writes nothing.
    before = await _snapshot(store)
    again = await store.store_inventory(await store.start_run(), changed)
    assert again.versions_written == again.versions_closed == 0
    assert await _snapshot(store) == before


async def test_recreated_node_with_same_name_is_a_new_node(store: Store) -> None:
    await store.store_inventory(None, inventory(nodes=2))
    replacement = node(1, node_uid="c-uid-1-new")
    stats = await store.store_inventory(None, inventory(nodes=(node(0, cluster="c"), replacement)))
    assert (stats.nodes.inserted, stats.nodes.closed) == (1, 1)
    rows = await fetch_view(store, "node_current", order_by=["name"])
    assert [r["node_uid"] for r in rows] == ["c-uid-0", "c-uid-1-new"]


async def test_parts_not_read_are_kept(store: Store) -> None:
    await store.store_inventory(None, inventory(nodes=3))
    before = await _snapshot(store)
    stats = await store.store_inventory(
        None, inventory(nodes=None, api_resources=None, version=None, services=None)
    )
    assert stats.nodes.skipped and stats.api_resources.skipped and stats.version.skipped
    assert await _snapshot(store) == before
    [cluster] = await fetch_view(store, "cluster_current")
    assert cluster["node_count"] == 3
    assert cluster["last_status"] == "partial"
    assert "nodes" in cluster["last_error"]


async def test_failed_groups_keep_their_stored_resources(store: Store) -> None:
    await store.store_inventory(None, inventory())
    # example.com failed: absent from what was read; metrics.k8s.io is really gone.
    read = tuple(r for r in api_resources() if r.api_group not in ("example.com", "metrics.k8s.io"))
    stats = await store.store_inventory(
        None, inventory(api_resources=read, failed_groups=("example.com",))
    )
    assert (stats.api_resources.inserted, stats.api_resources.closed) == (0, 1)
    groups = {r["api_group"] for r in await fetch_view(store, "api_resource_current")}
    assert groups == {"", "apps", "batch", "example.com"}


async def test_failed_group_with_nothing_stored_takes_what_was_read(store: Store) -> None:
    stats = await store.store_inventory(None, inventory(failed_groups=("metrics.k8s.io",)))
    assert stats.api_resources.inserted == len(api_resources())


async def test_failed_cluster_keeps_its_state_and_shows_failed(store: Store) -> None:
    run = await store.start_run()
    await store.store_inventory(run, inventory(nodes=4))
    await store.record_outcomes(
        run,
        [TargetOutcome(kubeconfig_path="/k/a", context_name="ctx-a", status="ok", cluster_id="c")],
    )
    await store.finish_run(run, "ok")
    before = await _snapshot(store)

    run2 = await store.start_run()
    failure = TargetOutcome(
        kubeconfig_path="/k/a",
        context_name="ctx-a",
        status="failed",
        error_class="Unreachable",
        error_message="connection refused",
    )
    await store.record_outcomes(run2, [failure])
    await store.finish_run(run2, "failed")

    assert await _snapshot(store) == before
    [cluster] = await fetch_view(store, "cluster_current")
    assert cluster["last_status"] == "failed"
    assert cluster["last_error"] == "Unreachable: connection refused"
    assert cluster["node_count"] == 4
    ledger = await fetch_view(store, "cluster_collection", order_by=["run_id"])
    assert [(r["status"], r["cluster_id"]) for r in ledger] == [("ok", "c"), ("failed", None)]
    runs = await fetch_view(store, "collection_run", order_by=["run_id"])
    assert [r["status"] for r in runs] == ["ok", "failed"]
    assert all(r["finished_at"] is not None for r in runs)

    # The next good run clears it.
    run3 = await store.start_run()
    await store.store_inventory(run3, inventory(nodes=4))
    await store.record_outcomes(
        run3,
        [TargetOutcome(kubeconfig_path="/k/a", context_name="ctx-a", status="ok", cluster_id="c")],
    )
    [cluster] = await fetch_view(store, "cluster_current")
    assert (cluster["last_status"], cluster["last_error"]) == ("ok", None)


async def test_cluster_ok_through_one_context_is_not_failed_by_another(store: Store) -> None:
    run = await store.start_run()
    await store.store_inventory(run, inventory(contexts=("a", "b")))
    outcomes = [
        TargetOutcome(kubeconfig_path="/k", context_name="a", status="ok", cluster_id="c"),
        TargetOutcome(kubeconfig_path="/k", context_name="b", status="ok", cluster_id="c",
                      deduplicated=True),
        TargetOutcome(kubeconfig_path="/k2", context_name="c", status="failed",
                      error_class="Auth", error_message="401"),
    ]  # fmt: skip
    await store.record_outcomes(run, outcomes)
    [cluster] = await fetch_view(store, "cluster_current")
    assert cluster["last_status"] == "ok"
    assert cluster["context_names"] == ["a", "b"]
    ledger = await fetch_view(store, "cluster_collection", order_by=["context_name"])
    assert [(r["context_name"], r["deduplicated"]) for r in ledger] == [
        ("a", False),
        ("b", True),
        ("c", False),
    ]


async def test_ledger_row_holds_everything(store: Store) -> None:
    run = await store.start_run()
    outcome = TargetOutcome(
        kubeconfig_path="/k", context_name="a", status="partial", cluster_id="c",
        error_class="Forbidden", error_message="nodes is forbidden", duration_ms=1234,
        discovery_mode="legacy", insecure_skip_tls_verify=True, node_count=None,
        api_resource_count=57,
    )  # fmt: skip
    await store.record_outcomes(run, [outcome])
    await store.record_outcomes(run, [outcome])  # idempotent
    [row] = await fetch_view(store, "cluster_collection")
    assert row["status"] == "partial"
    assert row["error_class"] == "Forbidden"
    assert row["duration_ms"] == 1234
    assert row["discovery_mode"] == "legacy"
    assert row["insecure_skip_tls_verify"] is True
    assert row["api_resource_count"] == 57


async def test_bad_values_are_reported_not_fatal(store: Store) -> None:
    odd = node(0, internal_ip="not-an-ip", memory_capacity_bytes=10**30)
    dup = node(0, name="duplicate-of-node-0")
    stats = await store.store_inventory(None, inventory(nodes=(odd, dup, node(1, cluster="c"))))
    assert stats.nodes.inserted == 2
    async with store.connection() as conn:
        row = await conn.fetchrow(
            "SELECT internal_ip, memory_capacity_bytes, problems FROM inventory.node_history "
            "WHERE name = 'node-0'"
        )
    assert row["internal_ip"] is None
    assert row["memory_capacity_bytes"] is None
    assert len(row["problems"]) == 2


async def test_store_at_an_earlier_time_is_refused(store: Store) -> None:
    await store.store_inventory(None, inventory())
    async with store.connection() as conn:
        now = await conn.fetchval("SELECT now()")
    with pytest.raises(StoreError, match="not later"):
        await store.store_inventory(
            None, inventory(version=version("v1.31.0")), at=now - timedelta(days=1)
        )


async def test_controlled_times(store: Store) -> None:
    async with store.connection() as conn:
        t0 = await conn.fetchval("SELECT now() - interval '3 days'")
    await store.store_inventory(None, inventory(), at=t0)
    await store.store_inventory(
        None, inventory(version=version("v1.31.0")), at=t0 + timedelta(days=1)
    )
    async with store.connection() as conn:
        rows = await conn.fetch(
            "SELECT git_version, valid_from, valid_to FROM inventory.cluster_version_history "
            "ORDER BY valid_from"
        )
    assert [tuple(r) for r in rows] == [
        ("v1.30.2", t0, t0 + timedelta(days=1)),
        ("v1.31.0", t0 + timedelta(days=1), None),
    ]


async def test_concurrent_stores_of_one_cluster_serialize(store: Store) -> None:
    await store.store_inventory(None, inventory(nodes=200))
    variants = [
        inventory(nodes=tuple(relabelled(node(i, cluster="c"), v=str(k)) for i in range(200)))
        for k in range(4)
    ]
    results = await asyncio.gather(*(store.store_inventory(None, v) for v in variants))
    assert all(r.nodes.inserted == 200 for r in results)
    async with store.connection() as conn:
        current = await conn.fetchval(
            "SELECT count(*) FROM inventory.node_history WHERE valid_to IS NULL"
        )
        total = await conn.fetchval("SELECT count(*) FROM inventory.node_history")
        gaps = await conn.fetchval(
            """SELECT count(*) FROM inventory.node_history a
               WHERE a.valid_to IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM inventory.node_history b
                 WHERE b.node_uid = a.node_uid AND b.valid_from = a.valid_to)"""
        )
    assert current == 200
    assert total == 200 * 5
    assert gaps == 0


async def test_cancelled_store_leaves_old_state_complete(store: Store) -> None:
    await store.store_inventory(None, inventory(nodes=3000))
    before = await _snapshot(store)
    big = inventory(nodes=tuple(relabelled(node(i, cluster="c"), x="y") for i in range(3000)))
    task = asyncio.create_task(store.store_inventory(None, big))
    await asyncio.sleep(0.02)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        assert await _snapshot(store) == before  # rolled back: the complete old state
    else:
        labels = [n["labels"].get("x") for n in await fetch_view(store, "node_current")]
        assert labels == ["y"] * 3000  # it committed before the cancel: the complete new state


async def test_claims(store: Store) -> None:
    run_a = await store.start_run()
    run_b = await store.start_run()
    assert await store.claim_cluster(run_a, "c")
    assert await store.claim_cluster(run_a, "c")  # again, same run
    assert not await store.claim_cluster(run_b, "c")  # a is still running
    holder = await store.claim_holder("c")
    assert holder is not None and holder["run_id"] == run_a
    await store.finish_run(run_a, "ok")
    # Collected in this interval: refused with fresh_within, allowed without it.
    assert not await store.claim_cluster(run_b, "c", fresh_within=timedelta(minutes=7))
    assert await store.claim_cluster(run_b, "c")
    # A crashed collector's claim expires after stale_after.
    run_c = await store.start_run()
    assert not await store.claim_cluster(run_c, "c")
    assert await store.claim_cluster(run_c, "c", stale_after=timedelta(0))


async def _kill_collector(store: Store, run_id: int) -> None:
    """What PostgreSQL sees when a collector is SIGKILLed: its run's session goes away."""
    async with store.connection() as conn:
        pids = await conn.fetch(
            # Advisory locks are per database: other databases on a shared server may hold
            # the same key.
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((classid::bigint << 32) | objid::bigint) = inventory.run_lock_key($1)",
            run_id,
        )
        assert len(pids) == 1, pids
        await conn.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
    for _ in range(100):
        if not await store.run_is_live(run_id):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} still looks alive")


async def test_a_dead_collectors_claims_do_not_block(store: Store) -> None:
    run_a, run_b = await store.start_run(), await store.start_run()
    assert await store.run_is_live(run_a)
    assert await store.claim_cluster(run_a, "c")
    assert not await store.claim_cluster(run_b, "c")
    assert (await store.describe_claim("c")).endswith(") is collecting it")
    assert f"run {run_a} (" in await store.describe_claim("c")
    await _kill_collector(store, run_a)
    holder = await store.claim_holder("c")
    assert holder is not None and holder["run_id"] == run_a and not holder["alive"]
    # No wait for stale_after: the claim of a dead collector blocks nothing.
    assert await store.claim_cluster(run_b, "c", fresh_within=timedelta(minutes=7))
    # The next run marks the dead one abandoned; the live one is left alone.
    await store.start_run()
    async with store.connection() as conn:
        statuses = dict(
            await conn.fetch("SELECT run_id, status FROM inventory.collection_run ORDER BY 1")
        )
    assert statuses[run_a] == "abandoned"
    assert statuses[run_b] == "running"


async def test_a_dead_collector_that_stored_the_cluster_counts_for_the_interval(
    store: Store,
) -> None:
    run_a, run_b = await store.start_run(), await store.start_run()
    assert await store.claim_cluster(run_a, "c")
    await store.store_inventory(run_a, inventory("c"))
    await _kill_collector(store, run_a)
    # Stored in this interval (the daemon's fresh_within): not collected again.
    assert not await store.claim_cluster(run_b, "c", fresh_within=timedelta(minutes=7))
    message = await store.describe_claim("c")
    assert message.startswith(f"not collected by this run: run {run_a} (")
    assert "collected it at" in message
    assert await store.claim_cluster(run_b, "c")  # a one-shot collect takes it


async def test_finish_run_releases_the_run_lock(store: Store) -> None:
    run = await store.start_run()
    assert await store.run_is_live(run)
    await store.finish_run(run, "ok")
    assert not await store.run_is_live(run)
    other = await store.start_run()
    await store.close()  # closing the store ends its runs' sessions too
    reopened = await open_store(store.dsn, max_size=1)
    try:
        assert not await reopened.run_is_live(other)
    finally:
        await reopened.close()


async def test_concurrent_claims_have_one_winner(store: Store) -> None:
    runs = [await store.start_run() for _ in range(6)]
    won = await asyncio.gather(*(store.claim_cluster(r, "contested") for r in runs))
    assert sum(won) == 1


async def test_fetch_view_rejects_injection(store: Store) -> None:
    """The tests' view reader (kubeinv itself runs named queries only)."""
    with pytest.raises(ValueError):
        await fetch_view(store, "node_current; DROP TABLE x")
    with pytest.raises(ValueError):
        await fetch_view(store, "node_current", order_by=["name; --"])


def test_records_are_hashed() -> None:
    a, b = node(1), msgspec.structs.replace(node(1), problems=("x",))
    assert a.content_hash == b.content_hash


async def test_node_that_comes_back_keeps_its_first_seen_at(store: Store) -> None:
    await store.store_inventory(None, inventory(nodes=2))
    [first] = [n for n in await fetch_view(store, "node_current") if n["name"] == "node-1"]
    await store.store_inventory(None, inventory(nodes=1))  # node-1 gone
    stats = await store.store_inventory(None, inventory(nodes=2))  # and back, same uid
    assert (stats.nodes.inserted, stats.nodes.closed) == (1, 0)
    [back] = [n for n in await fetch_view(store, "node_current") if n["name"] == "node-1"]
    assert back["first_seen_at"] == first["first_seen_at"]
    async with store.connection() as conn:
        versions = await conn.fetchval(
            "SELECT count(*) FROM inventory.node_history WHERE name = 'node-1'"
        )
    assert versions == 2


async def test_connections_get_a_large_socket_send_buffer(store: Store) -> None:
    """COPY keeps the backend busy only if the socket holds more than one asyncpg chunk."""
    wmem_max = int(await asyncio.to_thread(Path("/proc/sys/net/core/wmem_max").read_text))
    expected = 2 * min(SEND_BUFFER_BYTES, wmem_max)  # the kernel doubles what it is given
    async with store.connection() as conn:
        sock = conn._transport.get_extra_info("socket")  # type: ignore[union-attr]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= expected


async def test_a_run_stopped_by_an_unexpected_error_is_finished_and_releases_its_lock(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside a run must not leave it live: its claims would block the daemon's next runs."""

    async def broken_gather(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(collector.gathering, "gather", broken_gather)
    with pytest.raises(RuntimeError, match="a bug"):
        await collect_once(Settings(), store=store, loaded=LoadedTargets([], []))
    async with store.connection() as conn:
        run = await conn.fetchrow(
            "SELECT run_id, status, finished_at FROM inventory.collection_run "
            "ORDER BY run_id DESC LIMIT 1"
        )
    assert run is not None
    assert run["status"] == "failed"
    assert run["finished_at"] is not None
    assert not await store.run_is_live(run["run_id"])


async def test_a_large_first_store_keeps_the_trigger_rows_in_memory(store: Store) -> None:
    """The statement triggers' transition table of a big first store must not spill to disk.

    10,000 node versions of ~5 KB take 8 KB each in memory (~80 MB): more than 64 MB, within the
    store transaction's work_mem. A spill writes every row to a temporary file and reads it back
    once per trigger."""
    labels = {f"example.com/label-{k:02d}": "v" * 90 for k in range(30)}
    nodes = tuple(node(i, cluster="big", labels=labels) for i in range(10_000))
    async with store.connection() as conn:
        if await conn.fetchval("SELECT to_regproc('pg_stat_force_next_flush') IS NULL"):
            pytest.skip("needs PostgreSQL 15 or newer (pg_stat_force_next_flush)")
        await store_cluster(conn, load_queries(), None, inventory("big", nodes=nodes))
        await conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's counters
        stored, temp_files = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM inventory.node_current WHERE cluster_id = 'big'), "
            "temp_files FROM pg_stat_database WHERE datname = current_database()"
        )
    assert stored == 10_000
    assert temp_files == 0
