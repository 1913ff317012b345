"""Named SQL queries, loaded from ``sql/queries/*.sql`` (procrastinate style).

A file holds blocks that each start with a ``-- name: <identifier>`` line; the block's text up
to the next ``-- name:`` line is the query. Comment lines right after the name document it.
The SQL stays in ``.sql`` files where it can be read, linted and run by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import collector
from collector.errors import StoreError

PACKAGED_SQL = "_sql"  # sql/ inside a built wheel (pyproject.toml maps collector._sql to it)
_NAME_LINE = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)


def sql_dir() -> Path:
    """The SQL folder: ``schema.sql`` and ``schema/``, ``migrations/``, ``queries/``.

    In an installed wheel, ``collector/_sql``; in a source checkout or an editable install (the
    package sits next to ``pyproject.toml``), the repository's top-level ``sql/``.
    """
    package = Path(collector.__file__).resolve().parent
    packaged = package / PACKAGED_SQL
    if packaged.is_dir():
        return packaged
    repository = package.parent
    if (repository / "pyproject.toml").is_file() and (repository / "sql").is_dir():
        return repository / "sql"
    raise StoreError(
        f"kubeinv's SQL files are missing: neither {packaged} nor {repository / 'sql'} exists "
        "(a broken installation: reinstall kubeinv)"
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
