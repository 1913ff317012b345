"""The schema runner against a real PostgreSQL: apply, re-apply, public names, checksum guard,
lock. The schema against the pre-release migrations: tests/store/test_schema.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import asyncpg
import pytest

from collector.errors import DatabaseRefusedError, MigrationChecksumError, MigrationError
from collector.store import open_store
from collector.store.migrating import (
    MIGRATION_LOCK_KEY,
    MINIMUM_SERVER_MAJOR,
    SCHEMA_VERSION,
    check_server,
    load_sql_tree,
)
from collector.store.queries import parse_queries, sql_dir

# README, "SQL: schema inventory": the public names and their listed columns.
NODE_COLUMNS = [
    "cluster_id", "node_uid", "name", "created_at", "roles", "ready", "unschedulable",
    "kubelet_version", "container_runtime_version", "os_image", "kernel_version",
    "architecture", "operating_system", "internal_ip", "external_ip", "provider_id",
    "cloud_provider", "region", "zone", "instance_type", "cpu_capacity_millicores",
    "memory_capacity_bytes", "pods_capacity", "ephemeral_storage_capacity_bytes",
    "gpu_capacity", "cpu_allocatable_millicores", "memory_allocatable_bytes",
    "pods_allocatable", "capacity", "allocatable", "labels", "taints", "conditions",
    "first_seen_at",
]  # fmt: skip
API_COLUMNS = [
    "cluster_id", "api_group", "api_version", "resource", "kind", "namespaced", "verbs",
    "short_names", "categories", "preferred",
]  # fmt: skip
RELATIONS = {
    "cluster_current": [
        "cluster_id", "context_names", "server_url", "git_version", "minor_version",
        "platform", "provider", "node_count", "ready_node_count", "cpu_capacity_millicores",
        "memory_capacity_bytes", "cpu_allocatable_millicores", "memory_allocatable_bytes",
        "last_collected_at", "last_status", "last_error",
    ],
    "node_current": NODE_COLUMNS,
    "api_resource_current": API_COLUMNS,
    "cluster_service_current": ["cluster_id", "namespace", "name", "proxy_url"],
    "cluster_registry": [
        "cluster_id", "context_names", "first_seen_at", "last_collected_at", "last_status",
        "retired_at", "retired_by",
    ],
    "cluster_version_history": [
        "cluster_id", "git_version", "major", "minor_version", "git_commit", "build_date",
        "go_version", "platform", "valid_from", "valid_to",
    ],
    "node_history": [*NODE_COLUMNS, "valid_from", "valid_to"],
    "api_resource_history": [*API_COLUMNS, "valid_from", "valid_to"],
    "collection_run": ["run_id", "started_at", "finished_at", "status"],
    "cluster_collection": [
        "run_id", "kubeconfig_path", "context_name", "cluster_id", "status", "deduplicated",
        "error_class", "error_message", "duration_ms", "discovery_mode",
    ],
}  # fmt: skip
FUNCTIONS = {"node_as_of": NODE_COLUMNS, "api_resource_as_of": API_COLUMNS}
TYPES = {
    ("cluster_current", "context_names"): "ARRAY",
    ("cluster_current", "minor_version"): "integer",
    ("node_current", "roles"): "ARRAY",
    ("node_current", "ready"): "boolean",
    ("node_current", "internal_ip"): "inet",
    ("node_current", "labels"): "jsonb",
    ("node_current", "capacity"): "jsonb",
    ("node_current", "memory_capacity_bytes"): "bigint",
    ("node_current", "first_seen_at"): "timestamp with time zone",
    ("api_resource_current", "verbs"): "ARRAY",
    ("api_resource_current", "preferred"): "boolean",
    ("node_history", "valid_to"): "timestamp with time zone",
    ("collection_run", "started_at"): "timestamp with time zone",
}


async def _schema_snapshot(conn: asyncpg.Connection) -> list[tuple[object, ...]]:
    columns = await conn.fetch(
        """SELECT table_name, column_name, data_type, ordinal_position
           FROM information_schema.columns WHERE table_schema = 'inventory'
           ORDER BY 1, 4"""
    )
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'inventory' ORDER BY 1"
    )
    routines = await conn.fetch(
        """SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'inventory'
           ORDER BY 1, 2"""
    )
    return [tuple(r) for r in (*columns, *indexes, *routines)]


async def test_apply_to_empty_database_then_reapply_changes_nothing(pg_empty_dsn: str) -> None:
    store = await open_store(pg_empty_dsn)
    try:
        tree = load_sql_tree()
        applied = await store.migrate()
        assert applied == tree.versions
        assert applied[0] == SCHEMA_VERSION
        async with store.connection() as conn:
            before = await _schema_snapshot(conn)
            recorded = await conn.fetch(
                "SELECT version, checksum FROM inventory.schema_migration ORDER BY version"
            )
        assert [(r["version"], r["checksum"]) for r in recorded] == [
            (SCHEMA_VERSION, tree.schema.checksum),
            *((m.version, m.checksum) for m in tree.migrations),
        ]
        assert await store.migrate() == []
        async with store.connection() as conn:
            assert await _schema_snapshot(conn) == before
    finally:
        await store.close()


@pytest.mark.parametrize("relation", sorted(RELATIONS))
async def test_design_relations_have_their_columns(pg_dsn: str, relation: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(
            """SELECT column_name, data_type FROM information_schema.columns
               WHERE table_schema = 'inventory' AND table_name = $1""",
            relation,
        )
    finally:
        await conn.close()
    columns = {r["column_name"]: r["data_type"] for r in rows}
    missing = [c for c in RELATIONS[relation] if c not in columns]
    assert not missing, f"inventory.{relation} lacks {missing}"
    for (rel, column), data_type in TYPES.items():
        if rel == relation:
            assert columns[column] == data_type, (relation, column)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
async def test_as_of_functions_return_the_current_views_columns(pg_dsn: str, function: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        result = await conn.fetchval(
            """SELECT pg_get_function_result(p.oid) FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'inventory' AND p.proname = $1
                 AND pg_get_function_identity_arguments(p.oid) = 'ts timestamp with time zone'""",
            function,
        )
        assert result is not None, f"inventory.{function}(ts timestamptz) does not exist"
        statement = await conn.prepare(f"SELECT * FROM inventory.{function}(now())")
        names = [a.name for a in statement.get_attributes()]
        view = function.replace("_as_of", "_current")
        view_statement = await conn.prepare(f"SELECT * FROM inventory.{view}")
        assert names == [a.name for a in view_statement.get_attributes()]
    finally:
        await conn.close()
    assert [c for c in FUNCTIONS[function] if c not in names] == []


def _copy_sql(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(sql_dir(), target)
    return target


async def test_checksum_guard_refuses_an_edited_migration(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    folder = _copy_sql(tmp_path)
    store = await open_store(pg_empty_dsn)
    try:
        await store.migrate(folder)
        added = folder / "migrations" / "0101_add_a_column.sql"
        added.write_text("ALTER TABLE inventory.cluster ADD COLUMN note text;\n")
        assert await store.migrate(folder) == ["0101"]
        added.write_text(added.read_text() + "\n-- an innocent-looking edit\n")
        with pytest.raises(MigrationChecksumError, match=r"0101_add_a_column\.sql"):
            await store.migrate(folder)
    finally:
        await store.close()


async def test_unknown_applied_migration_is_refused(pg_empty_dsn: str, tmp_path: Path) -> None:
    folder = _copy_sql(tmp_path)
    future = folder / "migrations" / "9999_from_the_future.sql"
    store = await open_store(pg_empty_dsn)
    try:
        await store.migrate(folder)
        future.write_text("CREATE TABLE inventory.future (x int);\n")
        assert await store.migrate(folder) == ["9999"]
        future.unlink()
        with pytest.raises(MigrationError, match="9999_from_the_future"):
            await store.migrate(folder)
    finally:
        await store.close()


async def test_failing_migration_rolls_back_and_names_its_file(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    folder = _copy_sql(tmp_path)
    (folder / "migrations" / "9998_broken.sql").write_text(
        "CREATE TABLE inventory.half (x int);\nSELECT * FROM no_such_table;\n"
    )
    store = await open_store(pg_empty_dsn)
    try:
        await store.migrate(_copy_sql(tmp_path / "clean"))  # the schema alone
        with pytest.raises(MigrationError, match=r"9998_broken\.sql"):
            await store.migrate(folder)
        async with store.connection() as conn:
            assert await conn.fetchval("SELECT to_regclass('inventory.half')") is None
            versions = await conn.fetch("SELECT version FROM inventory.schema_migration")
        assert "9998" not in {r["version"] for r in versions}
        assert SCHEMA_VERSION in {r["version"] for r in versions}
    finally:
        await store.close()


async def test_concurrent_migrators_apply_each_migration_once(pg_empty_dsn: str) -> None:
    stores = [await open_store(pg_empty_dsn, max_size=1) for _ in range(3)]
    try:
        results = await asyncio.gather(*(s.migrate() for s in stores))
        applied = [v for result in results for v in result]
        assert sorted(applied) == load_sql_tree().versions
    finally:
        for s in stores:
            await s.close()


async def test_migrator_waits_for_the_advisory_lock(pg_empty_dsn: str) -> None:
    holder = await asyncpg.connect(pg_empty_dsn)
    store = await open_store(pg_empty_dsn, max_size=1)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        task = asyncio.create_task(store.migrate())
        await asyncio.sleep(0.5)
        assert not task.done(), "migrate() ran while another process held the lock"
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        assert await asyncio.wait_for(task, 60) == load_sql_tree().versions
    finally:
        await holder.close()
        await store.close()


def test_named_queries_parse() -> None:
    text = "-- header\n-- name: a\nSELECT 1;\n\n-- name: b\n-- doc\nSELECT 2;\n"
    assert parse_queries(text) == {"a": "SELECT 1;", "b": "-- doc\nSELECT 2;"}
    with pytest.raises(Exception, match="twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    with pytest.raises(Exception, match="empty"):
        parse_queries("-- name: a\n\n-- name: b\nSELECT 1;\n")


async def test_runner_grants_the_reader_role_what_a_migration_forgot(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    folder = _copy_sql(tmp_path)
    (folder / "migrations" / "9997_forgets_to_grant.sql").write_text(
        "CREATE TABLE inventory.forgotten (x int);\n"
        "CREATE VIEW inventory.forgotten_view AS SELECT x FROM inventory.forgotten;\n"
        "CREATE FUNCTION inventory.forgotten_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
        "REVOKE EXECUTE ON FUNCTION inventory.forgotten_fn() FROM PUBLIC;\n"
    )
    store = await open_store(pg_empty_dsn)
    try:
        await store.migrate(_copy_sql(tmp_path / "clean"))  # the schema alone
        assert await store.migrate(folder) == ["9997"]
        async with store.connection() as conn:
            if not await conn.fetchval("SELECT to_regrole('inventory_reader') IS NOT NULL"):
                pytest.skip("the migrating role may not create inventory_reader here")
            granted = await conn.fetchrow(
                """SELECT has_table_privilege('inventory_reader', 'inventory.forgotten', 'SELECT')
                            AS tab,
                          has_table_privilege('inventory_reader', 'inventory.forgotten_view',
                                              'SELECT') AS view,
                          has_function_privilege('inventory_reader', 'inventory.forgotten_fn()',
                                                 'EXECUTE') AS fn,
                          has_table_privilege('inventory_reader', 'inventory.forgotten',
                                              'INSERT') AS writes"""
            )
        assert dict(granted) == {"tab": True, "view": True, "fn": True, "writes": False}
    finally:
        await store.close()


def test_sql_dir_is_the_repository_sql_in_a_checkout() -> None:
    repository = Path(__file__).resolve().parents[2]
    assert sql_dir() == repository / "sql"


@pytest.mark.slow
def test_a_built_wheel_ships_the_sql_folder(tmp_path: Path) -> None:
    """`pip wheel` puts sql/ into the package as collector/_sql, and an installed copy (no
    repository around it) finds every migration and named query there."""
    repository = Path(__file__).resolve().parents[2]
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path / "wheel"), str(repository)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if "No matching distribution found for setuptools" in build.stderr:
        pytest.skip("the build backend (setuptools) cannot be installed here")
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "wheel").glob("kubeinv-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    tree = load_sql_tree()
    for path, _ in tree.schema.files:
        assert f"collector/_sql/{path.relative_to(sql_dir()).as_posix()}" in names
    assert "collector/_sql/schema.sql" in names
    assert "collector/_sql/migrations/pre_release.sha256" in names
    assert "collector/_sql/migrations/pre_release_drop.sql" in names
    assert "collector/_sql/queries/store.sql" in names
    probe = (
        "from collector.store.queries import sql_dir, load_queries\n"
        "from collector.store.migrating import load_sql_tree\n"
        "print(sql_dir()); print(load_sql_tree().schema.checksum);"
        "print('claim_cluster' in load_queries())"
    )
    packages = {
        str(p.parent.relative_to(repository)).replace("/", ".")
        for p in (repository / "collector").rglob("__init__.py")
    }
    shipped = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages <= shipped, "list every package of collector in pyproject.toml"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(site)
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert out == [str(site / "collector" / "_sql"), tree.schema.checksum, "True"]


def test_a_server_older_than_the_schema_needs_is_refused_by_name() -> None:
    check_server(MINIMUM_SERVER_MAJOR, f"{MINIMUM_SERVER_MAJOR}.0")  # accepted
    with pytest.raises(DatabaseRefusedError, match=r"PostgreSQL 13\.16 is too old: .* 14 or newer"):
        check_server(13, "13.16")
