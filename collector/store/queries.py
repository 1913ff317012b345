"""Named SQL queries, loaded from ``sql/queries/*.sql`` (procrastinate style).

A file holds blocks that each start with a ``-- name: <identifier>`` line; the block's text up
to the next ``-- name:`` line is the query. Comment lines right after the name document it.
The SQL stays in ``.sql`` files where it can be read, linted and run by hand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import collector
from collector.errors import StoreError

SQL_DIR_ENV = "KUBEINV_SQL_DIR"
_NAME_LINE = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)


def sql_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The top-level ``sql/`` directory of the repository (or ``$KUBEINV_SQL_DIR``)."""
    env = os.environ if environ is None else environ
    override = env.get(SQL_DIR_ENV)
    if override:
        return Path(override)
    return Path(collector.__file__).resolve().parents[1] / "sql"


def parse_queries(text: str, *, source: str = "<string>") -> dict[str, str]:
    """Split a file's text into ``{name: sql}``; text before the first name is ignored."""
    matches = list(_NAME_LINE.finditer(text))
    queries: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        name = match.group(1)
        if not body:
            raise StoreError(f"{source}: query {name!r} is empty")
        if name in queries:
            raise StoreError(f"{source}: query {name!r} is defined twice")
        queries[name] = body
    return queries


def load_queries(directory: Path | None = None) -> dict[str, str]:
    """Every named query of every ``*.sql`` file in ``directory`` (default ``sql/queries``)."""
    folder = directory if directory is not None else sql_dir() / "queries"
    queries: dict[str, str] = {}
    files = sorted(folder.glob("*.sql"))
    if not files:
        raise StoreError(f"no SQL query files found in {folder}")
    for path in files:
        for name, body in parse_queries(path.read_text(encoding="utf-8"), source=str(path)).items():
            if name in queries:
                raise StoreError(f"{path}: query {name!r} is already defined in another file")
            queries[name] = body
    return queries
