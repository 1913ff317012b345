"""The daily series read a per-day summary (sql/schema/history/node_daily_delta.sql) kept by
the triggers on node_history (sql/schema/history/node_history_triggers.sql).

These tests check that summary against the history it summarizes, on real PostgreSQL: after the
store's own writes, after direct INSERT / UPDATE / DELETE / TRUNCATE, and that the series built
from it equal the straightforward definition (every history row expanded into its days)
for several windows and pretend "now"s, including today's partial day and a now in the past.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest

from collector.store import Store
from tests.analytics.history import FleetHistory
from tests.analytics.scenario import build_fleet

# The summary recomputed from node_history: what node_daily_delta must hold (zero sums omitted).
RECOMPUTED = """
SELECT cluster_id, day, sum(s)::bigint AS nodes, coalesce(sum(s * cpu), 0) AS cpu,
       coalesce(sum(s * mem), 0) AS mem, coalesce(sum(s * gpu), 0) AS gpu
FROM (
    SELECT cluster_id, (valid_from AT TIME ZONE 'UTC')::date AS day, 1 AS s,
           cpu_capacity_millicores AS cpu, memory_capacity_bytes AS mem, gpu_capacity AS gpu
    FROM inventory.node_history
    UNION ALL
    SELECT cluster_id, (valid_to AT TIME ZONE 'UTC')::date, -1, cpu_capacity_millicores,
           memory_capacity_bytes, gpu_capacity
    FROM inventory.node_history WHERE valid_to IS NOT NULL
) e
GROUP BY cluster_id, day
HAVING sum(s) <> 0 OR coalesce(sum(s * cpu), 0) <> 0 OR coalesce(sum(s * mem), 0) <> 0
    OR coalesce(sum(s * gpu), 0) <> 0
ORDER BY cluster_id, day
"""

STORED = """
SELECT cluster_id, day, nodes, cpu_capacity_millicores AS cpu, memory_capacity_bytes AS mem,
       gpu_capacity AS gpu
FROM inventory.node_daily_delta
WHERE nodes <> 0 OR cpu_capacity_millicores <> 0 OR memory_capacity_bytes <> 0
   OR gpu_capacity <> 0
ORDER BY cluster_id, day
"""

# The plain definition of node_totals_daily: each history row expanded into the days it was
# current at their end.
REFERENCE_TOTALS = """
WITH b AS (
    SELECT $1::date AS d0, least($2::date, inventory.analytics_today()) AS d1,
           inventory.analytics_now() AS now_ts
)
SELECT b.d0 + i AS day, n.cluster_id, count(*) AS nodes,
       coalesce(sum(n.cpu_capacity_millicores), 0) AS cpu,
       coalesce(sum(n.memory_capacity_bytes), 0) AS mem, coalesce(sum(n.gpu_capacity), 0) AS gpu
FROM b
JOIN inventory.node_history n
  ON n.valid_from < ((b.d1 + 1)::timestamp AT TIME ZONE 'UTC')
 AND n.valid_from < b.now_ts
 AND (n.valid_to IS NULL OR n.valid_to > b.now_ts
      OR n.valid_to >= ((b.d0 + 1)::timestamp AT TIME ZONE 'UTC'))
CROSS JOIN LATERAL generate_series(
    greatest((n.valid_from AT TIME ZONE 'UTC')::date, b.d0) - b.d0,
    CASE WHEN n.valid_to IS NULL OR n.valid_to > b.now_ts THEN b.d1
         ELSE least((n.valid_to AT TIME ZONE 'UTC')::date - 1, b.d1) END - b.d0) AS i
GROUP BY 1, 2
ORDER BY 1, 2
"""

TOTALS = """
SELECT day, cluster_id, nodes, cpu_capacity_millicores AS cpu, memory_capacity_bytes AS mem,
       gpu_capacity AS gpu
FROM inventory.node_totals_daily($1, $2)
WHERE nodes <> 0
ORDER BY 1, 2
"""


async def rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def assert_summary_exact(conn: asyncpg.Connection) -> None:
    recomputed = await rows(conn, RECOMPUTED)
    assert recomputed, "the history is empty: nothing was checked"
    assert await rows(conn, STORED) == recomputed


@pytest.fixture
async def fleet(store: Store, conn: asyncpg.Connection) -> asyncpg.Connection:
    await build_fleet(FleetHistory(store))
    await conn.execute("SET TimeZone = 'America/Los_Angeles'")  # days must still be UTC days
    return conn


async def test_summary_follows_the_store_writes(fleet: asyncpg.Connection) -> None:
    await assert_summary_exact(fleet)


async def test_summary_follows_direct_inserts_updates_deletes(fleet: asyncpg.Connection) -> None:
    conn = fleet
    # a node version copied into another node, days and capacity
    await conn.execute("CREATE TEMP TABLE extra AS SELECT * FROM inventory.node_history LIMIT 1")
    await conn.execute(
        "UPDATE extra SET node_uid = 'extra-uid', valid_from = '2026-03-04 23:30+00',"
        " valid_to = '2026-03-08 00:00+00', gpu_capacity = 3"
    )
    await conn.execute("INSERT INTO inventory.node_history SELECT * FROM extra")
    await assert_summary_exact(conn)
    # closing a current version
    await conn.execute(
        "UPDATE inventory.node_history SET valid_to = valid_from + interval '26 hours' "
        "WHERE valid_to IS NULL AND node_uid = (SELECT min(node_uid) FROM inventory.node_history)"
    )
    await assert_summary_exact(conn)
    # moving a version and changing its capacity
    await conn.execute(
        "UPDATE inventory.node_history SET cpu_capacity_millicores = cpu_capacity_millicores + 500,"
        " valid_from = valid_from - interval '1 day' WHERE node_uid = 'extra-uid'"
    )
    await assert_summary_exact(conn)
    await conn.execute(
        "DELETE FROM inventory.node_history WHERE ctid IN"
        " (SELECT ctid FROM inventory.node_history ORDER BY valid_from DESC LIMIT 2)"
    )
    await assert_summary_exact(conn)
    await conn.execute("TRUNCATE inventory.node_history")
    assert await conn.fetchval("SELECT count(*) FROM inventory.node_daily_delta") == 0


@pytest.mark.parametrize(
    ("now", "from_day", "to_day"),
    [
        ("2026-03-10 12:00:00+00", "2026-02-25", "2026-03-20"),  # today partial, future days cut
        ("2026-03-06 00:00:00+00", "2026-03-01", "2026-03-10"),  # now exactly at midnight
        ("2026-03-05 09:30:00+00", "2026-03-03", "2026-03-05"),  # now in the past of the data
        ("2026-03-10 12:00:00+00", "2026-03-04", "2026-03-04"),  # one past day
        ("2026-04-30 08:00:00+00", "2026-03-01", "2026-04-30"),  # long after the last write
    ],
)
async def test_totals_equal_the_row_by_row_definition(
    fleet: asyncpg.Connection, now: str, from_day: str, to_day: str
) -> None:
    conn = fleet
    await conn.execute(f"SET kubeinv.now = '{now}'")
    d0, d1 = date.fromisoformat(from_day), date.fromisoformat(to_day)
    expected = await rows(conn, REFERENCE_TOTALS, d0, d1)
    assert expected, "no rows: nothing was compared"
    assert await rows(conn, TOTALS, d0, d1) == expected
