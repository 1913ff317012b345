"""The write path: one cluster's inventory in one transaction, change-only.

For each versioned part (version, nodes, API resources, services) the current (key, content
hash) pairs of the cluster are read first (an index-only scan of the partial "current" index)
and compared with the incoming records in Python. Only changed or vanished keys are closed (one
``UPDATE ... WHERE key = ANY(...)``), and only new and changed records are sent, with
``copy_records_to_table`` straight into the history table: the diff is already made, so a
staging table plus ``INSERT ... SELECT`` would only write every row twice (measured: about half
the time of the first store went there). An unchanged cluster costs one index scan per part and
no write to the history at all. The whole cluster is one transaction under a per-cluster
advisory lock, and the partial unique index on current rows guards the invariant.

Parts that were not read (``None``) are left exactly as stored; so are the API resources of
the groups listed in ``failed_groups``.

What the database does on top (sql/schema/history/node_history_triggers.sql): ``node_history``
has statement-level triggers with transition tables. The ``close_nodes`` UPDATE fires
``derive_update``, and the COPY of new node versions fires ``derive_insert`` once for the whole
COPY, with every copied row in its ``new_rows`` transition table: their one function keeps
``node_change`` (the node-changed rows of ``changes()``) and ``node_daily_delta`` (the daily
series) exact, in this transaction. A transition table stays in memory up to ``work_mem`` and
spills to a temporary file beyond it, which the trigger then reads back; each row counts at its
allocation size (a ~2.2 KB node version takes 4 KB), so a first store of 20,000 nodes needs
~82 MB. Hence ``store_memory`` (sql/queries/store.sql) raises ``work_mem`` to 256 MB for the
store transaction only (~60,000 such versions; memory is taken only as rows arrive): at 64 MB
the same store spilled (benchmarks/README.md, "Store").

The rows follow the record declarations of :mod:`collector.records`: ``NODE_COLUMNS`` and
``API_RESOURCE_COLUMNS`` are their fields (a node's in the order ``node_row`` writes them), and
tests/store/test_record_declaration.py checks that the row tuples, the history tables, the views
and the SQL node diff agree with them.
"""

from __future__ import annotations

import operator
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from collector.errors import StoreError
from collector.logging_setup import get_logger
from collector.records import (
    ApiResourceRecord,
    ClusterInventory,
    ClusterServiceRecord,
    NodeRecord,
    VersionRecord,
    content_hash,
)

log = get_logger(__name__)

# A key of a history table within one cluster: the values of its key columns.
Key: TypeAlias = tuple[Any, ...]
# A plain connection or one borrowed from a pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

R = TypeVar("R")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_json = msgspec.json.Encoder()

# Column order of the rows written into the history tables: the record's fields between the
# history keys. node_row and api_resource_row write them in this order (a generic per-field loop
# would cost the write path ~10%; even the bigint fields alone, read by one operator.attrgetter
# and checked in one comprehension, made node_row ~8% slower than its eight _int64 calls).
# A node's fields that are written as they are come first, in declaration order, read by one
# attrgetter; then those node_row converts, in the order it writes them: the addresses into
# binary inet, the integers checked against bigint, the maps and lists into JSON, and the
# collector's own problems and content hash. The COPY names its columns: their order is not
# the table's. The attrgetter costs node_row ~5% against spelling the fields out (31
# interleaved rounds over 20,000 nodes: paired median ratios 1.01-1.07), ~0.5% of a first store.
_NODE_ADDRESSES = ("internal_ip", "external_ip")
_NODE_BIGINTS = tuple(f.name for f in msgspec.structs.fields(NodeRecord) if f.type == int | None)
_NODE_JSON = ("capacity", "allocatable", "labels", "taints", "conditions")
_NODE_CONVERTED = (*_NODE_ADDRESSES, *_NODE_BIGINTS, *_NODE_JSON, "problems", "content_hash")
_NODE_AS_THEY_ARE = tuple(
    name
    for name in NodeRecord.__struct_fields__
    if name not in ("node_uid", "roles", *_NODE_CONVERTED)
)
_node_as_they_are = operator.attrgetter(*_NODE_AS_THEY_ARE)
NODE_COLUMNS = (
    "cluster_id",
    "valid_from",
    "node_uid",
    "roles",
    *_NODE_AS_THEY_ARE,
    *_NODE_CONVERTED,
    "first_seen_at",
)
API_RESOURCE_COLUMNS = ("cluster_id", "valid_from", *ApiResourceRecord.__struct_fields__)
VERSION_COLUMNS = ("cluster_id", *VersionRecord.__struct_fields__, "valid_from")


@dataclass(frozen=True)
class PartStats:
    """Versions written (``inserted``) and versions closed (``closed``) for one part."""

    inserted: int = 0
    closed: int = 0
    skipped: bool = False  # the part was not read: left as stored


@dataclass(frozen=True)
class StoreStats:
    cluster_id: str
    version: PartStats = field(default_factory=PartStats)
    nodes: PartStats = field(default_factory=PartStats)
    api_resources: PartStats = field(default_factory=PartStats)
    services: PartStats = field(default_factory=PartStats)
    duration_ms: int = 0

    @property
    def versions_written(self) -> int:
        parts = (self.version, self.nodes, self.api_resources, self.services)
        return sum(p.inserted for p in parts)

    @property
    def versions_closed(self) -> int:
        parts = (self.version, self.nodes, self.api_resources, self.services)
        return sum(p.closed for p in parts)


# ---- records -> rows ----------------------------------------------------------------------


def _hash(record: Any) -> str:
    return record.content_hash or content_hash(record)


def _int64(value: int | None, what: str, problems: list[str]) -> int | None:
    if value is None or _INT64_MIN <= value <= _INT64_MAX:
        return value
    problems.append(f"{what} {value} does not fit in bigint; kept only in the jsonb map")
    return None


def encode_inet(text: str) -> bytes:
    """PostgreSQL's binary ``inet`` of an address (ValueError if it is none).

    socket.inet_pton is C and about 20x cheaper than the ipaddress module, which asyncpg's own
    inet codec would run twice per value.
    """
    try:
        if ":" in text:
            return b"\x03\x80\x00\x10" + socket.inet_pton(socket.AF_INET6, text)
        return b"\x02\x20\x00\x04" + socket.inet_pton(socket.AF_INET, text)
    except OSError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _inet(value: str | None, what: str, problems: list[str]) -> bytes | None:
    if not value:
        return None
    try:
        return encode_inet(value.strip())
    except ValueError:
        problems.append(f"{what} {value!r} is not an IP address")
        return None


def node_key(record: NodeRecord) -> str:
    # A node without a uid (hostile or broken data) is keyed by its name.
    return record.node_uid or f"name:{record.name}"


def node_row(
    cluster_id: str, valid_from: datetime, record: NodeRecord, first_seen_at: datetime
) -> tuple[Any, ...]:
    problems = list(record.problems)
    return (
        cluster_id,
        valid_from,
        node_key(record),
        list(record.roles),
        *_node_as_they_are(record),
        _inet(record.internal_ip, "internal_ip", problems),
        _inet(record.external_ip, "external_ip", problems),
        _int64(record.cpu_capacity_millicores, "cpu_capacity_millicores", problems),
        _int64(record.memory_capacity_bytes, "memory_capacity_bytes", problems),
        _int64(record.pods_capacity, "pods_capacity", problems),
        _int64(
            record.ephemeral_storage_capacity_bytes, "ephemeral_storage_capacity_bytes", problems
        ),
        _int64(record.gpu_capacity, "gpu_capacity", problems),
        _int64(record.cpu_allocatable_millicores, "cpu_allocatable_millicores", problems),
        _int64(record.memory_allocatable_bytes, "memory_allocatable_bytes", problems),
        _int64(record.pods_allocatable, "pods_allocatable", problems),
        _json.encode(record.capacity),
        _json.encode(record.allocatable),
        _json.encode(record.labels),
        _json.encode(record.taints),
        _json.encode(record.conditions),
        problems,
        _hash(record),
        first_seen_at,
    )


def version_args(
    cluster_id: str, valid_from: datetime, record: VersionRecord, new_hash: str
) -> tuple[Any, ...]:
    """The parameters of ``insert_version``, in ``VERSION_COLUMNS`` order."""
    fields = msgspec.structs.replace(record, content_hash=new_hash)
    return (cluster_id, *msgspec.structs.astuple(fields), valid_from)


def api_resource_key(record: ApiResourceRecord) -> tuple[str, str, str]:
    return (record.api_group, record.api_version, record.resource)


def api_resource_row(
    cluster_id: str, valid_from: datetime, record: ApiResourceRecord
) -> tuple[Any, ...]:
    return (
        cluster_id,
        valid_from,
        record.api_group,
        record.api_version,
        record.resource,
        record.kind,
        record.namespaced,
        list(record.verbs),
        list(record.short_names),
        list(record.categories),
        record.singular_name,
        record.preferred,
        _hash(record),
    )


def service_hash(record: ClusterServiceRecord) -> str:
    return content_hash(record)


def _unique(records: Iterable[Any], key: Any, what: str, cluster_id: str) -> dict[Any, Any]:
    """Records by key; on a duplicate key (broken data) the first one wins."""
    out: dict[Any, Any] = {}
    for record in records:
        k = key(record)
        if k in out:
            log.warning("cluster %s: duplicate %s %s ignored", cluster_id, what, k)
            continue
        out[k] = record
    return out


# ---- the transaction ----------------------------------------------------------------------


async def store_cluster(
    conn: Connection,
    queries: dict[str, str],
    run_id: int | None,
    inv: ClusterInventory,
    *,
    at: datetime | None = None,
) -> StoreStats:
    """Write one cluster's inventory in one transaction (see the module docstring)."""
    started = time.perf_counter()
    q = queries
    cid = inv.cluster_id
    async with conn.transaction():
        await conn.execute(q["lock_cluster"], cid)
        await conn.execute(q["store_memory"])
        when: datetime = at if at is not None else await conn.fetchval(q["version_time"])
        complete = (
            inv.version is not None
            and inv.nodes is not None
            and inv.api_resources is not None
            and not inv.failed_groups
        )
        missing = [
            name
            for name, part in (
                ("version", inv.version),
                ("nodes", inv.nodes),
                ("API resources", inv.api_resources),
            )
            if part is None
        ]
        if inv.failed_groups:
            missing.append("API groups " + ", ".join(sorted(inv.failed_groups)))
        await conn.execute(
            q["upsert_cluster"],
            cid,
            inv.cluster_id_source,
            inv.server_url,
            inv.provider,
            sorted(set(inv.context_names)),
            inv.discovery_mode,
            when,
            "ok" if complete else "partial",
            None if complete else "not read: " + "; ".join(missing),
            run_id,
        )
        # A retired cluster collected again comes back: new versions from now on.
        await conn.execute(q["end_retirement"], cid, when)
        version = await _VERSION.merge(
            conn, q, cid, when, None if inv.version is None else [inv.version]
        )
        nodes = await _NODES.merge(conn, q, cid, when, inv.nodes)
        api = await _API_RESOURCES.merge(
            conn, q, cid, when, inv.api_resources, failed_groups=frozenset(inv.failed_groups)
        )
        services = await _SERVICES.merge(conn, q, cid, when, inv.services)
    return StoreStats(
        cluster_id=cid,
        version=version,
        nodes=nodes,
        api_resources=api,
        services=services,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )


def _affected(status: str) -> int:
    # asyncpg returns the command tag, e.g. 'UPDATE 3' / 'INSERT 0 3'.
    return int(status.rsplit(" ", 1)[-1])


async def _copy_history(
    conn: Connection, table: str, rows: Iterable[Sequence[Any]], columns: Sequence[str]
) -> int:
    """COPY the new versions into ``inventory.<table>``; returns how many were inserted.
    ``rows`` may be a generator: rows are encoded while the server already inserts earlier
    ones."""
    status = await conn.copy_records_to_table(
        table, schema_name="inventory", records=rows, columns=columns
    )
    return _affected(status)


@dataclass(frozen=True)
class _NewVersions(Generic[R]):
    """What a part's ``write`` stores: new versions of the ``changed`` keys."""

    conn: Connection
    q: dict[str, str]
    cid: str
    when: datetime
    changed: list[Key]
    records: dict[Key, R]  # the records read, by key
    hashes: dict[Key, str]  # their content hashes, by key
    current: list[asyncpg.Record]  # the rows of the part's ``current`` query


@dataclass(frozen=True)
class _Part(Generic[R]):
    """A versioned part of a cluster: what differs from one part to another.

    ``current`` names the query of the cluster's current versions: rows of the ``key_columns``
    key columns, then the content hash. ``close`` names the query that closes versions by key
    ($1 cluster, $2 time, then one array per key column). ``key`` and ``hash`` are a record's key
    (its key columns' values) and content hash, ``what`` names a record in a warning, and
    ``write`` stores the new versions and returns how many it inserted."""

    what: str
    current: str
    close: str
    key_columns: int
    key: Callable[[R], Key]
    write: Callable[[_NewVersions[R]], Awaitable[int]]
    hash: Callable[[R], str] = _hash

    async def merge(
        self,
        conn: Connection,
        q: dict[str, str],
        cid: str,
        when: datetime,
        records: Sequence[R] | None,
        *,
        failed_groups: frozenset[str] = frozenset(),
    ) -> PartStats:
        """The merge every part shares. Compares the current (key, content hash) pairs with the
        records', closes the current versions whose content changed or whose key vanished, and
        has ``write`` store the changed and new ones. Records that were not read (None) leave
        the part as stored. API resources: a key whose first column is one of the
        ``failed_groups`` keeps what is stored, if anything is (with nothing stored, what was
        read is the best information there is)."""
        if records is None:
            return PartStats(skipped=True)
        rows = await conn.fetch(q[self.current], cid)
        n = self.key_columns
        current: dict[Key, str] = {row[:n]: row[n] for row in rows}
        incoming = _unique(records, self.key, self.what, cid)
        hashes = {key: self.hash(record) for key, record in incoming.items()}
        kept = failed_groups & {key[0] for key in current} if failed_groups else failed_groups
        if kept:
            current = {key: old for key, old in current.items() if key[0] not in kept}
            hashes = {key: new for key, new in hashes.items() if key[0] not in kept}
        changed = [key for key, new in hashes.items() if current.get(key) != new]
        to_close = [key for key, old in current.items() if hashes.get(key) != old]
        closed = 0
        if to_close:
            columns = [list(column) for column in zip(*to_close, strict=True)]
            closed = _affected(await conn.execute(q[self.close], cid, when, *columns))
        if not changed:
            return PartStats(closed=closed)
        new = _NewVersions(conn, q, cid, when, changed, incoming, hashes, rows)
        return PartStats(inserted=await self.write(new), closed=closed)


async def _insert_version(new: _NewVersions[VersionRecord]) -> int:
    (key,) = new.changed
    args = version_args(new.cid, new.when, new.records[key], new.hashes[key])
    await new.conn.execute(new.q["insert_version"], *args)
    return 1


async def _copy_nodes(new: _NewVersions[NodeRecord]) -> int:
    """COPY the new node versions, each with the time its node was first seen: kept from its
    current version, else from an earlier one (a node that comes back), else now."""
    conn, cid, when = new.conn, new.cid, new.when
    first_seen: dict[str, datetime] = {row[0]: row[2] for row in new.current}
    new_keys = [key for (key,) in new.changed if key not in first_seen]
    if new_keys and (new.current or await conn.fetchval(new.q["has_node_history"], cid)):
        for row in await conn.fetch(new.q["earlier_first_seen"], cid, new_keys):
            first_seen[row[0]] = row[1]
    return await _copy_history(
        conn,
        "node_history",
        (
            node_row(cid, when, new.records[key], first_seen.get(key[0], when))
            for key in new.changed
        ),
        NODE_COLUMNS,
    )


async def _copy_api_resources(new: _NewVersions[ApiResourceRecord]) -> int:
    return await _copy_history(
        new.conn,
        "api_resource_history",
        (api_resource_row(new.cid, new.when, new.records[key]) for key in new.changed),
        API_RESOURCE_COLUMNS,
    )


async def _insert_services(new: _NewVersions[ClusterServiceRecord]) -> int:
    status = await new.conn.execute(
        new.q["insert_services"],
        new.cid,
        new.when,
        [key[0] for key in new.changed],
        [key[1] for key in new.changed],
        [new.records[key].proxy_url for key in new.changed],
        [new.hashes[key] for key in new.changed],
    )
    return _affected(status)


_VERSION = _Part[VersionRecord](
    "version", "current_version_hash", "close_version", 0, lambda r: (), _insert_version
)
_NODES = _Part[NodeRecord](
    "node", "current_node_hashes", "close_nodes", 1, lambda r: (node_key(r),), _copy_nodes
)
_API_RESOURCES = _Part[ApiResourceRecord](
    "API resource",
    "current_api_resource_hashes",
    "close_api_resources",
    3,
    api_resource_key,
    _copy_api_resources,
)
_SERVICES = _Part[ClusterServiceRecord](
    "service",
    "current_service_hashes",
    "close_services",
    2,
    lambda r: (r.namespace, r.name),
    _insert_services,
    hash=service_hash,
)


def check_store_time(at: datetime | None) -> None:
    if at is not None and at.tzinfo is None:
        raise StoreError("the store time must be timezone-aware")
