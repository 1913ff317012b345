"""Cluster retirement and the cluster registry (queries: ``sql/queries/lifecycle.sql``; schema:
``sql/schema/tables/cluster_lifecycle.sql``).

A cluster is *reached* by a run when a target of the run identified it, or when a target of the
run (same kubeconfig path and context name) identified it the last time it identified anything.
A cluster that no run reached for longer than ``lifecycle.retire_after`` is retired at the end
of a run: one transaction per cluster, under the cluster's lock, closing every open version at
the retirement time. Nothing is deleted; a retired cluster whose inventory is stored again comes
back (``writing.store_cluster`` ends its retirement).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from collector.errors import ConfigError
from collector.store.writing import Connection


@dataclass(frozen=True)
class Retirement:
    cluster_id: str
    retired_at: datetime | None  # None: it was retired already (by hand: see ``previous``)
    retired_by: str
    last_reached_at: datetime | None = None
    previous: datetime | None = None  # the earlier retirement, when it was retired already
    name: str | None = None  # as the user named it (retire by hand)


async def mark_reached(
    conn: Connection,
    q: dict[str, str],
    run_id: int,
    filtered_out: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """Mark the clusters run ``run_id`` reached, and those last identified through one of the
    ``filtered_out`` (kubeconfig path, context) pairs; returns their ids. Needs the run's
    ledger rows and target identities (``Store.record_outcomes``)."""
    paths = [path for path, _ in filtered_out]
    contexts = [context for _, context in filtered_out]
    rows = await conn.fetch(q["mark_reached"], run_id, paths, contexts)
    return sorted(str(r["cluster_id"]) for r in rows)


async def retire_unseen(
    conn: Connection, q: dict[str, str], run_id: int, retire_after: timedelta
) -> list[Retirement]:
    """Retire every cluster that no run reached for longer than ``retire_after`` (run
    ``run_id`` did not reach it): one transaction per cluster."""
    candidates = await conn.fetch(q["retirement_candidates"], run_id, retire_after)
    retired = []
    for row in candidates:
        cid = str(row["cluster_id"])
        async with conn.transaction():
            await conn.execute(q["lock_cluster"], cid)
            if not await conn.fetchval(q["still_unseen"], cid, retire_after, run_id):
                continue
            at: datetime = await conn.fetchval(q["version_time"])
            if await conn.fetchval(q["retire_cluster"], cid, at, "unseen", run_id):
                retired.append(Retirement(cid, at, "unseen", row["last_reached_at"]))
    return retired


async def retire_by_hand(conn: Connection, q: dict[str, str], name: str) -> Retirement:
    """Retire the cluster named ``name`` (a cluster id or a context name), in one transaction.

    An unknown name, or a context name reaching several clusters, is a :class:`ConfigError`.
    """
    try:
        cid = str(await conn.fetchval(q["resolve_cluster"], name))
    except (asyncpg.NoDataFoundError, asyncpg.CardinalityViolationError) as exc:
        raise ConfigError(str(exc)) from exc
    async with conn.transaction():
        await conn.execute(q["lock_cluster"], cid)
        at: datetime = await conn.fetchval(q["version_time"])
        if await conn.fetchval(q["retire_cluster"], cid, at, "manual", None):
            return Retirement(cid, at, "manual", name=name)
        earlier = await conn.fetchrow(q["retirement_of"], cid)
    assert earlier is not None
    return Retirement(
        cid, None, str(earlier["retired_by"]), previous=earlier["retired_at"], name=name
    )


async def registry(conn: Connection, q: dict[str, str]) -> list[dict[str, Any]]:
    """Every cluster ever seen (``inventory.cluster_registry``): active, stale, then retired."""
    return [dict(r) for r in await conn.fetch(q["cluster_registry"])]
