"""``kubeinv report``: the analytics views as tables, JSON, CSV or HTML charts.

Each report reads one public view or function of schema ``inventory`` (see the README, "SQL
reference") and prints its rows. ``--output json`` is a list of objects keyed by that view's
column names; ``csv`` has those names as its header. On a terminal the table is drawn with
rich; otherwise it is plain aligned text (pipes, files). A table shows at most ``TABLE_LIMIT``
rows unless ``--limit`` says otherwise, and ends with how many more there are.

Entry points: :func:`add_arguments` and :func:`run` for the CLI; :func:`print_report` and
:func:`write_html` for other commands (the demo) that already hold an open Store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from collector import charts
from collector.durations import parse_duration
from collector.errors import ConfigError
from collector.tables import is_terminal, render_table

if TYPE_CHECKING:
    from collector.settings import Settings
    from collector.store import Store
    from collector.store.reports import ReportReader

Row = dict[str, Any]

REPORTS: dict[str, str] = {
    "fleet": "one row per cluster: version, provider, nodes, capacity, last collection",
    "versions": "clusters and nodes per minor version, per day (--since for a history)",
    "skew": "nodes whose kubelet is out of the version-skew policy (--all: every node)",
    "changes": "what changed: clusters, versions, nodes, API resources (--since, default 7d)",
    "api-diff": "API resources served by only one of two clusters: api-diff A B",
    "eol": "each cluster's upstream end-of-life date and support status",
    "removals": "served API versions that a later minor removes: what breaks on upgrade",
    "capacity": "nodes, CPU, memory and GPUs per cluster, per day (--since for a history)",
}
HTML_REPORTS = ("versions", "capacity")
CLUSTER_FILTER = ("fleet", "skew", "changes", "eol", "removals", "capacity")
DEFAULT_CHANGES_WINDOW = "7d"
DEFAULT_HTML_WINDOW = "90d"
TABLE_LIMIT = 200  # rows a table shows by default; json and csv are complete unless --limit

_EPILOG = (
    "reports:\n"
    + "\n".join(f"  {name:<10} {text}" for name, text in REPORTS.items())
    + """

Clusters are named by context name or cluster id. Days are UTC dates; each shows the state at
its end (today: now). Examples:
  kubeinv report fleet
  kubeinv report changes --since 24h --output json
  kubeinv report api-diff prod-eu prod-us
  kubeinv report versions --since 90d --html versions.html
  kubeinv report capacity --since 30d --cluster prod-eu --output csv"""
)


# --- arguments ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``kubeinv report`` (database and configuration flags are added by the CLI)."""
    parser.description = (
        "Reports from the inventory database. Each reads one documented view or function of "
        "schema inventory; --output json gives a list of objects keyed by its column names."
    )
    parser.epilog = _EPILOG
    parser.add_argument(
        "report", choices=list(REPORTS), metavar="REPORT", help="one of: " + ", ".join(REPORTS)
    )
    parser.add_argument(
        "clusters",
        nargs="*",
        metavar="CLUSTER",
        help="api-diff: the two clusters to compare (context name or cluster id)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=["table", "json", "csv"],
        default=None,
        help="table (default; plain text when not on a terminal), json or csv",
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        default=None,
        help="start of the window: a duration back from now (30m, 12h, 7d, 2w) "
        "or a UTC date/time (2026-03-01). changes: default 7d; versions and "
        "capacity: default today only (90d with --html)",
    )
    parser.add_argument(
        "--until",
        metavar="DATE",
        default=None,
        help="versions, capacity: last day of the window (default: today)",
    )
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        default=None,
        help="only this cluster (context name or cluster id): " + ", ".join(CLUSTER_FILTER),
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="skew: every node, not only those out of policy or unknown",
    )
    parser.add_argument(
        "--limit",
        metavar="N",
        type=_limit,
        default=None,
        help=f"at most N rows (0: all). Default: {TABLE_LIMIT} in a table, every row with "
        "--output json or csv",
    )
    parser.add_argument("--html", metavar="FILE", default=None,
                        help="versions, capacity: also write a self-contained HTML page with "
                        "charts (no network needed to view it)")  # fmt: skip


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of rows (0: all), not {text!r}")
    return value


def _parse_when(text: str, now: datetime) -> datetime:
    with contextlib.suppress(ValueError):
        return now - parse_duration("".join(text.split()), bare_seconds=False)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: expected a duration such as 30m, 12h, 7d, 2w or a date such as "
            "2026-03-01"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a date such as 2026-03-01") from None


def _check(args: argparse.Namespace) -> None:
    name = args.report
    if name == "api-diff":
        if len(args.clusters) != 2:
            raise ConfigError("api-diff compares two clusters: kubeinv report api-diff A B")
    elif args.clusters:
        raise ConfigError(
            f"report {name} takes no cluster argument"
            + (" (use --cluster NAME)" if name in CLUSTER_FILTER else "")
        )
    if args.html and name not in HTML_REPORTS:
        raise ConfigError(f"--html is for the {' and '.join(HTML_REPORTS)} reports")
    if args.cluster and name not in CLUSTER_FILTER:
        raise ConfigError(f"--cluster does not apply to report {name}")
    if args.until and name not in HTML_REPORTS:
        raise ConfigError(f"--until is for the {' and '.join(HTML_REPORTS)} reports")
    if args.since and name not in ("changes", *HTML_REPORTS):
        raise ConfigError(f"--since does not apply to report {name}")
    if args.all and name != "skew":
        raise ConfigError("--all is for the skew report")


# --- running --------------------------------------------------------------------------------


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``kubeinv report``: open the configured database, print the report. Exit code 0."""
    _check(args)
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from collector.store import open_store  # noqa: PLC0415 (asyncpg: only when needed)

    store = await open_store(settings.database_url, data_dir=settings.embedded_data_dir)
    try:
        return await print_report(
            store,
            args.report,
            output=args.output,
            clusters=args.clusters,
            since=args.since,
            until=args.until,
            cluster=args.cluster,
            all_nodes=args.all,
            html=args.html,
            limit=args.limit,
        )
    finally:
        await store.close()


def _reader(store: Store) -> ReportReader:
    return store.reports()


async def fetch_report(
    store: Store,
    name: str,
    *,
    clusters: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    cluster: str | None = None,
    all_nodes: bool = False,
    html: bool = False,
) -> list[Row]:
    """The rows of report ``name`` (dicts keyed by the view's columns)."""
    reader = _reader(store)
    if name == "fleet":
        return await reader.fleet(cluster)
    if name == "skew":
        return await reader.skew(only_problems=not all_nodes, cluster=cluster)
    if name == "eol":
        return await reader.eol(cluster)
    if name == "removals":
        return await reader.removals(cluster)
    if name == "api-diff":
        if len(clusters) != 2:
            raise ConfigError("api-diff compares two clusters: kubeinv report api-diff A B")
        return await reader.api_diff(clusters[0], clusters[1])
    now, today = await reader.now()
    if name == "changes":
        return await reader.changes(_parse_when(since or DEFAULT_CHANGES_WINDOW, now), cluster)
    if name in HTML_REPORTS:
        from_day, to_day = _window(since, until, now, today, html=html)
        if name == "versions":
            return await reader.versions(from_day, to_day)
        return await reader.capacity(from_day, to_day, cluster)
    raise ConfigError(f"unknown report {name!r}: one of {', '.join(REPORTS)}")


def _window(
    since: str | None, until: str | None, now: datetime, today: date, *, html: bool
) -> tuple[date, date]:
    to_day = _parse_day(until, "--until") if until else today
    if since:
        from_day = _parse_when(since, now).astimezone(UTC).date()
    elif html:
        from_day = _parse_when(DEFAULT_HTML_WINDOW, now).astimezone(UTC).date()
    else:
        from_day = to_day
    if from_day > to_day:
        raise ConfigError(f"the window starts ({from_day}) after it ends ({to_day})")
    return from_day, to_day


async def print_report(
    store: Store,
    name: str,
    *,
    output: str | None = None,
    out: IO[str] | None = None,
    clusters: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    cluster: str | None = None,
    all_nodes: bool = False,
    html: str | None = None,
    limit: int | None = None,
) -> int:
    """Print report ``name`` to ``out`` (default stdout); with ``html``, also write the page.

    ``limit``: at most that many rows (0: all); a table shows :data:`TABLE_LIMIT` by default.
    """
    stream = out if out is not None else sys.stdout
    output = output or "table"
    if limit is None and output == "table":
        limit = TABLE_LIMIT
    if name == "changes":
        # The one report whose answer can be large (every node-changed detail carries the
        # changed fields' old and new values): only the rows shown are fetched, and JSON
        # details pass through as the database wrote them.
        await _print_changes(store, output, stream, since=since, cluster=cluster, limit=limit)
        return 0
    rows = await fetch_report(
        store, name, clusters=clusters, since=since, until=until, cluster=cluster,
        all_nodes=all_nodes, html=html is not None,
    )  # fmt: skip
    if html:
        names = await _cluster_names(store) if name == "capacity" else {}
        _write_page(name, rows, Path(html), names)
    render(rows, name, output=output, out=stream, limit=limit)
    if html and output in (None, "table"):
        print(f"wrote {html}", file=sys.stderr)
    return 0


async def _print_changes(
    store: Store,
    output: str,
    out: IO[str],
    *,
    since: str | None,
    cluster: str | None,
    limit: int | None,
) -> None:
    reader = _reader(store)
    now, _ = await reader.now()
    start = _parse_when(since or DEFAULT_CHANGES_WINDOW, now)
    if limit:
        rows, total = await reader.changes_page(start, limit, cluster)
    elif output == "json":
        rows = await reader.changes_raw(start, cluster)
        total = len(rows)
    else:
        rows = await reader.changes(start, cluster)
        total = len(rows)
    if output == "json":
        out.write(to_json(rows) + "\n")
    elif output == "csv":
        out.write(to_csv(rows))
    else:
        render(rows, "changes", output="table", out=out, total=total)


async def write_html(
    store: Store, name: str, path: str | Path, *, since: str | None = None
) -> Path:
    """Write the chart page of report ``name`` (versions or capacity); return its path."""
    if name not in HTML_REPORTS:
        raise ConfigError(f"--html is for the {' and '.join(HTML_REPORTS)} reports")
    rows = await fetch_report(store, name, since=since, html=True)
    names = await _cluster_names(store) if name == "capacity" else {}
    target = Path(path)
    _write_page(name, rows, target, names)
    return target


async def _cluster_names(store: Store) -> dict[str, str]:
    return {
        str(r["cluster_id"]): (r["context_names"] or [r["cluster_id"]])[0]
        for r in await _reader(store).fleet()
    }


def _write_page(name: str, rows: Sequence[Row], path: Path, names: Mapping[str, str]) -> None:
    generated = datetime.now(UTC)
    if name == "versions":
        text = charts.versions_page(rows, generated=generated)
    else:
        text = charts.capacity_page(rows, generated=generated, names=names)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


# --- rendering ------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)  # inet and other scalar types


_json = msgspec.json.Encoder(enc_hook=_json_default)


def to_json(rows: Sequence[Row]) -> str:
    """A JSON list of objects keyed by column name (dates and times in ISO 8601).

    A ``detail`` that is a str is JSON text from the database (``changes_raw``): it is written
    as it is, not decoded and encoded again.
    """
    for row in rows:
        detail = row.get("detail")
        if isinstance(detail, str):
            row["detail"] = msgspec.Raw(detail.encode())
    return msgspec.json.format(_json.encode(list(rows)), indent=2).decode()


def _plain(value: Any) -> str:
    """A cell for CSV: scalars as text, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, (list, tuple, dict)):
        return _json.encode(value).decode()
    return str(value)


def to_csv(rows: Sequence[Row]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = list(rows[0])
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_plain(row[c]) for c in columns])
    return buffer.getvalue()


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _change_detail(detail: Any) -> str:
    if not isinstance(detail, dict):
        return _plain(detail)
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict) and set(value) == {"old", "new"}:
            parts.append(f"{key}: {_short(value['old'])} -> {_short(value['new'])}")
        else:
            parts.append(f"{key}={_short(value)}")
    return "; ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = _plain(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(column: str, value: Any) -> str:
    """A cell for the human table."""
    if value is None:
        return "-"
    if column.endswith("_bytes") and isinstance(value, (int, Decimal)):
        return _bytes(int(value))
    if column == "detail":
        return _change_detail(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render(
    rows: Sequence[Row],
    name: str,
    *,
    output: str,
    out: IO[str],
    limit: int | None = None,
    total: int | None = None,
) -> None:
    """Write ``rows`` as ``output`` (table, json or csv).

    ``limit``: at most that many rows (0 or None: all). ``total``: how many rows the report has
    when ``rows`` is already a first page of it. A table that does not show every row ends with
    a line saying how many more there are.
    """
    total = len(rows) if total is None else total
    if limit:
        rows = rows[:limit]
    if output == "json":
        out.write(to_json(rows) + "\n")
        return
    if output == "csv":
        out.write(to_csv(rows))
        return
    if not rows:
        out.write(f"{name}: no rows\n")
        return
    columns = list(rows[0])
    numeric = {
        column
        for column in columns
        if all(
            isinstance(row[column], (int, float, Decimal)) and not isinstance(row[column], bool)
            for row in rows
            if row[column] is not None
        )
    }
    render_table(
        columns,
        [[_cell(c, row[c]) for c in columns] for row in rows],
        stream=out,
        title=f"kubeinv report {name}" if is_terminal(out) else None,
        title_justify="center",
        right_aligned=numeric,
    )
    _more(len(rows), total, out)


def _more(shown: int, total: int, out: IO[str]) -> None:
    if total > shown:
        out.write(
            f"... {total - shown:,} more rows ({total:,} in all): use --limit N (0: all) "
            "or --output json|csv\n"
        )
