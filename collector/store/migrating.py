"""The schema runner: the baseline ``sql/schema.sql`` for a new database, then ``sql/migrations/``.

Three kinds of database reach :func:`apply_migrations`, under a session advisory lock so that two
processes starting together do not race:

- **An empty one** gets the schema: the files that ``sql/schema.sql`` lists (``\\ir`` lines), in
  that order, in one transaction. It is recorded as version ``0100`` ("schema") in
  ``inventory.schema_migration``, with every migration of ``sql/migrations/``: the schema files
  already hold what those migrations do.
- **One created by the pre-release migrations** (``0001``...``0022``, numbered files that used to
  live in ``sql/``; kept in the archive ``tests/fixtures/pre_release_migrations.tar.gz``, their
  checksums in ``sql/migrations/pre_release.sha256``) is recognised by its migrations table.
  When it has every one of them, unedited, it has the schema's tables, indexes and data, so it
  is adopted:

  1. the migrations of ``sql/migrations/`` are applied to it, each in its own transaction;
  2. then, in one transaction: the functions (and with them their triggers) that the
     pre-release migrations created and the schema no longer has are dropped
     (``sql/migrations/pre_release_drop.sql``, one statement); the schema's replaceable
     definitions are executed again, in schema order (every ``CREATE OR REPLACE FUNCTION``,
     ``CREATE OR REPLACE VIEW``, ``CREATE OR REPLACE TRIGGER`` and ``COMMENT ON FUNCTION |
     VIEW | TRIGGER`` statement of the schema files: the schema writes its functions, views
     and triggers that way); the reader role is granted, and ``0100`` is recorded.

  Step 2 comes last because the current schema's views may read a column that a migration
  adds; a stop between the two only means step 2 runs at the next start. Its function and view
  bodies and its triggers are thus the schema's even where the schema has since been reworded
  (a shared helper instead of two copies, one trigger function instead of two), and its
  catalog equals a new database's (tests/store/test_schema.py builds both and compares them).
  Nothing else of the schema runs: its tables, indexes and data are never applied on top of
  it. When it lacks some pre-release migrations, it is refused with a message saying what to
  do.
- **One at 0100 or later** gets the migrations of ``sql/migrations/`` it lacks, each in its own
  transaction. A migration that was applied and has since changed stops everything
  (``MigrationChecksumError``): migrations are never edited once released.

After the schema (or its replaceable part), and after each migration, in its transaction, the
runner calls ``inventory.grant_inventory_reader()`` so that the read-only role reads every new
view, table and function without each migration having to remember it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from collector.errors import MigrationChecksumError, MigrationError
from collector.store.queries import sql_dir
from collector.store.statements import split_statements
from collector.store.writing import Connection

# 'kubeinv' in ASCII: the advisory lock key of the migrations runner.
MIGRATION_LOCK_KEY = 0x6B75_6265_696E_76
# The oldest PostgreSQL the schema runs on: it writes its triggers CREATE OR REPLACE (14).
MINIMUM_SERVER_MAJOR = 14
SCHEMA_VERSION = "0100"
SCHEMA_NAME = "schema"
SCHEMA_INDEX = "schema.sql"
MIGRATIONS_DIR = "migrations"
PRE_RELEASE_MANIFEST = "pre_release.sha256"
PRE_RELEASE_DROP = "pre_release_drop.sql"
_FILE_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_.-]+)\.sql$")
_INCLUDE = re.compile(r"^\\ir\s+(\S+)\s*$", re.MULTILINE)
# The statements an adopted pre-release database runs again (see the module's docstring).
_REPLACEABLE = re.compile(
    r"(CREATE\s+OR\s+REPLACE|COMMENT\s+ON)\s+(FUNCTION|VIEW|TRIGGER)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    sql: str
    checksum: str


@dataclass(frozen=True)
class Schema:
    """The baseline: the files ``sql/schema.sql`` lists, in order."""

    files: tuple[tuple[Path, str], ...]
    checksum: str

    @property
    def replaceable(self) -> tuple[tuple[Path, str], ...]:
        """The statements that define functions, views and triggers, or comment on them, in
        order, each with its file: what an adopted pre-release database runs again."""
        return tuple(
            (path, statement)
            for path, text in self.files
            for statement in split_statements(text)
            if _REPLACEABLE.match(statement)
        )


@dataclass(frozen=True)
class SqlTree:
    """Everything the runner reads from one ``sql/`` folder."""

    schema: Schema
    migrations: tuple[Migration, ...]
    pre_release: Mapping[str, tuple[str, str]]  # version -> (name, sha256)
    pre_release_drop: tuple[Path, str]  # what adoption drops first: (file, SQL)

    @property
    def versions(self) -> list[str]:
        """What a new database records: the schema, then every migration."""
        return [SCHEMA_VERSION, *(m.version for m in self.migrations)]


def load_schema(directory: Path | None = None) -> Schema:
    """The schema files of ``directory`` (default: the repository's ``sql/``), in order."""
    folder = directory if directory is not None else sql_dir()
    index = folder / SCHEMA_INDEX
    if not index.is_file():
        raise MigrationError(f"the schema index {index} does not exist")
    digest = hashlib.sha256()
    files: list[tuple[Path, str]] = []
    for include in _INCLUDE.findall(index.read_text(encoding="utf-8")):
        path = folder / include
        if not path.is_file():
            raise MigrationError(f"{index} lists {include}, which does not exist")
        raw = path.read_bytes()
        digest.update(include.encode() + b"\0" + raw)
        files.append((path, raw.decode("utf-8")))
    if not files:
        raise MigrationError(f"{index} lists no schema file (\\ir lines)")
    return Schema(files=tuple(files), checksum=digest.hexdigest())


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """The migration files of ``directory``/migrations (default: ``sql/migrations``), in order."""
    folder = (directory if directory is not None else sql_dir()) / MIGRATIONS_DIR
    if not folder.is_dir():
        raise MigrationError(f"migrations directory {folder} does not exist")
    migrations: dict[str, Migration] = {}
    for path in sorted(folder.iterdir()):
        match = _FILE_NAME.match(path.name)
        if not match or not path.is_file():
            continue
        version, name = match.groups()
        if version <= SCHEMA_VERSION:
            raise MigrationError(
                f"migration {path.name}: versions up to {SCHEMA_VERSION} belong to the schema "
                f"and the pre-release migrations; number it after {SCHEMA_VERSION}"
            )
        if version in migrations:
            raise MigrationError(
                f"two migrations share version {version}: {migrations[version].path.name} "
                f"and {path.name}"
            )
        raw = path.read_bytes()
        migrations[version] = Migration(
            version=version,
            name=name,
            path=path,
            sql=raw.decode("utf-8"),
            checksum=hashlib.sha256(raw).hexdigest(),
        )
    return [migrations[v] for v in sorted(migrations)]


def load_pre_release(directory: Path | None = None) -> dict[str, tuple[str, str]]:
    """The pre-release migrations as ``{version: (name, sha256)}`` (``sha256sum`` format)."""
    path = (directory if directory is not None else sql_dir()) / MIGRATIONS_DIR
    manifest = path / PRE_RELEASE_MANIFEST
    known: dict[str, tuple[str, str]] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        checksum, file_name = line.split(maxsplit=1)
        match = _FILE_NAME.match(file_name.lstrip("*"))
        if not match:
            raise MigrationError(f"{manifest}: cannot read {line!r}")
        known[match.group(1)] = (match.group(2), checksum)
    return known


def load_pre_release_drop(directory: Path | None = None) -> tuple[Path, str]:
    """What adopting a pre-release database drops before the schema's replaceable statements:
    the objects of the pre-release migrations that the schema no longer has."""
    path = (directory if directory is not None else sql_dir()) / MIGRATIONS_DIR / PRE_RELEASE_DROP
    if not path.is_file():
        raise MigrationError(f"{path} does not exist")
    return path, path.read_text(encoding="utf-8")


def load_sql_tree(directory: Path | None = None) -> SqlTree:
    return SqlTree(
        schema=load_schema(directory),
        migrations=tuple(load_migrations(directory)),
        pre_release=load_pre_release(directory),
        pre_release_drop=load_pre_release_drop(directory),
    )


def _spans(versions: list[str]) -> str:
    return ", ".join(versions) if len(versions) <= 4 else f"{versions[0]}...{versions[-1]}"


def check_server(major: int, text: str) -> None:
    """Refuse a server older than the schema needs (``text``: its version, as it says it)."""
    if major < MINIMUM_SERVER_MAJOR:
        raise MigrationError(
            f"PostgreSQL {text} is too old: kubeinv needs PostgreSQL {MINIMUM_SERVER_MAJOR} or "
            "newer (unset the database URL to use the embedded PostgreSQL)"
        )


def check_pre_release(applied: Mapping[str, asyncpg.Record], tree: SqlTree) -> None:
    """Raise unless the pre-release migrations ``applied`` are all of them, unedited."""
    missing = sorted(set(tree.pre_release) - set(applied))
    edited = sorted(
        f"{version}_{row['name']}"
        for version, row in applied.items()
        if version in tree.pre_release and tree.pre_release[version][1] != row["checksum"]
    )
    last = max(tree.pre_release)
    if missing:
        raise MigrationError(
            "this database was created by a development version of kubeinv: it has the "
            f"pre-release migrations up to {max(applied)} but not {_spans(missing)}, so it is "
            f"neither the schema kubeinv creates nor one it can upgrade. Either run `kubeinv "
            f"migrate` with the development version that has sql/{last}_*.sql (the last "
            "commit before sql/schema.sql; the files are also kept in the archive "
            "tests/fixtures/pre_release_migrations.tar.gz) and then this one, or drop the database "
            "and let this kubeinv create it anew (its history is lost)"
        )
    if edited:
        raise MigrationChecksumError(
            f"pre-release migrations {', '.join(edited)} were applied from files that differ "
            "from the released ones (checksums in sql/migrations/pre_release.sha256): kubeinv "
            "cannot tell what this database holds; drop it and let kubeinv create it anew"
        )


async def _grant_reader(conn: Connection, queries: Mapping[str, str]) -> None:
    # Whatever the schema or a migration created is readable by inventory_reader at once.
    if await conn.fetchval(queries["has_grant_inventory_reader"]):
        await conn.execute(queries["grant_inventory_reader"])


async def _record(conn: Connection, queries: Mapping[str, str], *row: object) -> None:
    await conn.execute(queries["record_migration"], *row)


async def _apply_schema(
    conn: Connection, tree: SqlTree, queries: Mapping[str, str], *, adopt: bool
) -> None:
    """Create the schema in an empty database, or (``adopt``) drop what the pre-release one has
    and the schema no longer has, then run the schema's replaceable statements again; either
    way grant the reader role and record version 0100."""
    started = time.perf_counter()
    statements = (tree.pre_release_drop, *tree.schema.replaceable) if adopt else tree.schema.files
    async with conn.transaction():
        for path, text in statements:
            try:
                await conn.execute(text)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{path} failed: {type(exc).__name__}: {exc}") from exc
        await _grant_reader(conn, queries)
        elapsed = int((time.perf_counter() - started) * 1000)
        await _record(conn, queries, SCHEMA_VERSION, SCHEMA_NAME, tree.schema.checksum, elapsed)
        if adopt:
            return  # the migrations after the schema are applied next, one by one
        # The schema files already hold what every migration does.
        for migration in tree.migrations:
            await _record(conn, queries, migration.version, migration.name, migration.checksum, 0)


async def _apply_one(conn: Connection, migration: Migration, queries: Mapping[str, str]) -> None:
    started = time.perf_counter()
    try:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await _grant_reader(conn, queries)
            elapsed = int((time.perf_counter() - started) * 1000)
            await _record(
                conn, queries, migration.version, migration.name, migration.checksum, elapsed
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"migration {migration.path.name} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _check_applied(applied: Mapping[str, asyncpg.Record], tree: SqlTree) -> None:
    known = {m.version: m for m in tree.migrations}
    for version, row in applied.items():
        if version == SCHEMA_VERSION or version in tree.pre_release:
            continue
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version}_{row['name']} applied, which this "
                "kubeinv does not have: it was migrated by a newer kubeinv"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationChecksumError(
                f"migration {migration.path} has changed since it was applied on "
                f"{row['applied_at']:%Y-%m-%d %H:%M:%S %Z} (checksum {row['checksum'][:12]} "
                f"in the database, {migration.checksum[:12]} on disk); applied migrations "
                "must never be edited: restore the file and add a new migration instead"
            )


async def apply_migrations(
    conn: Connection, tree: SqlTree, queries: Mapping[str, str]
) -> list[str]:
    """Bring the database to ``tree``'s schema; return the versions recorded now (in order)."""
    server = conn.get_server_version()
    check_server(server.major, f"{server.major}.{server.minor}")
    await conn.execute(queries["lock_migrations"], MIGRATION_LOCK_KEY)
    try:
        await conn.execute(queries["create_migration_table"])
        rows = await conn.fetch(queries["applied_migrations"])
        applied = {row["version"]: row for row in rows}
        if not applied:
            await _apply_schema(conn, tree, queries, adopt=False)
            return tree.versions
        adopting = SCHEMA_VERSION not in applied
        if adopting:
            unknown = sorted(set(applied) - set(tree.pre_release))
            if unknown:
                _check_applied({v: applied[v] for v in unknown}, tree)
            check_pre_release(applied, tree)
        _check_applied(applied, tree)
        done: list[str] = []
        for migration in tree.migrations:
            if migration.version not in applied:
                await _apply_one(conn, migration, queries)
                done.append(migration.version)
        if adopting:
            # The pre-release migrations built the schema's tables, indexes and data; its
            # functions, views, triggers and their comments are refreshed (test_schema.py),
            # after the migrations: the schema's views may read what a migration adds. Until
            # 0100 is recorded, a stop in between only means doing this again at the next start.
            await _apply_schema(conn, tree, queries, adopt=True)
            done.insert(0, SCHEMA_VERSION)
        return done
    finally:
        if not conn.is_closed():
            await conn.execute(queries["unlock_migrations"], MIGRATION_LOCK_KEY)
