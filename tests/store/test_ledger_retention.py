"""Ledger retention against real PostgreSQL: what is deleted, what is always kept, batches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from collector import running
from collector.errors import SettingsError
from collector.records import TargetOutcome
from collector.settings import load_settings, parse_retention
from collector.store import Store, open_store
from tests.plugins.pg import database_of

from .builders import inventory

KC = "/etc/kubeinv/fleet.yaml"


def _ok(context: str, cluster: str, *, dedup: bool = False) -> TargetOutcome:
    return TargetOutcome(
        kubeconfig_path=KC,
        context_name=context,
        status="ok",
        cluster_id=cluster,
        deduplicated=dedup,
    )


def _failed(context: str) -> TargetOutcome:
    return TargetOutcome(
        kubeconfig_path=KC, context_name=context, status="failed", error_class="Unreachable"
    )


async def _run(
    store: Store,
    days_ago: int,
    outcomes: list[TargetOutcome],
    *,
    clusters: tuple[str, ...] = (),
    finish: bool = True,
) -> int:
    run_id = await store.start_run()
    for cluster in clusters:
        await store.store_inventory(run_id, inventory(cluster_id=cluster, nodes=2))
    await store.record_outcomes(run_id, outcomes)
    if finish:
        await store.finish_run(run_id, "ok")
    async with store.connection() as conn:
        await conn.execute(
            "UPDATE inventory.collection_run SET started_at = now() - $2::interval, "
            "finished_at = CASE WHEN finished_at IS NULL THEN NULL "
            "ELSE now() - $2::interval + interval '1 second' END WHERE run_id = $1",
            run_id,
            timedelta(days=days_ago),
        )
    return run_id


async def _ledger(store: Store) -> dict[str, Any]:
    async with store.connection() as conn:
        runs = {
            r["run_id"] for r in await conn.fetch("SELECT run_id FROM inventory.collection_run")
        }
        rows = {
            (r["run_id"], r["context_name"], r["cluster_id"])
            for r in await conn.fetch(
                "SELECT run_id, context_name, cluster_id FROM inventory.cluster_collection"
            )
        }
        history = await conn.fetchval(
            "SELECT (SELECT count(*) FROM inventory.node_history) "
            "+ (SELECT count(*) FROM inventory.cluster_version_history) "
            "+ (SELECT count(*) FROM inventory.api_resource_history)"
        )
    return {"runs": runs, "rows": rows, "history": history}


async def _build(store: Store) -> dict[str, int]:
    """Target a always identifies cluster c; b identified c once (r1) and fails ever since;
    'gone' identified d until r2, which is d's last run. r3 holds a claim. r5 never finished."""
    both = ("c", "d")
    r1 = await _run(
        store, 200, [_ok("a", "c"), _ok("b", "c", dedup=True), _ok("gone", "d")], clusters=both
    )
    r2 = await _run(store, 150, [_ok("a", "c"), _failed("b"), _ok("gone", "d")], clusters=both)
    r3 = await _run(store, 120, [_ok("a", "c"), _failed("b")], clusters=("c",))
    assert await store.claim_cluster(r3, "x")
    r3b = await _run(store, 100, [_ok("a", "c"), _failed("b")], clusters=("c",))
    r4 = await _run(store, 10, [_ok("a", "c"), _failed("b")], clusters=("c",))
    r5 = await _run(store, 200, [], finish=False)
    return {"r1": r1, "r2": r2, "r3": r3, "r3b": r3b, "r4": r4, "r5": r5}


async def test_old_ledger_rows_go_what_anything_refers_to_stays_and_history_is_untouched(
    store: Store,
) -> None:
    r = await _build(store)
    before = await _ledger(store)

    pruned = await store.prune_ledger(timedelta(days=90))

    after = await _ledger(store)
    assert after["history"] == before["history"]  # history is never pruned
    assert after["runs"] == before["runs"] - {r["r3b"]}
    assert after["rows"] == {
        # r1: only b's row, the last time b identified its cluster.
        (r["r1"], "b", "c"),
        # r2: d's last run (inventory.cluster.last_run_id): kept whole.
        (r["r2"], "a", "c"),
        (r["r2"], "b", None),
        (r["r2"], "gone", "d"),
        # r3: it holds a claim.
        (r["r3"], "a", "c"),
        (r["r3"], "b", None),
        # r4: younger than 90 days.
        (r["r4"], "a", "c"),
        (r["r4"], "b", None),
    }
    assert (pruned.rows, pruned.runs) == (len(before["rows"]) - len(after["rows"]), 1)

    # What the kept rows are for: b's failures still belong to cluster c, and c is found by b.
    async with store.connection() as conn:
        assert await conn.fetchval("SELECT inventory.resolve_cluster('b')") == "c"
        assert await conn.fetchval("SELECT inventory.resolve_cluster('gone')") == "d"
    await store.record_outcomes(r["r5"], [_failed("a"), _failed("b")])
    async with store.connection() as conn:
        status = await conn.fetchval(
            "SELECT last_status FROM inventory.cluster WHERE cluster_id = 'c'"
        )
    assert status == "failed"

    # Nothing left to do: a second pass deletes nothing.
    again = await store.prune_ledger(timedelta(days=90))
    assert (again.rows, again.runs) == (0, 0)


async def test_pruning_goes_in_batches_and_a_call_does_a_bounded_amount(store: Store) -> None:
    r = await _build(store)
    before = await _ledger(store)
    first = await store.prune_ledger(timedelta(days=90), batch=1, max_batches=2)
    assert (first.rows, first.runs) == (2, 0)  # two statements of one row; no run is empty yet
    rest = await store.prune_ledger(timedelta(days=90), batch=1)
    after = await _ledger(store)
    assert first.rows + rest.rows == len(before["rows"]) - len(after["rows"]) == 4
    assert rest.runs == 1 and r["r3b"] not in after["runs"]
    with pytest.raises(ValueError):
        await store.prune_ledger(timedelta(days=1), batch=0)


async def test_the_run_end_step_follows_retention_ledger(store: Store) -> None:
    r = await _build(store)
    before = await _ledger(store)

    keep_all = load_settings({"retention": {"ledger": "0"}}, environ={})
    await running.prune_ledger(store, keep_all)
    assert await _ledger(store) == before

    from_env = load_settings({}, environ={"KUBEINV_RETENTION__LEDGER": "120d"})
    await running.prune_ledger(store, from_env)
    middle = await _ledger(store)
    assert middle["runs"] == before["runs"]  # r3b (100 days) is younger than 120 days
    assert (r["r1"], "a", "c") not in middle["rows"]
    assert (r["r3b"], "a", "c") in middle["rows"]

    default = load_settings({}, environ={})
    assert default.retention.ledger == "90d"
    await running.prune_ledger(store, default)
    assert r["r3b"] not in (await _ledger(store))["runs"]


@pytest.mark.parametrize(
    ("text", "days"),
    [("90d", 90.0), ("12h", 0.5), ("0", None), ("0d", None), ("0s", None), (0, None), (30, None)],
)
def test_parse_retention(text: Any, days: float | None) -> None:
    got = parse_retention(text)
    if text == 30:  # a number is seconds, as everywhere else
        assert got == timedelta(seconds=30)
        return
    assert got == (None if days is None else timedelta(days=days))


def test_a_bad_retention_names_the_setting_and_its_source() -> None:
    with pytest.raises(SettingsError, match=r"retention.ledger.*KUBEINV_RETENTION__LEDGER"):
        load_settings({}, environ={"KUBEINV_RETENTION__LEDGER": "forever"})
    with pytest.raises(SettingsError, match=r"retention.ledger.*--ledger-retention"):
        load_settings(
            {"retention": {"ledger": "-3d"}},
            environ={},
            flag_names={"retention.ledger": "--ledger-retention"},
        )


async def test_a_failed_pruning_is_a_warning_not_a_failed_run(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(pg_dsn, max_size=1)
    async with store.connection() as conn:
        # The ledger is locked by someone else for longer than the statement may wait.
        await conn.execute("ALTER DATABASE " + database_of(pg_dsn) + " SET lock_timeout = '50ms'")
    await store.close()
    store = await open_store(pg_dsn, max_size=1)
    blocker = await asyncpg.connect(pg_dsn)
    try:
        await _run(store, 200, [_ok("a", "c")], clusters=("c",))
        await _run(store, 1, [_ok("a", "c")], clusters=("c",))
        async with blocker.transaction():
            await blocker.execute(
                "LOCK TABLE inventory.cluster_collection IN ACCESS EXCLUSIVE MODE"
            )
            await running.prune_ledger(store, load_settings({}, environ={}))
        assert "the run ledger was not pruned" in caplog.text
        assert "lock timeout" in caplog.text
        # Once the lock is gone, the next run's pruning does it.
        await running.prune_ledger(store, load_settings({}, environ={}))
        assert len((await _ledger(store))["runs"]) == 1
    finally:
        await blocker.close()
        await store.close()
