"""The one table renderer: a rich table on a terminal, plain aligned text elsewhere.

Plain text greps and diffs well: columns separated by two spaces, no trailing blanks. rich is
imported only when a terminal shows the table.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Sequence
from typing import IO, Literal


def is_terminal(stream: IO[str] | None = None) -> bool:
    stream = stream if stream is not None else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def render_table(
    columns: Sequence[str],
    cells: Sequence[Sequence[str]],
    *,
    stream: IO[str],
    title: str | None = None,
    title_justify: Literal["left", "center", "right"] = "left",
    upper_headers: bool = False,
    blank_line_after: bool = False,
    right_aligned: Collection[str] = (),
    style_of: Callable[[str, str], str] | None = None,
) -> None:
    """Write ``cells`` (text already) under ``columns``.

    On a terminal: ``right_aligned`` columns are right-justified and ``style_of(column, value)``
    gives a cell its rich style. Elsewhere: the title on a line of its own, headers in capitals
    with ``upper_headers``, and an empty line after the table with ``blank_line_after``.
    """
    if is_terminal(stream):
        from rich.console import Console  # noqa: PLC0415 (only on a terminal)
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        table = Table(title=title, title_justify=title_justify, header_style="bold")
        for column in columns:
            table.add_column(
                column, justify="right" if column in right_aligned else "left", overflow="fold"
            )
        for row in cells:
            styled: Sequence[str | Text] = row
            if style_of is not None:
                styled = [Text(v, style=style_of(c, v)) for c, v in zip(columns, row, strict=True)]
            table.add_row(*styled)
        Console(file=stream).print(table)
        return
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    if title:
        stream.write(f"{title}\n")
    headers = [c.upper() if upper_headers else c for c in columns]
    for row in (headers, *cells):
        stream.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        stream.write("\n")
    if blank_line_after:
        stream.write("\n")
    stream.flush()
