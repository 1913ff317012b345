"""Real PostgreSQL fixtures (owned by the store work).

- ``pg_server_dsn`` (session): a server to work in. ``KUBEINV_TEST_DATABASE_URL`` when set (its
  database is only used to create and drop others), else an embedded PostgreSQL that kubeinv
  starts itself in a temporary directory and stops at the end of the session.
- ``pg_template`` (session): the name of a template database holding the schema (sql/schema.sql).
  It is built once per set of schema and migration files (its name carries their checksum)
  under an advisory lock, so pytest-xdist workers and concurrent sessions share it safely.
- ``pg_dsn`` (function): a fresh database ``CREATE DATABASE ... TEMPLATE <template>``, fully
  isolated and dropped after the test.
- ``pg_empty_dsn`` (function): a fresh empty database (no schema), for migration tests.
- ``store`` (function): an open :class:`collector.store.Store` on ``pg_dsn``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from collector.store import Store, open_store
from collector.store.embedded import EmbeddedServer
from collector.store.migrating import load_sql_tree

TEST_DSN_ENV = "KUBEINV_TEST_DATABASE_URL"
_TEMPLATE_LOCK_KEY = 0x6B69_6E76_7470_6C  # 'kinvtpl'


def dsn_with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database (query parameters such as host= are kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


def database_of(dsn: str) -> str:
    """The database name in ``dsn`` (``host=`` and other query parameters do not get in the way)."""
    return urlsplit(dsn).path.lstrip("/")


def _templates_checksum() -> str:
    tree = load_sql_tree()
    digest = hashlib.sha256(tree.schema.checksum.encode())
    for migration in tree.migrations:
        digest.update(migration.version.encode() + b"\0" + migration.checksum.encode())
    return digest.hexdigest()[:16]


async def _admin(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=30)


async def _drop_database(admin_dsn: str, name: str) -> None:
    conn = await _admin(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _create_database(admin_dsn: str, name: str, template: str | None = None) -> None:
    conn = await _admin(admin_dsn)
    try:
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
        for attempt in range(20):
            try:
                await conn.execute(sql)
                return
            except asyncpg.ObjectInUseError:
                # Another session is still connected to the template: try again shortly.
                if attempt == 19:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """DSN of a maintenance database on a real PostgreSQL server."""
    dsn = os.environ.get(TEST_DSN_ENV)
    if dsn:
        yield dsn
        return
    # Embedded: its own short, world-searchable directory (as root, the server runs as
    # 'nobody', who cannot enter pytest's 0700 temporary directories).
    base = Path(tempfile.mkdtemp(prefix="kinv-pg-"))
    base.chmod(0o755)
    server = EmbeddedServer(base / "data")
    try:
        server.ensure_running()
        yield dsn_with_database(server.dsn(), "postgres")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_server_dsn: str) -> str:
    """Name of a template database holding every migration; built once, shared by workers."""
    name = f"kinv_tpl_{_templates_checksum()}"
    asyncio.run(_build_template(pg_server_dsn, name))
    return name


async def _build_template(pg_server_dsn: str, name: str) -> None:
    conn = await _admin(pg_server_dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _TEMPLATE_LOCK_KEY)
        try:
            ready = await conn.fetchval(
                "SELECT datistemplate FROM pg_database WHERE datname = $1", name
            )
            if not ready:
                # Missing, or left half-built by a crashed session: build it from scratch.
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.execute(f'CREATE DATABASE "{name}"')
                store = await open_store(dsn_with_database(pg_server_dsn, name), max_size=1)
                try:
                    await store.migrate()
                finally:
                    await store.close()
                await conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
                await _drop_obsolete_templates(conn, keep=name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _TEMPLATE_LOCK_KEY)
    finally:
        await conn.close()


async def _drop_obsolete_templates(conn: asyncpg.Connection, *, keep: str) -> None:
    """Templates of earlier migration files (this checkout, since edited), built over two hours
    ago: drop them unless in use. Younger ones may still serve a session that is running."""
    try:
        rows = await conn.fetch(
            """SELECT datname FROM pg_database
               WHERE datname LIKE 'kinv\\_tpl\\_%' AND datname <> $1
                 AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification
                     < now() - interval '2 hours'""",
            keep,
        )
    except asyncpg.PostgresError:
        return  # not allowed to read the data directory: leave them
    for row in rows:
        old = row["datname"]
        try:
            await conn.execute(f'ALTER DATABASE "{old}" WITH IS_TEMPLATE false')
            await conn.execute(f'DROP DATABASE "{old}"')
        except asyncpg.PostgresError:
            pass  # in use: leave it


@pytest.fixture
async def pg_dsn(pg_server_dsn: str, pg_template: str) -> AsyncIterator[str]:
    """A fresh database with the schema (and every migration) applied, dropped after the test."""
    name = f"kinv_test_{uuid.uuid4().hex[:12]}"
    try:
        await _create_database(pg_server_dsn, name, pg_template)
    except asyncpg.InvalidCatalogNameError:
        # The template vanished (dropped by hand or by another session): build it again.
        await _build_template(pg_server_dsn, pg_template)
        await _create_database(pg_server_dsn, name, pg_template)
    try:
        yield dsn_with_database(pg_server_dsn, name)
    finally:
        await _drop_database(pg_server_dsn, name)


@pytest.fixture
async def pg_empty_dsn(pg_server_dsn: str) -> AsyncIterator[str]:
    """A fresh empty database (no schema), dropped after the test."""
    name = f"kinv_empty_{uuid.uuid4().hex[:12]}"
    await _create_database(pg_server_dsn, name)
    try:
        yield dsn_with_database(pg_server_dsn, name)
    finally:
        await _drop_database(pg_server_dsn, name)


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[Store]:
    """An open Store on a fresh migrated database."""
    opened = await open_store(pg_dsn, max_size=4)
    try:
        yield opened
    finally:
        await opened.close()
