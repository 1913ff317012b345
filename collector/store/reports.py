"""Reading the analytics views for ``kubeinv report`` (queries: ``sql/queries/report.sql``).

Each method returns plain dicts keyed by the column names of the view or function it reads,
so that the JSON output of a report is exactly those columns. A cluster named by the user
that does not exist, or a context name that reaches several clusters, is a usage error
(:class:`ConfigError`, exit 2) whose message comes from ``inventory.resolve_cluster``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from collector.errors import ConfigError, StoreError
from collector.store.writing import Connection

Row = dict[str, Any]
T = TypeVar("T")
# Store._with_conn: runs a function on a pooled connection, translating connection errors.
Runner = Callable[[str, Callable[[Connection], Awaitable[Any]]], Awaitable[Any]]


class ReportReader:
    """The report queries. Get one from :meth:`collector.store.Store.reports`."""

    def __init__(self, queries: Mapping[str, str], runner: Runner) -> None:
        self._queries = queries
        self._runner = runner

    async def _fetch(self, query: str, *args: Any, what: str) -> list[Row]:
        sql = self._queries[query]

        async def run(conn: Connection) -> list[Row]:
            try:
                return [dict(row) for row in await conn.fetch(sql, *args)]
            except (asyncpg.NoDataFoundError, asyncpg.CardinalityViolationError) as exc:
                raise ConfigError(str(exc)) from exc
            except (asyncpg.UndefinedFunctionError, asyncpg.UndefinedTableError) as exc:
                raise StoreError(
                    f"the database has no analytics schema yet ({exc}): run 'kubeinv migrate'"
                ) from exc

        rows: list[Row] = await self._runner(what, run)
        return rows

    async def now(self) -> tuple[datetime, date]:
        """The database's idea of now and of today's UTC date (see inventory.analytics_now)."""
        rows = await self._fetch("report_now", what="reading the time")
        return rows[0]["now"], rows[0]["today"]

    async def today(self) -> date:
        return (await self.now())[1]

    async def resolve(self, name: str) -> str:
        """The cluster_id of a cluster named by its id or a context name."""
        rows = await self._fetch("report_resolve_cluster", name, what=f"finding cluster {name!r}")
        return str(rows[0]["resolve_cluster"])

    async def _cluster(self, name: str | None) -> str | None:
        return None if name is None else await self.resolve(name)

    async def fleet(self, cluster: str | None = None) -> list[Row]:
        cid = await self._cluster(cluster)
        return await self._fetch("report_fleet", cid, what="reading inventory.cluster_current")

    async def versions(self, from_day: date, to_day: date) -> list[Row]:
        return await self._fetch(
            "report_versions", from_day, to_day, what="reading inventory.fleet_versions_daily"
        )

    async def capacity(self, from_day: date, to_day: date, cluster: str | None = None) -> list[Row]:
        cid = await self._cluster(cluster)
        return await self._fetch(
            "report_capacity", from_day, to_day, cid, what="reading inventory.capacity_daily"
        )

    async def skew(self, *, only_problems: bool, cluster: str | None = None) -> list[Row]:
        cid = await self._cluster(cluster)
        return await self._fetch(
            "report_skew", cid, only_problems, what="reading inventory.node_skew_current"
        )

    async def changes(self, since: datetime, cluster: str | None = None) -> list[Row]:
        cid = await self._cluster(cluster)
        return await self._fetch("report_changes", since, cid, what="reading inventory.changes")

    async def changes_raw(self, since: datetime, cluster: str | None = None) -> list[Row]:
        """:meth:`changes` with ``detail`` as JSON text (str), not decoded: for output as JSON."""
        cid = await self._cluster(cluster)
        return await self._fetch("report_changes_raw", since, cid, what="reading inventory.changes")

    async def changes_page(
        self, since: datetime, limit: int, cluster: str | None = None
    ) -> tuple[list[Row], int]:
        """The first ``limit`` rows of :meth:`changes`, and how many rows there are in all."""
        cid = await self._cluster(cluster)
        rows = await self._fetch(
            "report_changes_page", since, cid, limit, what="reading inventory.changes"
        )
        total = int(rows[0].pop("total")) if rows else 0
        for row in rows[1:]:
            del row["total"]
        return rows, total

    async def changes_within(self, window: timedelta, cluster: str | None = None) -> list[Row]:
        """Changes of the last ``window`` (counted back from the database's now)."""
        now, _ = await self.now()
        return await self.changes(now - window, cluster)

    async def api_diff(self, cluster_a: str, cluster_b: str) -> list[Row]:
        return await self._fetch(
            "report_api_diff",
            cluster_a,
            cluster_b,
            what="reading inventory.api_resource_diff",
        )

    async def version_history(self) -> list[Row]:
        """Every version of every cluster's API server, by cluster and time."""
        return await self._fetch(
            "report_version_history", what="reading inventory.cluster_version_history"
        )

    async def eol(self, cluster: str | None = None) -> list[Row]:
        cid = await self._cluster(cluster)
        return await self._fetch("report_eol", cid, what="reading inventory.cluster_support")

    async def removals(self, cluster: str | None = None) -> list[Row]:
        cid = await self._cluster(cluster)
        return await self._fetch(
            "report_removals", cid, what="reading inventory.api_removal_readiness"
        )
