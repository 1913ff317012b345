"""The read-only ``inventory_reader`` role (sql/schema/access/inventory_reader.sql), on real
PostgreSQL.

Decision (documented in the migration and the README, "Failure handling"): the role reads the public
interface of schema ``inventory``: every view and function, and the documented tables (history,
run ledger, reference data, ``cluster``). It writes nothing, creates nothing, and cannot read the
collector's bookkeeping (``cluster_claim``, ``schema_migration``) or use the sequence.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from collector.store import open_store
from tests.plugins.pg import _create_database, _drop_database, dsn_with_database

READABLE_TABLES = {
    "cluster",
    "cluster_version_history",
    "node_history",
    "api_resource_history",
    "cluster_service_history",
    "collection_run",
    "cluster_collection",
    "kubernetes_release",
    "kubernetes_api_removal",
    "reference_source",
}
PRIVATE_TABLES = {"cluster_claim", "schema_migration"}


@asynccontextmanager
async def as_reader(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE inventory_reader")
            yield conn
            raise _Rollback
    except _Rollback:
        pass
    finally:
        await conn.close()


class _Rollback(Exception):
    pass


def _with_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def relations(dsn: str, kinds: str) -> list[str]:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'inventory' AND c.relkind::text = ANY($1::text[]) ORDER BY 1",
            list(kinds),
        )
    finally:
        await conn.close()
    return [r["relname"] for r in rows]


async def denied(conn: asyncpg.Connection, sql: str) -> bool:
    try:
        async with conn.transaction():  # a savepoint: the outer transaction goes on
            await conn.execute(sql)
    except asyncpg.InsufficientPrivilegeError:
        return True
    return False


async def test_role_is_a_nologin_group_role(pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    try:
        role = await conn.fetchrow("SELECT * FROM pg_roles WHERE rolname = 'inventory_reader'")
    finally:
        await conn.close()
    assert role is not None
    assert not role["rolcanlogin"] and not role["rolsuper"] and not role["rolcreaterole"]
    assert not role["rolcreatedb"] and not role["rolbypassrls"]


async def test_reader_reads_every_view_and_the_documented_tables(pg_dsn):
    views = await relations(pg_dsn, "vm")
    assert {"cluster_current", "node_current", "api_resource_current"} <= set(views)
    tables = set(await relations(pg_dsn, "rp"))
    assert tables >= READABLE_TABLES | PRIVATE_TABLES
    # every table but the bookkeeping is readable, including those later migrations add
    # (they end with SELECT inventory.grant_inventory_reader())
    async with as_reader(pg_dsn) as conn:
        for view in views:
            await conn.fetch(f"SELECT * FROM inventory.{view} LIMIT 1")
        for table in sorted(tables - PRIVATE_TABLES):
            await conn.fetch(f"SELECT * FROM inventory.{table} LIMIT 1")


async def test_reader_calls_the_analyst_functions(pg_dsn):
    async with as_reader(pg_dsn) as conn:
        await conn.fetch("SELECT * FROM inventory.node_as_of(now())")
        await conn.fetch("SELECT * FROM inventory.api_resource_as_of(now())")
        await conn.fetch("SELECT * FROM inventory.changes(now() - interval '1 day')")
        await conn.fetch(
            "SELECT * FROM inventory.fleet_versions_daily(current_date - 7, current_date)"
        )
        await conn.fetch("SELECT * FROM inventory.capacity_daily(current_date - 7, current_date)")
        with pytest.raises(asyncpg.PostgresError) as caught:
            async with conn.transaction():
                await conn.fetch("SELECT * FROM inventory.api_resource_diff('a', 'b')")
        # not a permission problem: the clusters do not exist
        assert not isinstance(caught.value, asyncpg.InsufficientPrivilegeError)
        assert "no cluster" in str(caught.value)


async def test_reader_writes_nothing_and_reads_no_bookkeeping(pg_dsn):
    tables = await relations(pg_dsn, "rp")
    async with as_reader(pg_dsn) as conn:
        for table in tables:
            column = await conn.fetchval(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                "AND NOT attisdropped AND attidentity = '' AND attgenerated = '' "
                "ORDER BY attnum LIMIT 1",
                f"inventory.{table}",
            )
            assert await denied(conn, f"INSERT INTO inventory.{table} DEFAULT VALUES"), table
            assert await denied(conn, f'UPDATE inventory.{table} SET "{column}" = "{column}"'), (
                table
            )
            assert await denied(conn, f"DELETE FROM inventory.{table}"), table
            assert await denied(conn, f"TRUNCATE inventory.{table}"), table
        for view in await relations(pg_dsn, "vm"):
            for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
                assert not await conn.fetchval(
                    "SELECT has_table_privilege('inventory_reader', $1, $2)",
                    f"inventory.{view}",
                    privilege,
                ), (view, privilege)
        for table in sorted(PRIVATE_TABLES):
            assert await denied(conn, f"SELECT * FROM inventory.{table}"), table
        for sequence in await relations(pg_dsn, "S"):
            assert await denied(conn, f"SELECT nextval('inventory.{sequence}')"), sequence
        assert await denied(conn, "CREATE TABLE inventory.reader_was_here (x int)")
        assert await denied(conn, "CREATE VIEW inventory.reader_view AS SELECT 1 AS x")
        assert await denied(conn, "SELECT inventory.grant_inventory_reader()")


async def test_every_function_is_executable_by_the_reader(pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(
            "SELECT p.oid::regprocedure::text AS f, "
            "has_function_privilege('inventory_reader', p.oid, 'EXECUTE') AS ok "
            "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'inventory' AND p.proname <> 'grant_inventory_reader'"
        )
    finally:
        await conn.close()
    assert rows and all(r["ok"] for r in rows), [r["f"] for r in rows if not r["ok"]]


async def test_migrating_many_databases_at_once_when_the_role_exists(pg_server_dsn):
    """Roles are cluster-wide: concurrent migrations of separate databases must not conflict,
    and a database migrated after the role exists gets its grants too."""
    names = [f"kinv_role_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    for name in names:
        await _create_database(pg_server_dsn, name)

    async def migrate(name: str) -> list[str]:
        store = await open_store(dsn_with_database(pg_server_dsn, name), max_size=1)
        try:
            return await store.migrate()
        finally:
            await store.close()

    try:
        applied = await asyncio.gather(*(migrate(n) for n in names))
        assert all("0100" in a for a in applied)  # the schema, with the role and its grants
        for name in names:
            dsn = dsn_with_database(pg_server_dsn, name)
            async with as_reader(dsn) as conn:
                await conn.fetch("SELECT * FROM inventory.cluster_current")
                assert await denied(conn, "DELETE FROM inventory.node_history")
            # and applying it again is a no-op
            assert await migrate(name) == []
    finally:
        for name in names:
            await _drop_database(pg_server_dsn, name)


async def test_migrating_as_a_non_superuser_owner(pg_server_dsn):
    """Production databases are often owned by a plain user that may not create roles."""
    suffix = uuid.uuid4().hex[:10]
    owner, database = f"kinv_owner_{suffix}", f"kinv_owned_{suffix}"
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        await admin.execute(f'CREATE ROLE "{owner}" LOGIN NOSUPERUSER NOCREATEROLE')
        await admin.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
    finally:
        await admin.close()
    try:
        dsn = _with_user(dsn_with_database(pg_server_dsn, database), owner)
        try:
            store = await open_store(dsn, max_size=1)
        except Exception as exc:  # e.g. password authentication for new roles
            pytest.skip(f"cannot log in as a fresh role here: {exc}")
        try:
            assert "0100" in await store.migrate()
        finally:
            await store.close()
        async with as_reader(dsn_with_database(pg_server_dsn, database)) as conn:
            await conn.fetch("SELECT * FROM inventory.node_current")
            assert await denied(conn, "INSERT INTO inventory.cluster_claim DEFAULT VALUES")
    finally:
        await _drop_database(pg_server_dsn, database)
        admin = await asyncpg.connect(pg_server_dsn)
        try:
            await admin.execute(f'DROP ROLE IF EXISTS "{owner}"')
        finally:
            await admin.close()
