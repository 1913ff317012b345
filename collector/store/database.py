"""The Store: a connection pool and every database operation kubeinv performs.

This is the one place that executes the named queries of ``sql/queries/`` and translates
asyncpg's exceptions into ``StoreError``. Operations are idempotent enough to be retried once
on a broken connection (a PostgreSQL restart between two runs of the daemon): a store that is
retried finds nothing left to change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

import collector
from collector.errors import DatabaseRefusedError, StoreError
from collector.logging_setup import get_logger
from collector.records import ClusterInventory, TargetOutcome
from collector.store.embedded import EmbeddedServer
from collector.store.migrating import apply_migrations, load_sql_tree
from collector.store.queries import load_queries
from collector.store.retiring import (
    Retirement,
    mark_reached,
    registry,
    retire_by_hand,
    retire_unseen,
)
from collector.store.writing import (
    Connection,
    StoreStats,
    check_store_time,
    encode_inet,
    store_cluster,
)

if TYPE_CHECKING:
    from collector.store.reports import ReportReader

log = get_logger(__name__)
T = TypeVar("T")

_json = msgspec.json.Encoder()
_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
)
_OPEN_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    *_CONNECTION_ERRORS,
    TimeoutError,
    ValueError,
)
# What no retry fixes: a wrong password or user, a pg_hba.conf rejection, no such database.
_REFUSALS: tuple[type[Exception], ...] = (
    asyncpg.InvalidAuthorizationSpecificationError,  # and InvalidPasswordError
    asyncpg.InvalidCatalogNameError,
)
RUN_STATUSES = ("ok", "partial", "failed", "abandoned")


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparsable DSN>"
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _encode_jsonb(value: Any) -> bytes:
    # Binary jsonb is a version byte (1) followed by the JSON text.
    if isinstance(value, bytes):
        return b"\x01" + value
    if isinstance(value, str):
        return b"\x01" + value.encode()
    return b"\x01" + _json.encode(value)


def _decode_jsonb(data: bytes) -> Any:
    return msgspec.json.decode(data[1:])


def _encode_inet(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value  # already binary (writing.encode_inet)
    text = str(value)
    if "/" not in text:
        return encode_inet(text)
    iface = ipaddress.ip_interface(text)  # an address with a prefix length (rare: slow path)
    family = 3 if iface.version == 6 else 2
    packed = iface.ip.packed
    return bytes((family, iface.network.prefixlen, 0, len(packed))) + packed


def _decode_inet(data: bytes) -> str:
    # family, bits, is_cidr, length, address: the address as text; a network keeps its /bits.
    family, bits = data[0], data[1]
    text = socket.inet_ntop(socket.AF_INET6 if family == 3 else socket.AF_INET, data[4:])
    full = 128 if family == 3 else 32
    return text if bits == full else f"{text}/{bits}"


# Kernel send buffer of each connection's socket (the kernel doubles it, up to twice
# net.core.wmem_max). asyncpg hands COPY data to the transport in 512 KiB chunks and encodes the
# next chunk only when the transport has drained, without returning to the event loop in
# between: the server then has only what the socket holds to work on while the client encodes.
# With the default buffer (~208 KiB, ~100 node rows) the backend of a 20,000-node first store
# waited for the client ~15% of the time; with a larger one it keeps busy (benchmarks/README.md,
# "Store").
SEND_BUFFER_BYTES = 2 * 1024 * 1024


def _enlarge_send_buffer(conn: Connection) -> None:
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    except OSError as exc:  # a smaller buffer is only slower
        log.debug("cannot enlarge the socket send buffer: %s", exc)


async def _init_connection(conn: Connection) -> None:
    _enlarge_send_buffer(conn)
    await conn.set_type_codec(
        "inet",
        schema="pg_catalog",
        encoder=_encode_inet,
        decoder=_decode_inet,
        format="binary",
    )
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        format="binary",
    )


def _fail(action: str, exc: BaseException) -> StoreError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(f"database error while {action}: {detail}")


@dataclass(frozen=True)
class LedgerPruning:
    """What one :meth:`Store.prune_ledger` deleted."""

    rows: int  # cluster_collection rows
    runs: int  # collection_run rows


class Store:
    """kubeinv's database. Create with :func:`open_store`; close with :meth:`close`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        queries: dict[str, str],
        *,
        dsn: str,
        embedded: EmbeddedServer | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self._pool = pool
        self._connect_timeout = connect_timeout
        # run_id -> the connection holding that run's liveness lock (see start_run)
        self._run_locks: dict[int, asyncpg.Connection[asyncpg.Record]] = {}
        self._q = queries
        self.dsn = dsn
        self.embedded = embedded  # EmbeddedServer when kubeinv started its own PostgreSQL

    # ---- plumbing --------------------------------------------------------------------------

    async def _with_conn(
        self, action: str, fn: Callable[[Connection], Awaitable[T]], *, retry: bool = True
    ) -> T:
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                async with self._pool.acquire() as conn:
                    return await fn(conn)
            except StoreError:
                raise
            except _CONNECTION_ERRORS as exc:
                # The server restarted or dropped us: every pooled connection is stale.
                await self._pool.expire_connections()
                if attempt + 1 < attempts:
                    log.warning("database connection lost while %s; retrying once", action)
                    continue
                raise _fail(action, exc) from exc
            except asyncpg.PostgresError as exc:
                raise _fail(action, exc) from exc
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection (for tests and benchmarks of the store)."""
        async with self._pool.acquire() as conn:
            yield conn

    # ---- schema ----------------------------------------------------------------------------

    async def migrate(self, directory: Path | None = None) -> list[str]:
        """Create the schema or apply pending migrations; return the versions recorded now.

        ``directory`` is an ``sql/`` folder (default: kubeinv's own): see
        :mod:`collector.store.migrating`.
        """
        tree = load_sql_tree(directory)

        async def run(conn: Connection) -> list[str]:
            return await apply_migrations(conn, tree, self._q)

        applied = await self._with_conn("migrating the schema", run)
        if applied:
            log.info("applied migrations %s", ", ".join(applied))
        return applied

    # ---- runs ------------------------------------------------------------------------------

    async def start_run(self) -> int:
        """Start a run; its collector is seen alive while this store keeps it open.

        The run holds a session advisory lock (``inventory.run_lock_key``) on a connection of
        its own until :meth:`finish_run` (or :meth:`close`). When the process dies, PostgreSQL
        drops the session and the lock with it: other collectors then see the run as dead
        (``inventory.run_is_live``), its claims stop blocking them, and the next
        :meth:`start_run` marks it ``abandoned``.
        """
        for attempt in range(2):
            conn: asyncpg.Connection[asyncpg.Record] | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=self._connect_timeout)
                dead = await conn.fetch(self._q["abandon_dead_runs"])
                if dead:
                    log.warning(
                        "runs %s ended without finishing (their collector died): abandoned",
                        ", ".join(str(row["run_id"]) for row in dead),
                    )
                row = await conn.fetchrow(
                    self._q["start_run"], socket.gethostname(), os.getpid(), collector.__version__
                )
                assert row is not None
                run_id = int(row["run_id"])
            except _CONNECTION_ERRORS as exc:
                if conn is not None:
                    conn.terminate()
                if attempt == 0:
                    log.warning("database connection lost while starting a run; retrying once")
                    continue
                raise _fail("starting a run", exc) from exc
            except (asyncpg.PostgresError, TimeoutError) as exc:
                if conn is not None:
                    conn.terminate()
                raise _fail("starting a run", exc) from exc
            self._run_locks[run_id] = conn
            return run_id
        raise AssertionError("unreachable")

    async def _release_run(self, run_id: int) -> None:
        conn = self._run_locks.pop(run_id, None)
        if conn is None or conn.is_closed():
            return
        try:
            await conn.close(timeout=5)  # ends the session: releases the run lock
        except Exception:  # a broken connection: its lock is gone already
            conn.terminate()

    async def finish_run(self, run_id: int, status: str) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}")

        async def run(conn: Connection) -> None:
            if await conn.fetchval(self._q["finish_run"], run_id, status) is None:
                raise StoreError(f"run {run_id} does not exist")

        try:
            await self._with_conn("finishing a run", run)
        finally:
            await self._release_run(run_id)

    async def run_is_live(self, run_id: int) -> bool:
        """Whether the collector of run ``run_id`` is alive (holds the run's lock)."""

        async def run(conn: Connection) -> bool:
            return bool(await conn.fetchval(self._q["run_is_live"], run_id))

        return await self._with_conn("reading a run's liveness", run)

    async def claim_cluster(
        self,
        run_id: int,
        cluster_id: str,
        *,
        fresh_within: timedelta = timedelta(0),
        stale_after: timedelta = timedelta(hours=1),
    ) -> bool:
        """Claim ``cluster_id`` for ``run_id``; False when another collector has it.

        Call it after identifying a cluster and before collecting its inventory. A claim is
        refused while another run is collecting the cluster: that run is unfinished, its
        collector is alive (it holds its run lock, see :meth:`start_run`) and it claimed less
        than ``stale_after`` ago (a hung collector's claim expires). A killed collector's
        claims stop blocking as soon as PostgreSQL sees its connection close. When
        ``fresh_within`` is set (the daemon passes a fraction of its interval), a claim is
        also refused while another run claimed the cluster less than that long ago and
        finished normally or stored the cluster, so that two daemons on one database collect
        each cluster once per interval. Claiming again for the same run is allowed.
        """

        async def run(conn: Connection) -> bool:
            async with conn.transaction():
                await conn.execute(self._q["lock_cluster"], cluster_id)
                got = await conn.fetchval(
                    self._q["claim_cluster"], cluster_id, run_id, fresh_within, stale_after
                )
            return got is not None

        return await self._with_conn(f"claiming cluster {cluster_id}", run)

    async def claim_holder(self, cluster_id: str) -> dict[str, Any] | None:
        """Who holds the claim on a cluster: run_id, claimed_at, started_at, finished_at,
        status, hostname, pid and ``alive`` (unfinished, collector connected)."""

        async def run(conn: Connection) -> dict[str, Any] | None:
            row = await conn.fetchrow(self._q["claim_holder"], cluster_id)
            return dict(row) if row is not None else None

        return await self._with_conn("reading a claim", run)

    async def describe_claim(self, cluster_id: str) -> str:
        """Who holds ``cluster_id``, for the ledger row of a target that did not collect it."""
        holder = await self.claim_holder(cluster_id)
        if holder is None:
            return "not collected by this run: another collector holds it"
        who = f"run {holder['run_id']}"
        if holder["hostname"] is not None:
            who += f" ({holder['hostname']}, pid {holder['pid']})"
        if holder["alive"]:
            return f"not collected by this run: {who} is collecting it"
        at = holder["claimed_at"]
        return f"not collected by this run: {who} collected it at {at:%Y-%m-%d %H:%M:%S %Z}"

    # ---- inventory -------------------------------------------------------------------------

    async def store_inventory(
        self, run_id: int | None, inv: ClusterInventory, *, at: datetime | None = None
    ) -> StoreStats:
        """Store one cluster's inventory, change-only, in one transaction.

        ``at`` (timezone-aware) overrides the version time, which is otherwise the database
        clock when the cluster lock is taken. It exists for building histories at controlled
        times (tests, benchmarks) and must be later than every version stored for the cluster.
        """
        check_store_time(at)

        async def run(conn: Connection) -> StoreStats:
            try:
                return await store_cluster(conn, self._q, run_id, inv, at=at)
            except asyncpg.CheckViolationError as exc:
                raise StoreError(
                    f"cluster {inv.cluster_id}: store time {at} is not later than its stored "
                    "history"
                ) from exc
            except asyncpg.UniqueViolationError as exc:
                raise StoreError(
                    f"cluster {inv.cluster_id}: a version starting at {at} already exists"
                ) from exc

        return await self._with_conn(f"storing cluster {inv.cluster_id}", run)

    async def record_outcomes(self, run_id: int, outcomes: Sequence[TargetOutcome]) -> None:
        """Write the ledger rows of a run, update each touched cluster's last status, and
        remember the cluster each target identified (``inventory.target_cluster``)."""
        rows = [
            (
                run_id,
                o.kubeconfig_path,
                o.context_name,
                o.cluster_id,
                o.server_url,
                o.status,
                o.deduplicated,
                o.error_class,
                o.error_message,
                o.duration_ms,
                o.discovery_mode,
                o.insecure_skip_tls_verify,
                o.node_count,
                o.api_resource_count,
                o.started_at,
                o.finished_at,
            )
            for o in outcomes
        ]

        async def run(conn: Connection) -> None:
            async with conn.transaction():
                if rows:
                    await conn.executemany(self._q["insert_outcome"], rows)
                await conn.execute(self._q["apply_outcomes_to_clusters"], run_id)
                await conn.execute(self._q["remember_target_clusters"], run_id)

        await self._with_conn("recording the run's outcomes", run)

    # ---- clusters come and go ---------------------------------------------------------------

    async def retire_unreached(
        self,
        run_id: int,
        retire_after: timedelta | None,
        filtered_out: Sequence[tuple[str, str]] = (),
    ) -> list[Retirement]:
        """The run-end retirement step: mark the clusters run ``run_id`` reached (and those
        last reached through one of the ``filtered_out`` (kubeconfig path, context) pairs,
        configured but left out of this run), then retire those no run reached for longer than
        ``retire_after`` (None: never), one transaction per cluster. Call it after
        :meth:`record_outcomes` of a run that finished normally."""

        async def run(conn: Connection) -> list[Retirement]:
            await mark_reached(conn, self._q, run_id, filtered_out)
            if retire_after is None:
                return []
            return await retire_unseen(conn, self._q, run_id, retire_after)

        return await self._with_conn("retiring clusters no run reaches", run)

    async def retire_clusters(self, names: Sequence[str]) -> list[Retirement]:
        """Retire clusters by hand, each named by its cluster id or a context name."""

        async def run(conn: Connection) -> list[Retirement]:
            return [await retire_by_hand(conn, self._q, name) for name in names]

        return await self._with_conn("retiring clusters", run, retry=False)

    async def non_demo_clusters(self) -> list[str]:
        """Clusters in this database that no demo created (before any migration: every one)."""

        async def run(conn: Connection) -> list[str]:
            row = await conn.fetchrow(self._q["demo_schema_tables"])
            assert row is not None
            if not row["has_inventory"]:
                return []
            query = "non_demo_clusters" if row["has_demo_clusters"] else "all_clusters"
            return [str(r["cluster_id"]) for r in await conn.fetch(self._q[query])]

        return await self._with_conn("reading the clusters of the database", run)

    async def mark_demo_clusters(self, cluster_ids: Sequence[str]) -> None:
        async def run(conn: Connection) -> None:
            await conn.execute(self._q["mark_demo_clusters"], list(cluster_ids))

        await self._with_conn("recording the demo's clusters", run)

    async def database_status(self) -> dict[str, Any]:
        """Server version, database name and size, address (None on a unix socket)."""

        async def run(conn: Connection) -> dict[str, Any]:
            row = await conn.fetchrow(self._q["database_status"])
            assert row is not None
            return dict(row)

        return await self._with_conn("reading the database's status", run)

    async def cluster_registry(self) -> list[dict[str, Any]]:
        """Every cluster ever seen, retired ones included (``inventory.cluster_registry``)."""

        async def run(conn: Connection) -> list[dict[str, Any]]:
            return await registry(conn, self._q)

        return await self._with_conn("reading inventory.cluster_registry", run)

    # ---- ledger retention --------------------------------------------------------------------

    async def prune_ledger(
        self, older_than: timedelta, *, batch: int = 1000, max_batches: int = 200
    ) -> LedgerPruning:
        """Delete ledger rows (``cluster_collection``, then ``collection_run``) of runs that
        started longer than ``older_than`` ago, ``batch`` rows per statement, each statement
        its own transaction. What the rest of the schema refers to is kept (see
        ``sql/queries/retention.sql``); history is never touched.

        At most ``max_batches`` statements of each kind run per call: a large backlog (the
        setting lowered, or first enabled on a years-old ledger) is worked off over a few runs
        instead of delaying one.
        """
        if batch < 1 or max_batches < 1:
            raise ValueError("batch and max_batches must be positive")

        async def delete(query: str) -> int:
            async def run(conn: Connection) -> int:
                status = await conn.execute(self._q[query], older_than, batch)
                return int(status.rsplit(" ", 1)[-1])

            done = 0
            for _ in range(max_batches):
                deleted = await self._with_conn("pruning the run ledger", run)
                done += deleted
                if deleted < batch:
                    break
            return done

        rows = await delete("prune_ledger_rows")
        runs = await delete("prune_ledger_runs")
        return LedgerPruning(rows=rows, runs=runs)

    # ---- reading ---------------------------------------------------------------------------

    def reports(self) -> ReportReader:
        """The report queries (``sql/queries/report.sql``), run on this store's pool."""
        from collector.store.reports import ReportReader  # noqa: PLC0415

        return ReportReader(self._q, self._with_conn)

    async def close(self) -> None:
        for run_id in list(self._run_locks):
            await self._release_run(run_id)
        await self._pool.close()


DEMO_DATABASE = "kubeinv_demo"


async def open_demo_store(data_dir: Path) -> Store:
    """The demo's scratch database ``kubeinv_demo`` in the embedded server of ``data_dir``,
    dropped and created anew: the demo never touches the inventory database."""
    embedded = EmbeddedServer(data_dir)
    await asyncio.to_thread(embedded.ensure_running, create_database=False)
    admin_dsn = embedded.dsn("postgres")
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=30)
    except _OPEN_ERRORS as exc:
        raise _fail(f"connecting to the embedded PostgreSQL at {admin_dsn}", exc) from exc
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    except asyncpg.PostgresError as exc:
        raise _fail(f"creating the demo database {DEMO_DATABASE}", exc) from exc
    finally:
        await conn.close()
    store = await open_store(embedded.dsn(DEMO_DATABASE))
    store.embedded = embedded
    return store


async def open_store(
    dsn: str | None,
    *,
    data_dir: Path | None = None,
    min_size: int = 1,
    max_size: int = 8,
    connect_timeout: float = 10.0,
) -> Store:
    """Connect to ``dsn``; with ``dsn`` None, start (or reuse) the embedded PostgreSQL of
    ``data_dir`` (``Settings.data_dir``)."""
    embedded: EmbeddedServer | None = None
    if dsn is None:
        if data_dir is None:
            raise StoreError("no database URL and no data directory for the embedded PostgreSQL")
        embedded = EmbeddedServer(data_dir)
        await asyncio.to_thread(embedded.ensure_running)
        dsn = embedded.dsn()

    async def create_pool() -> asyncpg.Pool:
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=connect_timeout,
            init=_init_connection,
            command_timeout=None,
        )

    try:
        try:
            pool = await create_pool()
        except asyncpg.InvalidCatalogNameError:
            if embedded is None:
                raise
            # The server runs but has no inventory database yet: the demo started it.
            await asyncio.to_thread(embedded.create_database)
            pool = await create_pool()
    except _OPEN_ERRORS as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = DatabaseRefusedError if isinstance(exc, _REFUSALS) else StoreError
        raise kind(f"cannot connect to PostgreSQL at {redact_dsn(dsn)}: {detail}") from exc
    return Store(pool, load_queries(), dsn=dsn, embedded=embedded, connect_timeout=connect_timeout)
