"""sql/schema.sql against the pre-release migrations, on real PostgreSQL (procrastinate's test).

A database created from the schema must equal one created by the pre-release migrations
(tests/fixtures/pre_release_migrations.tar.gz, applied the way the old runner applied them) and
then brought up by the runner (adopted: what the schema no longer has is dropped, the schema's
functions, views, triggers and their comments run again; plus every migration of
sql/migrations/). "Equal" is a catalog dump of schema ``inventory``: relations, columns,
constraints, indexes, views, functions, triggers, comments, privileges, and the reference data.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
from pathlib import Path

import asyncpg
import pytest

from collector.errors import MigrationChecksumError, MigrationError
from collector.store import open_store
from collector.store.migrating import (
    SCHEMA_VERSION,
    load_pre_release,
    load_schema,
    load_sql_tree,
)
from collector.store.queries import load_queries, sql_dir
from tests.analytics.history import FleetHistory
from tests.analytics.scenario import build_fleet
from tests.analytics.test_daily_summary import assert_summary_exact
from tests.analytics.test_node_change import assert_node_change_exact

PRE_RELEASE_ARCHIVE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "pre_release_migrations.tar.gz"
)
REFERENCE_TABLES = ("reference_source", "kubernetes_release", "kubernetes_api_removal")
_LINE_COMMENT = re.compile(r"--[^\n]*")

CATALOG = {
    "schema": """
        SELECT n.nspname, n.nspacl::text FROM pg_namespace n WHERE n.nspname = 'inventory'""",
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text, c.relacl::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'inventory' ORDER BY 1""",
    "columns": """
        SELECT c.relname,
               row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position,
               a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl::text
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'inventory' AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2""",
    "constraints": """
        SELECT cl.relname, co.conname, pg_get_constraintdef(co.oid)
        FROM pg_constraint co
        JOIN pg_class cl ON cl.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = cl.relnamespace
        WHERE n.nspname = 'inventory' ORDER BY 1, 2""",
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'inventory' ORDER BY 1""",
    "views": """
        SELECT c.relname, pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'inventory' AND c.relkind IN ('v', 'm') ORDER BY 1""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'inventory' ORDER BY 1""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'inventory' AND NOT t.tgisinternal ORDER BY 1, 2""",
    "comments": """
        SELECT o.type, o.identity, d.description
        FROM pg_description d
        CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
        WHERE o.schema = 'inventory' OR (o.type = 'schema' AND o.identity = 'inventory')
        ORDER BY 1, 2""",
}


def _normalise(section: str, row: tuple[object, ...]) -> tuple[object, ...]:
    if section == "functions":
        # Comments inside a body do not change what it does (pre-release ones cite migrations).
        signature, definition, acl = row
        text = _LINE_COMMENT.sub("", str(definition))
        text = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
        return (signature, text, acl)
    return row


async def catalog(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        dump = {
            section: [_normalise(section, tuple(r)) for r in await conn.fetch(sql)]
            for section, sql in CATALOG.items()
        }
        for table in REFERENCE_TABLES:
            rows = await conn.fetch(f"SELECT * FROM inventory.{table} ORDER BY 1, 2, 3")
            dump[f"data:{table}"] = [tuple(r) for r in rows]
    finally:
        await conn.close()
    return dump


def pre_release_files() -> dict[str, tuple[str, bytes]]:
    """The pre-release migrations kept in the archive: ``{version: (name, content)}``."""
    files: dict[str, tuple[str, bytes]] = {}
    with tarfile.open(PRE_RELEASE_ARCHIVE, "r:gz") as archive:
        for member in archive.getmembers():
            content = archive.extractfile(member)
            assert member.isfile() and content is not None, member.name
            version, name = member.name.removesuffix(".sql").split("_", 1)
            files[version] = (name, content.read())
    return dict(sorted(files.items()))


async def build_pre_release(
    dsn: str, *, up_to: str | None = None, after: str | None = None
) -> list[str]:
    """Apply the pre-release migrations (those after ``after``, up to ``up_to``) as the
    pre-release runner did; return their versions."""
    queries = load_queries()
    released = load_pre_release()
    conn = await asyncpg.connect(dsn, timeout=30)
    versions: list[str] = []
    try:
        await conn.execute(queries["create_migration_table"])
        for version, (name, raw) in pre_release_files().items():
            if up_to is not None and version > up_to:
                break
            if after is not None and version <= after:
                continue
            async with conn.transaction():
                await conn.execute(raw.decode())
                if await conn.fetchval(queries["has_grant_inventory_reader"]):
                    await conn.execute(queries["grant_inventory_reader"])
                # The checksum of the file as released (see pre_release_migrations.md).
                await conn.execute(
                    queries["record_migration"], version, name, released[version][1], 0
                )
            versions.append(version)
    finally:
        await conn.close()
    return versions


async def _migrate(dsn: str) -> list[str]:
    store = await open_store(dsn, max_size=1)
    try:
        return await store.migrate()
    finally:
        await store.close()


async def _versions(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        rows = await conn.fetch("SELECT version FROM inventory.schema_migration ORDER BY 1")
    finally:
        await conn.close()
    return [r["version"] for r in rows]


async def test_the_schema_equals_the_pre_release_migrations(pg_dsn: str, pg_empty_dsn: str) -> None:
    """pg_dsn: created from sql/schema.sql. pg_empty_dsn: the pre-release path, then adopted."""
    assert await build_pre_release(pg_empty_dsn) == sorted(load_pre_release())
    migrations = [m.version for m in load_sql_tree().migrations]
    assert await _migrate(pg_empty_dsn) == [SCHEMA_VERSION, *migrations]
    assert await _migrate(pg_empty_dsn) == []

    from_schema, from_migrations = await catalog(pg_dsn), await catalog(pg_empty_dsn)
    assert {r[0] for r in from_schema["relations"]} >= {"node_history", "node_change"}
    assert len(from_schema["functions"]) > 20 and len(from_schema["triggers"]) == 4
    assert len(from_schema["data:kubernetes_release"]) > 30
    for section in from_schema:
        assert from_schema[section] == from_migrations[section], section

    # The comparison sees a difference where there is one.
    conn = await asyncpg.connect(pg_empty_dsn)
    try:
        await conn.execute("ALTER FUNCTION inventory.changes(timestamptz) SET work_mem = '4MB'")
    finally:
        await conn.close()
    assert (await catalog(pg_empty_dsn))["functions"] != from_schema["functions"]


async def test_adoption_gives_back_the_schema_s_functions_and_views(
    pg_dsn: str, pg_empty_dsn: str
) -> None:
    """An adopted database runs the schema's replaceable definitions again: a body changed by
    hand (or reworded in the schema since the pre-release migrations) becomes the schema's."""
    await build_pre_release(pg_empty_dsn)
    conn = await asyncpg.connect(pg_empty_dsn)
    try:
        await conn.execute(
            "CREATE OR REPLACE FUNCTION inventory.analytics_now() RETURNS timestamptz "
            "LANGUAGE sql STABLE AS $$ SELECT timestamptz '2000-01-01' $$"
        )
        await conn.execute("COMMENT ON VIEW inventory.node_current IS 'edited by hand'")
    finally:
        await conn.close()
    edited = await catalog(pg_empty_dsn)
    from_schema = await catalog(pg_dsn)
    assert edited["functions"] != from_schema["functions"]
    assert edited["comments"] != from_schema["comments"]
    await _migrate(pg_empty_dsn)
    adopted = await catalog(pg_empty_dsn)
    assert adopted["functions"] == from_schema["functions"]
    assert adopted["comments"] == from_schema["comments"]
    assert adopted["views"] == from_schema["views"]


async def test_an_adopted_database_keeps_the_derived_tables_of_node_history(
    pg_empty_dsn: str,
) -> None:
    """Adoption replaces the pre-release statement triggers on node_history (two sets of four,
    each with its own functions) by the schema's: the store's writes, and direct ones, then keep
    node_change and node_daily_delta exact, each row counted once."""
    await build_pre_release(pg_empty_dsn)
    store = await open_store(pg_empty_dsn, max_size=2)
    try:
        await store.migrate()
        await build_fleet(FleetHistory(store))
    finally:
        await store.close()
    conn = await asyncpg.connect(pg_empty_dsn)
    try:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        await conn.execute("SET kubeinv.now = '2027-01-01 00:00+00'")
        changed = await assert_node_change_exact(conn)
        assert [(r["node_uid"], sorted(r["detail"])) for r in changed] == [
            ("a1-uid", ["kubelet_version"]),
            ("a2-uid", ["labels", "unschedulable"]),
        ]
        await assert_summary_exact(conn)
        # an UPDATE of a version's content, a DELETE, an INSERT of it back
        await conn.execute(
            "UPDATE inventory.node_history SET zone = 'zone-z', cpu_capacity_millicores = 1"
            " WHERE node_uid = 'a1-uid' AND valid_to IS NULL"
        )
        await conn.execute(
            "CREATE TEMP TABLE gone AS SELECT * FROM inventory.node_history"
            " WHERE node_uid = 'a2-uid' AND valid_to IS NULL"
        )
        await conn.execute("DELETE FROM inventory.node_history WHERE node_uid = 'a2-uid'")
        await conn.execute("INSERT INTO inventory.node_history SELECT * FROM gone")
        changed = await assert_node_change_exact(conn)
        assert [(r["node_uid"], sorted(r["detail"])) for r in changed] == [
            ("a1-uid", ["cpu_capacity_millicores", "kubelet_version", "zone"]),
        ]
        await assert_summary_exact(conn)
    finally:
        await conn.close()


def test_adoption_runs_only_the_replaceable_statements() -> None:
    schema = load_schema()
    heads = [
        re.match(r"(CREATE OR REPLACE|COMMENT ON) (FUNCTION|VIEW|TRIGGER) ", " ".join(s.split()))
        for _, s in schema.replaceable
    ]
    assert all(heads)
    assert {h.groups() for h in heads if h} == {
        *(
            (verb, kind)
            for verb in ("CREATE OR REPLACE", "COMMENT ON")
            for kind in ("FUNCTION", "VIEW")
        ),
        ("CREATE OR REPLACE", "TRIGGER"),
    }
    defined = sum(len(_OR_REPLACE.findall(text)) for _, text in schema.files)
    assert sum(1 for h in heads if h and h[1] == "CREATE OR REPLACE") == defined > 30


async def test_a_partial_pre_release_database_is_refused_untouched(pg_empty_dsn: str) -> None:
    await build_pre_release(pg_empty_dsn, up_to="0017")
    before = await catalog(pg_empty_dsn)
    with pytest.raises(MigrationError, match=r"development version.*0018.*drop the database"):
        await _migrate(pg_empty_dsn)
    assert await catalog(pg_empty_dsn) == before
    assert SCHEMA_VERSION not in await _versions(pg_empty_dsn)


async def test_an_edited_pre_release_migration_is_refused(pg_empty_dsn: str) -> None:
    await build_pre_release(pg_empty_dsn)
    conn = await asyncpg.connect(pg_empty_dsn)
    try:
        await conn.execute(
            "UPDATE inventory.schema_migration SET checksum = 'edited' WHERE version = '0013'"
        )
    finally:
        await conn.close()
    with pytest.raises(MigrationChecksumError, match="0013_node_daily_delta"):
        await _migrate(pg_empty_dsn)


def test_the_pre_release_manifest_names_the_kept_files() -> None:
    """Same versions and names; the same bytes (sha256 of each member of the archive) but for
    the two files whose header comments lost a citation of a document outside the repository
    (see tests/fixtures/pre_release_migrations.md)."""
    kept = {
        version: (name, hashlib.sha256(raw).hexdigest())
        for version, (name, raw) in pre_release_files().items()
    }
    released = load_pre_release()
    assert {v: n for v, (n, _) in kept.items()} == {v: n for v, (n, _) in released.items()}
    differ = sorted(v for v, (_, sha) in kept.items() if sha != released[v][1])
    assert differ == ["0011", "0020"]


def test_the_pre_release_archive_is_deterministic() -> None:
    raw = PRE_RELEASE_ARCHIVE.read_bytes()
    assert raw[4:8] == b"\0\0\0\0", "gzip header mtime"
    with tarfile.open(PRE_RELEASE_ARCHIVE, "r:gz") as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(0, 0, 0, 0o644)}


_CREATE = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+|OR\s+REPLACE\s+)?(TABLE|VIEW|MATERIALIZED VIEW|FUNCTION|INDEX|"
    r"TRIGGER|SCHEMA|SEQUENCE|TYPE|ROLE)\s+(?:IF NOT EXISTS\s+)?([\w.]+)",
    re.MULTILINE | re.IGNORECASE,
)
# What an adopted database runs again must be written so: functions, views and triggers.
_OR_REPLACE = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+(\w+)", re.MULTILINE | re.IGNORECASE)


def test_each_schema_object_is_defined_once_and_every_file_is_listed() -> None:
    schema = load_schema()
    listed = {path for path, _ in schema.files}
    on_disk = set((sql_dir() / "schema").rglob("*.sql"))
    assert listed == on_disk, "sql/schema.sql must list every file of sql/schema/ (\\ir)"
    assert len(schema.files) == len(listed)
    where: dict[tuple[str, str], list[str]] = {}
    for path, text in schema.files:
        assert not re.search(
            r"^\s*DROP\b|^\s*ALTER\s+(TABLE|INDEX|FUNCTION|VIEW)\b",
            text,
            re.IGNORECASE | re.MULTILINE,
        ), path
        assert {k.upper() for k in _OR_REPLACE.findall(text)} <= {"FUNCTION", "VIEW", "TRIGGER"}
        assert not re.search(r"^\s*CREATE\s+(FUNCTION|VIEW|TRIGGER)\b", text, re.I | re.M), path
        for kind, name in _CREATE.findall(text):
            where.setdefault((kind.upper(), name.lower()), []).append(path.name)
    twice = {key: files for key, files in where.items() if len(files) > 1}
    assert not twice
    assert ("FUNCTION", "inventory.changes") in where


async def test_adoption_applies_the_migrations_before_the_schema_s_views(
    pg_dsn: str, pg_empty_dsn: str, tmp_path: Path
) -> None:
    """A release adds a table and a view that reads it: the schema has both, and so does its
    migration. An adopted pre-release database gets the migration first, then the schema's
    views; in the other order the view would read a table that does not exist yet."""
    sql = tmp_path / "sql"
    shutil.copytree(sql_dir(), sql)
    note = (
        "CREATE TABLE inventory.release_note (id int PRIMARY KEY, body text NOT NULL);\n"
        "CREATE OR REPLACE VIEW inventory.release_note_current AS\n"
        "SELECT id, body FROM inventory.release_note;\n"
    )
    (sql / "schema" / "tables" / "release_note.sql").write_text(note)
    with (sql / "schema.sql").open("a") as index:
        index.write("\\ir schema/tables/release_note.sql\n")
    (sql / "migrations" / "0101_release_note.sql").write_text(note)

    await build_pre_release(pg_empty_dsn)
    store = await open_store(pg_empty_dsn, max_size=1)
    try:
        assert await store.migrate(sql) == [SCHEMA_VERSION, "0101"]
        assert await store.migrate(sql) == []
    finally:
        await store.close()
    assert await _versions(pg_empty_dsn) == [*sorted(load_pre_release()), SCHEMA_VERSION, "0101"]

    adopted, from_schema = await catalog(pg_empty_dsn), await catalog(pg_dsn)
    views = {row[0] for row in adopted["views"]}
    assert "release_note_current" in views
    assert adopted["functions"] == from_schema["functions"]
    assert [r for r in adopted["views"] if r[0] != "release_note_current"] == from_schema["views"]
