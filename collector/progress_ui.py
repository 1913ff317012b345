"""What people see: live per-cluster progress and tables, rich on a terminal, plain text elsewhere.

Live progress goes to stderr (stdout stays clean for pipes); tables go to stdout.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from collector.records import CollectionResult, TargetOutcome
from collector.tables import is_terminal, render_table

if TYPE_CHECKING:
    from collector.targets import Target

_STATUS_STYLE = {
    "ok": "green",
    "partial": "yellow",
    "failed": "red",
    "running": "cyan",
    "waiting": "dim",
    "identified": "cyan",
    "collecting": "cyan",
    "broken": "red",
}


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    stream: IO[str] | None = None,
    status_column: str | None = None,
) -> None:
    """A table of ``rows`` (see collector.tables); ``status_column`` is coloured by status."""

    def style_of(column: str, value: str) -> str:
        return _STATUS_STYLE.get(value, "") if column == status_column else ""

    render_table(
        columns,
        [["" if v is None else str(v) for v in row] for row in rows],
        stream=stream if stream is not None else sys.stdout,
        title=title,
        upper_headers=True,
        blank_line_after=True,
        style_of=style_of if status_column in columns else None,
    )


# --- live progress --------------------------------------------------------------------------


class ProgressUI:
    """Live per-target status while a run is in flight (terminal only; a no-op elsewhere).

    ``on_event`` accepts the gathering module's progress events; it reads them by attribute so
    that it tolerates added fields: ``kind`` (started, identified, done), ``context_name``,
    ``kubeconfig_path`` (or a ``target`` with both), ``cluster_id`` and ``outcome``.
    """

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._live: Live | None = None

    @classmethod
    def for_terminal(cls, *, enabled: bool = True, stream: IO[str] | None = None) -> ProgressUI:
        stream = stream if stream is not None else sys.stderr
        if not enabled or not is_terminal(stream):
            return cls(None)
        return cls(Console(file=stream))

    def __enter__(self) -> ProgressUI:
        if self.console is not None:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=8, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def on_event(self, event: Any) -> None:
        if self.console is None:
            return
        target = getattr(event, "target", None)
        context = str(getattr(event, "context_name", None) or getattr(target, "context_name", "?"))
        path = str(
            getattr(event, "kubeconfig_path", None) or getattr(target, "kubeconfig_path", "")
        )
        row = self._rows.setdefault(
            (path, context),
            {"context": context, "status": "waiting", "cluster": "", "started": None, "took": ""},
        )
        kind = str(getattr(event, "kind", ""))
        outcome: TargetOutcome | None = getattr(event, "outcome", None)
        if kind == "started":
            row["status"] = "running"
            row["started"] = time.monotonic()
        elif kind in ("identified", "collecting"):
            row["status"] = kind
            row["cluster"] = str(getattr(event, "cluster_id", "") or "")
        elif outcome is not None:
            row["status"] = outcome.status + (" (dedup)" if outcome.deduplicated else "")
            row["cluster"] = outcome.cluster_id or row["cluster"]
            row["took"] = f"{outcome.duration_ms / 1000:.1f}s"
            row["error"] = outcome.error_class or ""
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Table:
        done = sum(1 for r in self._rows.values() if r["took"])
        table = Table(title=f"collecting: {done}/{len(self._rows)} done", title_justify="left")
        for col in ("context", "status", "cluster", "time", "error"):
            table.add_column(col)
        for row in list(self._rows.values())[-40:]:
            took = row["took"]
            if not took and row["started"] is not None:
                took = f"{time.monotonic() - row['started']:.1f}s"
            status = row["status"]
            style = _STATUS_STYLE.get(status.split(" ")[0], "")
            table.add_row(
                row["context"],
                Text(status, style=style),
                _short(row["cluster"]),
                took,
                row.get("error", ""),
            )
        return table


def _short(cluster_id: str | None) -> str:
    if not cluster_id:
        return ""
    return cluster_id if len(cluster_id) <= 20 else cluster_id[:18] + "…"


# --- summaries ------------------------------------------------------------------------------


def print_summary(
    outcomes: Sequence[TargetOutcome],
    result: CollectionResult,
    *,
    run_id: int | None,
    stream: IO[str] | None = None,
) -> None:
    files = {o.kubeconfig_path for o in outcomes}
    columns = ["context", "status", "cluster", "nodes", "resources", "time", "error"]
    if len(files) > 1:
        columns.append("kubeconfig")
    rows = []
    for o in outcomes:
        error = f"{o.error_class}: {o.error_message}" if o.error_class else ""
        row: list[Any] = [
            o.context_name or "(file)",
            o.status + (" (dedup)" if o.deduplicated else ""),
            _short(o.cluster_id),
            "" if o.node_count is None or o.deduplicated else o.node_count,
            "" if o.api_resource_count is None or o.deduplicated else o.api_resource_count,
            f"{o.duration_ms / 1000:.2f}s",
            error if len(error) <= 90 else error[:87] + "...",
        ]
        if len(files) > 1:
            row.append(o.kubeconfig_path)
        rows.append(row)
    ok = sum(1 for o in outcomes if o.status == "ok")
    clusters = len({o.cluster_id for o in outcomes if o.cluster_id and o.status != "failed"})
    where = f"run {run_id}" if run_id is not None else "dry run (nothing stored)"
    title = (
        f"{where}: {ok}/{len(outcomes)} targets ok, {clusters} clusters, "
        f"{(result.finished_at - result.started_at).total_seconds():.1f}s"
    )
    if len(files) == 1:
        title += f" ({next(iter(files))})"
    print_table(title, columns, rows, stream=stream, status_column="status")


def context_rows(
    targets: Sequence[Target],
    file_outcomes: Sequence[TargetOutcome],
    checked: Sequence[TargetOutcome] | None,
) -> list[dict[str, Any]]:
    by_target = {(o.kubeconfig_path, o.context_name): o for o in checked or ()}
    rows: list[dict[str, Any]] = []
    for t in targets:
        row: dict[str, Any] = {
            "kubeconfig": t.kubeconfig_path,
            "context": t.context_name,
            "current": t.is_current,
            "cluster": t.cluster_name,
            "user": t.user_name,
            "server": t.server_url,
            "auth": t.auth_kind,
            "insecure_skip_tls_verify": t.insecure_skip_tls_verify,
            "problem": t.problem,
        }
        if checked is not None:
            o = by_target.get((t.kubeconfig_path, t.context_name))
            row["status"] = o.status if o else None
            row["cluster_id"] = o.cluster_id if o else None
            row["error"] = f"{o.error_class}: {o.error_message}" if o and o.error_class else None
        rows.append(row)
    for o in file_outcomes:
        rows.append(
            {
                "kubeconfig": o.kubeconfig_path,
                "context": o.context_name or None,
                "current": False,
                "cluster": None,
                "user": None,
                "server": None,
                "auth": None,
                "insecure_skip_tls_verify": False,
                "problem": o.error_message,
                **(
                    {"status": "failed", "cluster_id": None, "error": o.error_message}
                    if checked is not None
                    else {}
                ),
            }
        )
    return rows


def print_contexts(
    rows: Sequence[dict[str, Any]], *, checked: bool, stream: IO[str] | None = None
) -> None:
    # CURRENT as in `kubectl config get-contexts`: a star on the current context of each file
    # (of the merged KUBECONFIG, with it).
    columns = ["current", "kubeconfig", "context", "server", "auth"]
    if checked:
        columns += ["status", "cluster_id", "error"]
    else:
        columns += ["problem"]
    table_rows = []
    for r in rows:
        auth = r["auth"] or ""
        if r["insecure_skip_tls_verify"]:
            auth += " (insecure-skip-tls-verify)"
        values = [
            "*" if r.get("current") else "",
            r["kubeconfig"],
            r["context"] or "",
            r["server"] or "",
            auth,
        ]
        if checked:
            values += [r.get("status") or "", _short(r.get("cluster_id")), r.get("error") or ""]
        else:
            values += [r["problem"] or ""]
        table_rows.append(values)
    print_table(
        f"{len(rows)} targets",
        columns,
        table_rows,
        stream=stream,
        status_column="status" if checked else None,
    )
