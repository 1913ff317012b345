"""Every SQL query of the Grafana dashboard runs against the real, migrated schema."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[2]


def _queries() -> list[tuple[str, str]]:
    dash = json.loads((REPO / "deploy/grafana/dashboards/kubeinv-fleet.json").read_text())
    return [
        (panel["title"], target["rawSql"])
        for panel in dash["panels"]
        for target in panel.get("targets", [])
        if "rawSql" in target
    ]


def _expand_grafana_macros(sql: str) -> str:
    # What Grafana substitutes for a 90-day range.
    return sql.replace("$__timeFrom()", "(now() - interval '90 days')").replace(
        "$__timeTo()", "now()"
    )


async def test_dashboard_queries_run_on_the_schema(pg_dsn: str) -> None:
    queries = _queries()
    assert len(queries) >= 8
    conn = await asyncpg.connect(pg_dsn)
    try:
        for title, sql in queries:
            # Empty inventory: each query must still plan and run.
            await conn.fetch(_expand_grafana_macros(sql))
            # Time series panels need a time column and numeric values.
            if "time" in sql:
                stmt = await conn.prepare(_expand_grafana_macros(sql))
                names = [a.name for a in stmt.get_attributes()]
                assert names[0] == "time", title
                assert "value" in names or len(names) >= 2, title
    finally:
        await conn.close()
