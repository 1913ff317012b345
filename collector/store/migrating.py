"""Schema migrations: numbered ``sql/NNNN_name.sql`` files applied in order.

Each migration runs in its own transaction, under a session advisory lock so that two processes
starting together do not race, and is recorded with the sha256 of its file in
``inventory.schema_migration``. A migration that was applied and has since changed stops
everything (``MigrationChecksumError``): migrations are never edited once landed.

After each migration, in its transaction, the runner calls ``inventory.grant_inventory_reader()``
(sql/0020, 0021) once that function exists, so that the read-only role reads every new view,
table and function without each migration having to remember it.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from collector.errors import MigrationChecksumError, MigrationError
from collector.store.queries import sql_dir
from collector.store.writing import Connection

# 'kubeinv' in ASCII: the advisory lock key of the migrations runner.
MIGRATION_LOCK_KEY = 0x6B75_6265_696E_76
_FILE_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_.-]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    sql: str
    checksum: str


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """The migration files of ``directory`` (default: the repository's ``sql/``), in order."""
    folder = directory if directory is not None else sql_dir()
    if not folder.is_dir():
        raise MigrationError(f"migrations directory {folder} does not exist")
    migrations: dict[str, Migration] = {}
    for path in sorted(folder.iterdir()):
        match = _FILE_NAME.match(path.name)
        if not match or not path.is_file():
            continue
        version, name = match.groups()
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
    if not migrations:
        raise MigrationError(f"no migration files (NNNN_name.sql) in {folder}")
    return [migrations[v] for v in sorted(migrations)]


async def apply_migrations(
    conn: Connection, migrations: list[Migration], queries: dict[str, str]
) -> list[str]:
    """Apply the pending ``migrations``; return the versions applied now (in order)."""
    await conn.execute(queries["lock_migrations"], MIGRATION_LOCK_KEY)
    try:
        await conn.execute(queries["create_migration_table"])
        rows = await conn.fetch(queries["applied_migrations"])
        applied = {row["version"]: row for row in rows}
        known = {m.version: m for m in migrations}
        for version, row in applied.items():
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
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            started = time.perf_counter()
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    # Whatever the migration created is readable by inventory_reader at once,
                    # whether or not the migration remembered to grant it.
                    if await conn.fetchval(queries["has_grant_inventory_reader"]):
                        await conn.execute(queries["grant_inventory_reader"])
                    await conn.execute(
                        queries["record_migration"],
                        migration.version,
                        migration.name,
                        migration.checksum,
                        int((time.perf_counter() - started) * 1000),
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {migration.path.name} failed: {type(exc).__name__}: {exc}"
                ) from exc
            done.append(migration.version)
        return done
    finally:
        if not conn.is_closed():
            await conn.execute(queries["unlock_migrations"], MIGRATION_LOCK_KEY)
