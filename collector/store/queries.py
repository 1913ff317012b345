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
PACKAGED_SQL = "_sql"  # sql/ inside a built wheel
_NAME_LINE = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)


def sql_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The SQL folder: migrations ``NNNN_*.sql`` and named queries in ``queries/``.

    ``$KUBEINV_SQL_DIR`` when set; else the repository's top-level ``sql/`` (a source checkout
    or an editable install: the package sits next to ``pyproject.toml``); else the copy that a
    built wheel ships as ``collector/_sql`` (see setup.py).
    """
    env = os.environ if environ is None else environ
    override = env.get(SQL_DIR_ENV)
    if override:
        return Path(override)
    package = Path(collector.__file__).resolve().parent
    repository = package.parent
    if (repository / "pyproject.toml").is_file() and (repository / "sql").is_dir():
        return repository / "sql"
    packaged = package / PACKAGED_SQL
    if packaged.is_dir():
        return packaged
    raise StoreError(
        f"kubeinv's SQL files are missing: neither {repository / 'sql'} nor {packaged} exists "
        f"(a broken installation; set {SQL_DIR_ENV} to the folder holding the migrations)"
    )


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
