"""``kubeinv clusters``: the cluster registry (``inventory.cluster_registry``), and
``kubeinv clusters retire``: retiring clusters by hand.

A cluster is ``active`` when the latest run reached and collected it, ``stale`` when its last
collection failed or the latest run did not reach it, and ``retired`` once no run has reached it
for longer than ``lifecycle.retire_after`` (or by hand). Retired clusters keep their history;
one that a target reaches again comes back.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from collector.errors import EXIT_OK
from collector.progress_ui import print_table
from collector.settings import Settings

Row = dict[str, Any]

_STATE_STYLE_COLUMN = "state"


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _short_id(cluster_id: str) -> str:
    return cluster_id if len(cluster_id) <= 20 else cluster_id[:19] + "…"


def registry_table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """The columns and cells of the terminal table."""
    columns = [
        "state",
        "contexts",
        "cluster_id",
        "version",
        "last_collected",
        "last_status",
        "last_reached",
        "retired",
    ]
    cells = []
    for r in rows:
        retired = ""
        if r["retired_at"] is not None:
            retired = f"{_when(r['retired_at'])} ({r['retired_by']})"
        cells.append(
            [
                r["state"],
                ", ".join(r["context_names"] or []),
                _short_id(r["cluster_id"]),
                r["git_version"] or "",
                _when(r["last_collected_at"]),
                r["last_status"] or "",
                _when(r["last_reached_at"]),
                retired,
            ]
        )
    return columns, cells


def render_registry(rows: Sequence[Row], output: str | None, out: IO[str]) -> None:
    from collector import report  # noqa: PLC0415 (json and csv writers of the reports)

    if output == "json":
        out.write(report.to_json(list(rows)) + "\n")
    elif output == "csv":
        out.write(report.to_csv(list(rows)))
    else:
        columns, cells = registry_table(rows)
        if not rows:
            out.write("no cluster has been collected yet\n")
            return
        print_table(None, columns, cells, stream=out, status_column=_STATE_STYLE_COLUMN)
        counts = {
            s: sum(1 for r in rows if r["state"] == s) for s in ("active", "stale", "retired")
        }
        out.write(
            f"{len(rows)} clusters: {counts['active']} active, {counts['stale']} stale, "
            f"{counts['retired']} retired\n"
        )


async def clusters_command(
    settings: Settings, *, output: str | None, stream: IO[str] | None = None
) -> int:
    from collector.running import open_settings_store  # noqa: PLC0415

    out = stream if stream is not None else sys.stdout
    store = await open_settings_store(settings)
    try:
        await store.migrate()
        rows = await store.cluster_registry()
    finally:
        await store.close()
    render_registry(rows, output, out)
    return EXIT_OK


async def retire_command(
    settings: Settings, names: Sequence[str], *, stream: IO[str] | None = None
) -> int:
    from collector.running import open_settings_store  # noqa: PLC0415

    out = stream if stream is not None else sys.stdout
    store = await open_settings_store(settings)
    try:
        await store.migrate()
        done = await store.retire_clusters(names)
    finally:
        await store.close()
    for r in done:
        named = r.cluster_id if r.name == r.cluster_id else f"{r.name} ({r.cluster_id})"
        if r.retired_at is not None:
            out.write(f"retired {named} at {r.retired_at.astimezone(UTC).isoformat()}\n")
        else:
            when = r.previous.astimezone(UTC).isoformat() if r.previous else "?"
            out.write(f"{named} is retired already (since {when}, {r.retired_by})\n")
    if any(r.retired_at is not None for r in done):
        out.write(
            "Its history is kept. A cluster whose inventory is collected again comes back: "
            "remove its contexts from the kubeconfigs to keep it retired.\n"
        )
    return EXIT_OK
