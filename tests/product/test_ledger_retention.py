"""`kubeinv collect` prunes the run ledger after its run (retention.ledger), end to end."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from collector.sim import ClusterSpec

from .conftest import clean_env, kubeinv_async

pytestmark = pytest.mark.slow


async def _age_runs(dsn: str, days: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE inventory.collection_run SET started_at = started_at - $1::interval, "
            "finished_at = finished_at - $1::interval",
            timedelta(days=days),
        )
    finally:
        await conn.close()


async def _counts(dsn: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM inventory.collection_run) AS runs, "
            "(SELECT count(*) FROM inventory.cluster_collection) AS rows, "
            "(SELECT count(*) FROM inventory.node_history) AS nodes"
        )
    finally:
        await conn.close()
    assert row is not None
    return row["runs"], row["rows"], row["nodes"]


async def test_collect_prunes_ledger_rows_older_than_the_retention(
    sim_fleet: Any, pg_dsn: str, tmp_path: Path
) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a", nodes=2)])
    env = clean_env(tmp_path)
    argv = ["collect", "--kubeconfig", str(fleet.kubeconfig), "--database-url", pg_dsn]

    for _ in range(2):
        assert (await kubeinv_async(*argv, env=env)).returncode == 0
    await _age_runs(pg_dsn, 40)  # two runs 40 days old
    assert await _counts(pg_dsn) == (2, 2, 2)

    # 0 keeps everything.
    result = await kubeinv_async(*argv, "--ledger-retention", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert await _counts(pg_dsn) == (3, 3, 2)

    # 30 days: the two old runs go; the new one and history stay.
    result = await kubeinv_async(*argv, "--ledger-retention", "30d", "-v", env=env)
    assert result.returncode == 0, result.stderr
    assert "run ledger: deleted 2 target rows and 2 runs older than 30d" in result.stderr
    assert await _counts(pg_dsn) == (2, 2, 2)

    # The default, 90 days, through the environment: nothing is that old now.
    result = await kubeinv_async(*argv, env={**env, "KUBEINV_RETENTION__LEDGER": "90d"})
    assert result.returncode == 0, result.stderr
    assert await _counts(pg_dsn) == (3, 3, 2)
