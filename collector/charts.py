"""Self-contained HTML pages with SVG charts, rendered on the server (no script, no network).

Pure functions from rows (dicts keyed by view columns) to text: a page opens offline in any
browser, and the same page can be attached to a ticket or mailed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

# Okabe-Ito, then a few more distinguishable hues; cycled when there are more series.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#8C564B", "#7F7F7F", "#17BECF", "#BCBD22",
)  # fmt: skip
WIDTH, HEIGHT = 960, 340
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 20, 40
MAX_LEGEND = 24


@dataclass(frozen=True)
class Series:
    label: str
    points: dict[date, float]  # day -> value


def _nice_step(span: float, ticks: int = 5) -> float:
    if span <= 0:
        return 1.0
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _fmt_number(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _days(series: Sequence[Series]) -> list[date]:
    return sorted({day for s in series for day in s.points})


@dataclass(frozen=True)
class _Plot:
    """The plotting area of one chart: days along x, 0 to ``y_max`` up y."""

    days: list[date]
    y_max: float
    step: float

    width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x(self, day: date) -> float:
        if len(self.days) == 1:
            return MARGIN_LEFT + self.width / 2
        first = self.days[0].toordinal()
        span_days = max(self.days[-1].toordinal() - first, 1)
        return MARGIN_LEFT + (day.toordinal() - first) / span_days * self.width

    def y(self, value: float) -> float:
        return MARGIN_TOP + self.height - value / self.y_max * self.height


def _stack_bases(
    series: Sequence[Series], days: list[date]
) -> tuple[list[dict[date, float]], float]:
    """Where each stacked series sits (the sum of the ones before it; missing days count 0), and
    the top of the stack."""
    bases: list[dict[date, float]] = []
    running = dict.fromkeys(days, 0.0)
    for s in series:
        bases.append(dict(running))
        for day in days:
            running[day] += s.points.get(day, 0.0)
    return bases, max(running.values())


def _axes(plot: _Plot, y_label: str) -> list[str]:
    """The grid with its y ticks, the y label, up to 8 date labels and the x axis."""
    parts = []
    tick = 0.0
    while tick <= plot.y_max + 1e-9:
        yy = plot.y(tick)
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" y1="{yy:.1f}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y2="{yy:.1f}"/><text class="tick" x="{MARGIN_LEFT - 6}" y="{yy + 4:.1f}" '
            f'text-anchor="end">{_fmt_number(tick)}</text>'
        )
        tick += plot.step
    parts.append(
        f'<text class="axis-label" transform="translate(14 {MARGIN_TOP + plot.height / 2}) '
        f'rotate(-90)" text-anchor="middle">{html.escape(y_label)}</text>'
    )
    days = plot.days
    every = max(1, math.ceil(len(days) / 8))
    for i, day in enumerate(days):
        last = i == len(days) - 1
        if (i % every == 0 and len(days) - 1 - i >= every / 2) or last:
            anchor = "end" if last and len(days) > 1 else "middle"
            parts.append(
                f'<text class="tick" x="{plot.x(day):.1f}" y="{HEIGHT - MARGIN_BOTTOM + 18}" '
                f'text-anchor="{anchor}">{day.isoformat()}</text>'
            )
    parts.append(
        f'<line class="axis" x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot.height}" '
        f'x2="{WIDTH - MARGIN_RIGHT}" y2="{MARGIN_TOP + plot.height}"/>'
    )
    return parts


def _area(plot: _Plot, s: Series, base: dict[date, float], color: str) -> str:
    """A stacked series: the area between its base and its top (a bar for a single day)."""
    label = html.escape(s.label)
    upper = [(plot.x(d), plot.y(base[d] + s.points.get(d, 0.0))) for d in plot.days]
    lower = [(plot.x(d), plot.y(base[d])) for d in reversed(plot.days)]
    if len(plot.days) == 1:
        (xx, yu), (_, yl) = upper[0], lower[0]
        return (
            f'<rect class="series" data-series="{label}" x="{xx - 20:.1f}" '
            f'y="{yu:.1f}" width="40" height="{max(yl - yu, 0):.1f}" fill="{color}">'
            f"<title>{label}</title></rect>"
        )
    points = " ".join(f"{px:.1f},{py:.1f}" for px, py in upper + lower)
    return (
        f'<polygon class="series" data-series="{label}" points="{points}" '
        f'fill="{color}" stroke="#ffffff" stroke-width="0.5"><title>{label}</title>'
        "</polygon>"
    )


def _line(plot: _Plot, s: Series, color: str) -> str:
    """A series as a line through its days (a dot when it has one)."""
    label = html.escape(s.label)
    coords = [(plot.x(d), plot.y(v)) for d, v in sorted(s.points.items())]
    points = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
    line = (
        f'<polyline class="series" data-series="{label}" points="{points}" fill="none" '
        f'stroke="{color}" stroke-width="2"><title>{label}</title></polyline>'
    )
    if len(coords) == 1:
        px, py = coords[0]
        line += f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{color}"/>'
    return line


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    y_label: str,
    stacked: bool = False,
    chart_id: str = "chart",
) -> str:
    """An SVG chart of one value per day per series: lines, or stacked areas."""
    days = _days(series)
    esc = html.escape
    head = (
        f'<svg id="{esc(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>"
    )
    if not days or not series:
        return (
            head + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
            'class="empty">no data in this window</text></svg>'
        )
    if stacked:
        bases, top = _stack_bases(series, days)
    else:
        top = max((v for s in series for v in s.points.values()), default=0.0)
    step = _nice_step(top)
    plot = _Plot(days, max(step, math.ceil(top / step) * step), step)
    parts = [head, *_axes(plot, y_label)]
    for index, s in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        parts.append(_area(plot, s, bases[index], color) if stacked else _line(plot, s, color))
    parts.append("</svg>")
    return "".join(parts)


def legend(series: Sequence[Series]) -> str:
    items = []
    for index, s in enumerate(series[:MAX_LEGEND]):
        color = PALETTE[index % len(PALETTE)]
        items.append(
            f'<li><span class="swatch" style="background:{color}"></span>'
            f"{html.escape(s.label)}</li>"
        )
    if len(series) > MAX_LEGEND:
        items.append(f"<li>… and {len(series) - MAX_LEGEND} more</li>")
    return '<ul class="legend">' + "".join(items) + "</ul>"


def group_series(
    rows: Iterable[Mapping[str, Any]],
    *,
    key: str,
    value: str,
    label: Callable[[Any], str] = str,
    scale: float = 1.0,
) -> list[Series]:
    """One series per distinct ``row[key]``, of ``row[value] * scale`` per ``row['day']``."""
    grouped: dict[Any, dict[date, float]] = {}
    for row in rows:
        raw = row[value]
        grouped.setdefault(row[key], {})[row["day"]] = float(raw or 0) * scale
    ordered = sorted(grouped, key=lambda k: (k is None, k))
    return [Series(label(k), grouped[k]) for k in ordered]


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#222;
background:#fff}
h1{font-size:1.4em;margin:0 0 4px}h2{font-size:1.1em;margin:28px 0 6px}
p.meta{color:#666;margin:0 0 12px;font-size:.9em}
svg.chart{display:block;border:1px solid #ddd;background:#fff}
.grid{stroke:#e6e6e6;stroke-width:1}.axis{stroke:#444;stroke-width:1}
.tick{font-size:11px;fill:#555}.axis-label{font-size:12px;fill:#333}.empty{fill:#888}
ul.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px;
font-size:.9em}
.swatch{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px}
table{border-collapse:collapse;font-size:.85em;margin-top:8px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
"""


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """A complete HTML document: ``sections`` are (heading, HTML body) pairs."""
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="meta">{html.escape(subtitle)}</p>'
        f"{body}</body></html>\n"
    )


def _minor_label(minor: Any) -> str:
    return "unknown" if minor is None else f"1.{minor}"


def versions_page(rows: Sequence[Mapping[str, Any]], *, generated: datetime) -> str:
    """Clusters and nodes per server minor over time (rows of fleet_versions_daily)."""
    clusters = group_series(rows, key="minor_version", value="clusters", label=_minor_label)
    nodes = group_series(rows, key="minor_version", value="nodes", label=_minor_label)
    window = _window(rows)
    return page(
        "kubeinv: Kubernetes versions across the fleet",
        f"{window}; days are UTC, each shows the state at its end. Generated "
        f"{generated:%Y-%m-%d %H:%M} UTC.",
        [
            (
                "Clusters per minor version",
                line_chart(
                    "Clusters per minor version",
                    clusters,
                    y_label="clusters",
                    stacked=True,
                    chart_id="clusters-per-minor",
                )
                + legend(clusters),
            ),
            (
                "Nodes per minor version (under their cluster's server version)",
                line_chart(
                    "Nodes per minor version",
                    nodes,
                    y_label="nodes",
                    stacked=True,
                    chart_id="nodes-per-minor",
                )
                + legend(nodes),
            ),
        ],
    )


def capacity_page(
    rows: Sequence[Mapping[str, Any]],
    *,
    generated: datetime,
    names: Mapping[str, str] | None = None,
) -> str:
    """Capacity over time per cluster (rows of capacity_daily); ``names`` labels cluster ids."""
    names = names or {}

    def label(cluster_id: Any) -> str:
        name = names.get(str(cluster_id))
        return f"{name} ({cluster_id})" if name and name != cluster_id else str(cluster_id)

    cpu = group_series(
        rows, key="cluster_id", value="cpu_capacity_millicores", label=label, scale=1 / 1000
    )
    memory = group_series(
        rows, key="cluster_id", value="memory_capacity_bytes", label=label, scale=1 / 2**30
    )
    nodes = group_series(rows, key="cluster_id", value="nodes", label=label)
    gpus = group_series(rows, key="cluster_id", value="gpu_capacity", label=label)
    sections = [
        (
            "CPU capacity (cores)",
            line_chart(
                "CPU capacity per cluster",
                cpu,
                y_label="cores",
                stacked=True,
                chart_id="cpu-capacity",
            )
            + legend(cpu),
        ),
        (
            "Memory capacity (GiB)",
            line_chart(
                "Memory capacity per cluster",
                memory,
                y_label="GiB",
                stacked=True,
                chart_id="memory-capacity",
            )
            + legend(memory),
        ),
        (
            "Nodes",
            line_chart("Nodes per cluster", nodes, y_label="nodes", chart_id="nodes")
            + legend(nodes),
        ),
    ]
    if any(v for s in gpus for v in s.points.values()):
        sections.append(
            (
                "GPUs",
                line_chart("GPUs per cluster", gpus, y_label="GPUs", stacked=True, chart_id="gpus")
                + legend(gpus),
            )
        )
    return page(
        "kubeinv: capacity over time",
        f"{_window(rows)}; stacked per cluster; days are UTC, each shows the state at its end. "
        f"Generated {generated:%Y-%m-%d %H:%M} UTC.",
        sections,
    )  # fmt: skip


def _window(rows: Sequence[Mapping[str, Any]]) -> str:
    days = sorted({row["day"] for row in rows})
    if not days:
        return "No data in this window"
    return f"{days[0].isoformat()} to {days[-1].isoformat()}"
