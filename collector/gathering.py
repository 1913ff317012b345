"""Fan-out over targets: one task per target, bounded concurrency, a deadline per cluster.

Every target (kubeconfig file, context) is authenticated and identified (``/version`` and the
kube-system UID). Of the contexts that reach one cluster, the first in target order collects
its inventory (cluster services, API discovery, nodes, concurrently); the others get ``ok`` with
``deduplicated`` when their credentials work, ``failed`` when they do not. The first in order,
not the first to answer: the collecting context decides the stored server URL, the proxy URLs
of the cluster's services and what its credentials may read, so a race would make them change
from run to run (and write history for it). A target that identified a cluster therefore waits,
at most ``request_timeout``, for the earlier targets that may reach the same cluster (same CA,
port and path, or the same URL without a CA) to identify theirs. Beyond that wait, nothing a
target does can delay another past its own deadline or raise out of :func:`gather`: every
failure becomes that target's outcome, with a redacted message.

Hooks for the caller (the CLI and the store):

``claim(cluster_id) -> bool``
    Awaited once per cluster, by the context that would collect it, after identification and
    before any inventory request. ``False`` means "someone else collects this cluster in this
    interval" (e.g. the store's per-cluster advisory lock held by another collector): the target
    is then ``ok`` and ``deduplicated``, and nothing else is read. An exception raised by the
    hook aborts the whole gather (the store is unusable) and propagates to the caller.
``on_inventory(inventory)``
    Awaited with each cluster's inventory as soon as it is collected, inside the concurrency
    slot, so that storing applies back-pressure and memory stays bounded by concurrency. When
    given, inventories are not kept in the returned result. ``context_names`` then lists the
    contexts that had reached the cluster by that moment; the outcomes (``cluster_id`` of every
    target that is not failed) give the complete list. Exceptions propagate like ``claim``'s.
``progress(event)``
    Called (synchronously; keep it cheap) with a :class:`ProgressEvent` when a target starts,
    is identified, starts collecting and is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from collector.errors import (
    BrokenContextError,
    ClusterError,
    ClusterTimeoutError,
    redact,
)
from collector.kube.clients import (
    SHARED_EXEC_CREDENTIALS,
    load_library,
    needs_library,
    open_client,
)
from collector.kube.discovering import Discovery, discover_api_resources
from collector.kube.exec_plugin import ExecCredentialCache
from collector.kube.fetching import Identity, fetch_cluster_services, identify
from collector.kube.listing import NodeListing, list_nodes_paged
from collector.kube.policy import Deadline, RequestPolicy
from collector.kube.requesting import KubeClient
from collector.logging_setup import get_logger
from collector.normalize import detect_provider
from collector.records import (
    ApiResourceRecord,
    ClusterInventory,
    ClusterServiceRecord,
    CollectionResult,
    NodeRecord,
    TargetOutcome,
)

if TYPE_CHECKING:
    from collector.settings import CollectionSettings
    from collector.targets import Target

logger = get_logger(__name__)

T = TypeVar("T")


def _collection_defaults() -> CollectionSettings:
    from collector.settings import CollectionSettings  # noqa: PLC0415 (pydantic, 0.1 s)

    return CollectionSettings()


@dataclass(frozen=True)
class GatherOptions:
    """What a run needs: the user's collection settings as they are (concurrency, timeouts,
    page size, retries: declared with their defaults in collector.settings), and the knobs that
    are not settings."""

    collection: CollectionSettings = field(default_factory=_collection_defaults)
    max_list_restarts: int = 3  # node list restarts after 410 Gone
    # Keep-alive connections per cluster: each costs a TLS handshake (CPU on both ends).
    connections_per_cluster: int = 1

    def request_policy(self) -> RequestPolicy:
        return RequestPolicy.of(self.collection)


ProgressKind = Literal["started", "identified", "collecting", "done"]


@dataclass(frozen=True)
class ProgressEvent:
    kind: ProgressKind
    target: Target
    cluster_id: str | None = None
    outcome: TargetOutcome | None = None  # with kind "done"


ProgressCallback = Callable[[ProgressEvent], None]
ClaimHook = Callable[[str], Awaitable[bool]]
InventorySink = Callable[[ClusterInventory], Awaitable[None]]


class _HookError(Exception):
    """Carries an exception raised by a caller's hook out of the per-target error handling."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class _Run:
    options: GatherOptions
    policy: RequestPolicy
    progress: ProgressCallback | None
    claim: ClaimHook | None
    on_inventory: InventorySink | None
    exec_credentials: ExecCredentialCache
    client_options: dict[str, Any]
    targets: Sequence[Target] = ()
    owners: dict[str, Target] = field(default_factory=dict)  # cluster_id -> collecting target
    # Per target position: set once the target knows whether it collects (or failed before).
    decided: list[asyncio.Event] = field(default_factory=list)
    # Positions of the targets that may reach the same cluster, by _reach_key.
    same_reach: dict[tuple[object, ...], list[int]] = field(default_factory=dict)
    contexts: dict[str, list[str]] = field(default_factory=dict)  # cluster_id -> context names
    inventories: list[ClusterInventory] = field(default_factory=list)

    def emit(self, kind: ProgressKind, target: Target, **kw: Any) -> None:
        if self.progress is not None:
            try:
                self.progress(ProgressEvent(kind, target, **kw))
            except Exception:  # a display problem must never break collection
                logger.exception("progress callback failed")


def _now() -> datetime:
    return datetime.now(UTC)


async def gather(
    targets: Sequence[Target],
    options: GatherOptions | None = None,
    progress: ProgressCallback | None = None,
    *,
    claim: ClaimHook | None = None,
    on_inventory: InventorySink | None = None,
    client_options: dict[str, Any] | None = None,
    exec_credentials: ExecCredentialCache | None = None,
) -> CollectionResult:
    """Collect every target; one outcome per target, in the order of ``targets``.

    ``client_options`` go to each :class:`KubeClient` (tests pass ``sleep``/``rng``).
    ``exec_credentials``: the exec credential cache (default: the process's, shared by runs).
    """
    started = _now()
    outcomes, run = await _visit_all(
        targets,
        options,
        progress,
        claim=claim,
        on_inventory=on_inventory,
        client_options=client_options,
        exec_credentials=exec_credentials,
    )
    for inventory in run.inventories:
        inventory.context_names = tuple(run.contexts.get(inventory.cluster_id, ()))
    return CollectionResult(
        started_at=started, finished_at=_now(), outcomes=outcomes, inventories=run.inventories
    )


async def check_targets(
    targets: Sequence[Target],
    options: GatherOptions | None = None,
    progress: ProgressCallback | None = None,
    *,
    client_options: dict[str, Any] | None = None,
) -> list[TargetOutcome]:
    """``kubeinv contexts --check``: authenticate and identify every target, collect nothing."""
    outcomes, _run = await _visit_all(
        targets, options, progress, client_options=client_options, check_only=True
    )
    return outcomes


async def _visit_all(
    targets: Sequence[Target],
    options: GatherOptions | None,
    progress: ProgressCallback | None,
    *,
    claim: ClaimHook | None = None,
    on_inventory: InventorySink | None = None,
    client_options: dict[str, Any] | None = None,
    exec_credentials: ExecCredentialCache | None = None,
    check_only: bool = False,
) -> tuple[list[TargetOutcome], _Run]:
    """Visit every target, at most ``collection.concurrency`` at once; outcomes in target order.
    With ``check_only``, identify every target and claim or collect no cluster."""
    options = options or GatherOptions()
    if needs_library(targets):
        load_library()  # before any deadline starts
    if exec_credentials is None:
        exec_credentials = SHARED_EXEC_CREDENTIALS
    exec_credentials.new_run()  # credentials without an expiry are obtained again every run
    run = _Run(
        options=options,
        policy=options.request_policy(),
        progress=progress,
        claim=claim,
        on_inventory=on_inventory,
        exec_credentials=exec_credentials,
        client_options=client_options or {},
        targets=targets,
        decided=[asyncio.Event() for _ in targets],
    )
    for position, target in enumerate(targets):
        run.same_reach.setdefault(_reach_key(target), []).append(position)
    semaphore = asyncio.Semaphore(max(1, options.collection.concurrency))

    async def bounded(position: int, target: Target) -> TargetOutcome:
        try:
            if target.problem:  # no network, no slot needed
                return _visit_broken(run, target)
            async with semaphore:
                return await _visit(run, position, target, check_only=check_only)
        finally:
            run.decided[position].set()

    try:
        async with asyncio.TaskGroup() as tasks:
            futures = [tasks.create_task(bounded(i, t)) for i, t in enumerate(targets)]
    except BaseExceptionGroup as group:
        hook_errors = group.subgroup(_HookError)
        if hook_errors is not None:
            raise _first_leaf(hook_errors).cause from None
        raise
    return [f.result() for f in futures], run


def _first_leaf(group: BaseExceptionGroup[_HookError]) -> _HookError:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, _HookError)
    return exc


def _outcome(target: Target, started: float, started_at: datetime, **kw: Any) -> TargetOutcome:
    return TargetOutcome(
        kubeconfig_path=target.kubeconfig_path,
        context_name=target.context_name,
        server_url=target.server_url,
        insecure_skip_tls_verify=target.insecure_skip_tls_verify,
        duration_ms=int((time.monotonic() - started) * 1000),
        started_at=started_at,
        finished_at=_now(),
        **kw,
    )


def _failure(target: Target, error: BaseException, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    if isinstance(error, ClusterError):
        error_class, message = error.error_class, error.message
    else:  # a bug of ours: still one target's failure, never the run's
        logger.error("unexpected error collecting %s", target.context_name, exc_info=error)
        error_class, message = "Internal", f"{type(error).__name__}: {error}"
    return {
        "error_class": error_class,
        "error_message": redact(message, (*target.secrets, *secrets)),
    }


def _visit_broken(run: _Run, target: Target) -> TargetOutcome:
    started, started_at = time.monotonic(), _now()
    run.emit("started", target)
    outcome = _outcome(
        target,
        started,
        started_at,
        status="failed",
        **_failure(target, BrokenContextError(target.problem)),
    )
    run.emit("done", target, outcome=outcome)
    return outcome


def _reach_key(target: Target) -> tuple[object, ...]:
    """Targets with equal keys may reach the same cluster under different URLs: the same CA,
    port and path (a public and a private endpoint, a DNS name and an IP). Without a CA
    (insecure, or the system's trust), only the same URL."""
    url = target.server_url or ""
    if target.ca_bytes:
        try:
            parts = urlsplit(url)
            port = parts.port or 443
        except ValueError:
            return ("url", url)
        return ("ca", target.ca_bytes, port, parts.path.rstrip("/"))
    return ("url", url)


async def _wait_for_earlier_targets(run: _Run, position: int, deadline: Deadline) -> None:
    """Wait until the earlier targets that may reach this target's cluster know whether they
    collect it; at most ``request_timeout`` (an earlier one that hangs loses its turn)."""
    earlier = [
        run.decided[i]
        for i in run.same_reach[_reach_key(run.targets[position])]
        if i < position and not run.decided[i].is_set()
    ]
    if not earlier:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(min(run.options.collection.timeout, deadline.remaining())):
            for event in earlier:
                await event.wait()


async def _visit(
    run: _Run, position: int, target: Target, *, check_only: bool = False
) -> TargetOutcome:
    started, started_at = time.monotonic(), _now()
    run.emit("started", target)
    deadline = Deadline.after(run.options.collection.cluster_timeout)
    client: KubeClient | None = None
    try:
        try:
            async with asyncio.timeout(max(0.0, deadline.remaining())):
                client = await open_client(
                    target,
                    policy=run.policy,
                    deadline=deadline,
                    exec_credentials=run.exec_credentials,
                    max_connections=run.options.connections_per_cluster,
                    **run.client_options,
                )
                identity = await identify(
                    client,
                    server_url=target.server_url or client.server_url,
                    ca_bytes=target.ca_bytes,
                )
        except TimeoutError as exc:
            raise ClusterTimeoutError(
                f"{target.server_url}: not identified within the cluster deadline "
                f"({run.options.collection.cluster_timeout:g}s)"
            ) from exc
        except ClusterError:
            raise
        except Exception as exc:
            raise ClusterError(f"{type(exc).__name__}: {exc}") from exc
    except Exception as error:
        outcome = _outcome(
            target,
            started,
            started_at,
            status="failed",
            **_failure(target, error, client.secrets if client else ()),
        )
        if client is not None:
            await client.close()
        run.emit("done", target, outcome=outcome)
        return outcome

    try:
        cluster_id = identity.cluster_id
        run.emit("identified", target, cluster_id=cluster_id)
        run.contexts.setdefault(cluster_id, []).append(target.context_name)
        if not check_only:
            await _wait_for_earlier_targets(run, position, deadline)
        first = cluster_id not in run.owners
        if first:
            run.owners[cluster_id] = target
        run.decided[position].set()
        collect = first and not check_only
        if collect and run.claim is not None:
            try:
                collect = await run.claim(cluster_id)
            except Exception as exc:
                raise _HookError(exc) from exc
        if not collect:
            outcome = _outcome(
                target,
                started,
                started_at,
                status="ok",
                cluster_id=cluster_id,
                deduplicated=not check_only,
            )
            run.emit("done", target, cluster_id=cluster_id, outcome=outcome)
            return outcome

        run.emit("collecting", target, cluster_id=cluster_id)
        inventory, outcome_fields = await _collect(run, target, client, identity, deadline)
        outcome = _outcome(target, started, started_at, cluster_id=cluster_id, **outcome_fields)
        if run.on_inventory is not None:
            try:
                await run.on_inventory(inventory)
            except Exception as exc:
                raise _HookError(exc) from exc
        else:
            run.inventories.append(inventory)
        run.emit("done", target, cluster_id=cluster_id, outcome=outcome)
        return outcome
    finally:
        await client.close()


_PARTS = ("services", "api-resources", "nodes")


async def _collect(
    run: _Run, target: Target, client: KubeClient, identity: Identity, deadline: Deadline
) -> tuple[ClusterInventory, dict[str, Any]]:
    """Services, discovery and nodes concurrently; whatever is read by the deadline is kept."""
    server_url = target.server_url or client.server_url
    tasks: dict[str, asyncio.Task[Any]] = {
        "services": asyncio.create_task(fetch_cluster_services(client, server_url=server_url)),
        "api-resources": asyncio.create_task(discover_api_resources(client)),
        "nodes": asyncio.create_task(
            list_nodes_paged(
                client,
                page_size=run.options.collection.page_size,
                max_restarts=run.options.max_list_restarts,
            )
        ),
    }
    try:
        _done, pending = await asyncio.wait(tasks.values(), timeout=max(0.0, deadline.remaining()))
    finally:
        for task in tasks.values():
            task.cancel()
    if pending:
        await asyncio.wait(pending)

    errors: list[tuple[str, BaseException]] = []

    def part(name: str) -> Any:
        task = tasks[name]
        if task.cancelled():
            errors.append(
                (
                    name,
                    ClusterTimeoutError(
                        f"{name}: not read within the cluster deadline "
                        f"({run.options.collection.cluster_timeout:g}s)"
                    ),
                )
            )
            return None
        exc = task.exception()
        if exc is not None:
            errors.append((name, exc))
            return None
        return task.result()

    services: list[ClusterServiceRecord] | None = part("services")
    discovery: Discovery | None = part("api-resources")
    listing: NodeListing | None = part("nodes")

    nodes: tuple[NodeRecord, ...] | None = None
    if listing is not None:
        nodes = tuple(listing.nodes)
        for problem in listing.problems[:20]:
            logger.warning("%s: node list: %s", target.context_name, problem)
    api_resources: tuple[ApiResourceRecord, ...] | None = None
    if discovery is not None:
        api_resources = tuple(discovery.resources)
        errors.extend(("api-resources", e) for e in discovery.errors)

    inventory = ClusterInventory(
        cluster_id=identity.cluster_id,
        cluster_id_source=identity.source,
        server_url=server_url,
        context_names=tuple(run.contexts.get(identity.cluster_id, ())),
        provider=detect_provider(identity.version, nodes),
        version=identity.version,
        services=tuple(services) if services is not None else None,
        nodes=nodes,
        api_resources=api_resources,
        discovery_mode=discovery.mode if discovery is not None else None,
        failed_groups=tuple(discovery.failed_groups) if discovery is not None else (),
        collected_at=_now(),
    )
    fields: dict[str, Any] = {
        "status": "partial" if errors else "ok",
        "discovery_mode": inventory.discovery_mode,
        "node_count": len(nodes) if nodes is not None else None,
        "api_resource_count": len(api_resources) if api_resources is not None else None,
    }
    if errors:
        first = errors[0][1]
        fields["error_class"] = _failure(target, first)["error_class"]
        message = "; ".join(
            f"{name}: {e.message if isinstance(e, ClusterError) else e}" for name, e in errors
        )
        fields["error_message"] = redact(message, (*target.secrets, *client.secrets))
    return inventory, fields
