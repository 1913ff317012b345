"""One declaration per record: collector/records.py. Everything else that lists a record's fields
must agree with it: the history table's columns, the COPY columns and the row tuple of the write
path, the current views, the named insert queries, and the SQL node diff of node_change."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from collector.records import (
    ApiResourceRecord,
    ClusterServiceRecord,
    NodeCondition,
    NodeRecord,
    Taint,
    VersionRecord,
)
from collector.store.queries import load_queries
from collector.store.writing import (
    API_RESOURCE_COLUMNS,
    NODE_COLUMNS,
    VERSION_COLUMNS,
    api_resource_row,
    encode_inet,
    node_row,
    version_args,
)

NODE_FIELDS = list(NodeRecord.__struct_fields__)
# What a node version is compared on: everything but its key and the collector's own fields.
NODE_CONTENT = [f for f in NODE_FIELDS if f not in ("node_uid", "problems", "content_hash")]
JSON_MAPS = {"capacity", "allocatable", "labels", "taints", "conditions"}
HISTORY_KEYS = {"cluster_id", "valid_from", "valid_to"}
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _distinct_node() -> NodeRecord:
    """A node whose every field holds a value no other field holds."""
    values: dict[str, Any] = {}
    for number, name in enumerate(NODE_FIELDS, start=1):
        default = getattr(NodeRecord(node_uid="u", name="n"), name)
        if name in ("internal_ip", "external_ip"):
            values[name] = f"10.0.0.{number}"
        elif name == "created_at":
            values[name] = WHEN - timedelta(days=number)
        elif name in ("ready", "unschedulable"):
            values[name] = name == "ready"
        elif name == "taints":
            values[name] = (Taint(key=name, effect="NoSchedule"),)
        elif name == "conditions":
            values[name] = (NodeCondition(type=name, status="True"),)
        elif isinstance(default, dict):
            values[name] = {name: number}
        elif isinstance(default, tuple):
            values[name] = (name,)
        elif name.endswith(("_millicores", "_bytes", "_capacity", "_allocatable")):
            values[name] = 1000 + number
        else:
            values[name] = f"{name}-value"
    return NodeRecord(**values)


def test_node_copy_columns_are_the_record_fields() -> None:
    # Each once, between the history keys and first_seen_at (node_row's order, the COPY's).
    assert NODE_COLUMNS[:2] == ("cluster_id", "valid_from")
    assert NODE_COLUMNS[-1] == "first_seen_at"
    assert sorted(NODE_COLUMNS[2:-1]) == sorted(NODE_FIELDS)


def test_node_row_puts_each_field_in_its_column() -> None:
    record = _distinct_node()
    first_seen = WHEN - timedelta(days=400)
    row = dict(zip(NODE_COLUMNS, node_row("c1", WHEN, record, first_seen), strict=True))
    assert (row["cluster_id"], row["valid_from"], row["first_seen_at"]) == ("c1", WHEN, first_seen)
    for name in NODE_FIELDS:
        value, stored = getattr(record, name), row[name]
        if name in ("internal_ip", "external_ip"):
            assert stored == encode_inet(value), name
        elif name in JSON_MAPS:
            assert stored == msgspec.json.encode(value), name
        elif isinstance(value, tuple):
            assert stored == list(value), name
        elif name == "content_hash":
            assert stored and stored == record.content_hash, name
        else:
            assert stored == value, name


def test_api_resource_row_puts_each_field_in_its_column() -> None:
    fields = list(ApiResourceRecord.__struct_fields__)
    assert ("cluster_id", "valid_from", *fields) == API_RESOURCE_COLUMNS
    record = ApiResourceRecord(
        api_group="g", api_version="v9", resource="things", kind="Thing", namespaced=True,
        verbs=("get",), short_names=("th",), categories=("all",), singular_name="thing",
        preferred=True, content_hash="h",
    )  # fmt: skip
    row = dict(zip(API_RESOURCE_COLUMNS, api_resource_row("c1", WHEN, record), strict=True))
    for name in fields:
        value = getattr(record, name)
        assert row[name] == (list(value) if isinstance(value, tuple) else value), name


def test_version_insert_follows_the_record() -> None:
    assert ("cluster_id", *VersionRecord.__struct_fields__, "valid_from") == VERSION_COLUMNS
    record = VersionRecord(major="1", minor="28+", minor_version=28, git_version="v1.28.3")
    args = version_args("c1", WHEN, record, "h")
    assert dict(zip(VERSION_COLUMNS, args, strict=True)) == {
        **msgspec.structs.asdict(record), "cluster_id": "c1", "valid_from": WHEN,
        "content_hash": "h",
    }  # fmt: skip
    insert = load_queries()["insert_version"]
    listed = re.search(r"\(([^)]*)\)\s*VALUES", insert, re.S)
    assert listed is not None
    assert tuple(c.strip() for c in listed.group(1).split(",")) == VERSION_COLUMNS


def test_service_insert_follows_the_record() -> None:
    insert = load_queries()["insert_services"]
    listed = re.search(r"AS s\(([^)]*)\)", insert)
    assert listed is not None
    columns = [c.strip() for c in listed.group(1).split(",")]
    assert columns == [*ClusterServiceRecord.__struct_fields__, "content_hash"]


async def _columns(conn: asyncpg.Connection, relation: str) -> list[str]:
    rows = await conn.fetch(
        """SELECT a.attname FROM pg_attribute a
           WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum""",
        f"inventory.{relation}",
    )
    return [r["attname"] for r in rows]


async def test_history_tables_and_views_have_the_record_columns(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        node_history = await _columns(conn, "node_history")
        node_current = await _columns(conn, "node_current")
        api_history = await _columns(conn, "api_resource_history")
        version_history = await _columns(conn, "cluster_version_history")
        service_history = await _columns(conn, "cluster_service_history")
    finally:
        await conn.close()
    assert set(node_history) == {*NODE_COLUMNS, "valid_to"}
    assert [c for c in node_history if c in NODE_FIELDS] == NODE_FIELDS
    current = ["cluster_id", *(f for f in NODE_FIELDS if f in NODE_CONTENT or f == "node_uid")]
    assert node_current == [*current, "first_seen_at"]
    assert set(api_history) == {*API_RESOURCE_COLUMNS, "valid_to"}
    assert set(version_history) == {*VERSION_COLUMNS, "valid_to"}
    service_fields = {*ClusterServiceRecord.__struct_fields__, "content_hash"}
    assert set(service_history) == service_fields | HISTORY_KEYS


_FIELD_DIFF = re.compile(
    r"CASE WHEN p\.(\w+) IS DISTINCT FROM n\.(\w+) THEN jsonb_build_object\('(\w+)', "
    r"jsonb_build_object\('old', (to_jsonb\()?p\.(\w+)\)?, 'new', (?:to_jsonb\()?n\.(\w+)\)?\)\)"
)


async def test_the_sql_node_diff_compares_every_content_field(pg_dsn: str) -> None:
    """inventory.node_diff is the one SQL node diff: it covers exactly the record's content
    fields, in declaration order, each compared, named and shown as itself (the jsonb maps as
    they are, the others through to_jsonb). The trigger function on node_history compares
    versions through it (pairs for node_change, an UPDATE's unchanged versions), never field by
    field itself."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        diff, trigger = [
            await conn.fetchval(f"SELECT pg_get_functiondef('inventory.{f}'::regprocedure)")
            for f in (
                "node_diff(inventory.node_history, inventory.node_history)",
                "node_history_derive()",
            )
        ]
    finally:
        await conn.close()
    text = " ".join(diff.split())
    found = _FIELD_DIFF.findall(text)
    assert [f[0] for f in found] == NODE_CONTENT
    assert text.count("CASE WHEN") == len(NODE_CONTENT)
    for compared, compared_too, named, wrapped, old, new in found:
        assert compared == compared_too == named == old == new
        assert bool(wrapped) == (compared not in JSON_MAPS), compared
    assert "inventory.node_diff(p, n)" in trigger
    assert "inventory.node_diff(o::inventory.node_history," in trigger
    assert ".kubelet_version" not in trigger
