"""Orchestration of the commands: settings -> targets -> gather -> store -> ledger -> exit code.

Data flows one way. ``collect_once`` is the unit the daemon schedules; the ``*_command``
functions are what ``collector.cli`` calls, and they return the process exit code (README,
"Failure handling"): 0 every target ok, 1 some target partial or failed, 2 usage/configuration
error or no target, 3 the database could not be used.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from collector.errors import (
    EXIT_DATABASE,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    ConfigError,
    DatabaseRefusedError,
    KubeconfigError,
    NoTargetsError,
    StoreError,
)
from collector.logging_setup import (
    cluster_scope,
    get_logger,
    replace_secrets,
    set_log_context,
)
from collector.records import ClusterInventory, CollectionResult, TargetOutcome
from collector.settings import Settings

if TYPE_CHECKING:
    from collector.gathering import GatherOptions
    from collector.metrics import Health, Metrics
    from collector.store import Store
    from collector.store.retiring import Retirement
    from collector.targets import Target

log = get_logger("running")


# --- targets --------------------------------------------------------------------------------


@dataclass
class LoadedTargets:
    targets: list[Target]
    # Kubeconfig files that could not be read: each becomes a failed ledger row of its own.
    file_outcomes: list[TargetOutcome]
    # (kubeconfig path, context) of the contexts --context / --exclude-context leave out: they
    # are still configured, so the clusters they reached are not retired by this run.
    filtered_out: list[tuple[str, str]] = field(default_factory=list)


def load_run_targets(settings: Settings, *, announce: bool = True) -> LoadedTargets:
    """The targets of the settings; broken files are reported, never fatal for the others."""
    from collector import targets as targets_mod  # noqa: PLC0415 (pyyaml: only when needed)

    environ: dict[str, str] = {}
    if settings.kubeconfig_env:
        environ["KUBECONFIG"] = settings.kubeconfig_env
    loaded = targets_mod.load_targets(
        settings.kubeconfigs,
        include=settings.contexts,
        exclude=settings.exclude_contexts,
        environ=environ,
        home=settings.home,
    )
    targets = list(loaded.targets)
    if settings.in_cluster:
        own = targets_mod.in_cluster_target(
            settings.in_cluster_env, sa_dir=settings.service_account_dir
        )
        if own is None:
            raise ConfigError(
                "--in-cluster: not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST and "
                "KUBERNETES_SERVICE_PORT unset, or no service account token in "
                f"{settings.service_account_dir})"
            )
        targets.append(own)
    now = datetime.now(UTC)
    file_outcomes = [_file_outcome(err, now) for err in loaded.errors]
    for outcome in file_outcomes if announce else ():
        log.error(outcome.error_message, extra={"kubeconfig": outcome.kubeconfig_path})
    replace_secrets(secret for target in targets for secret in target.secrets)
    for target in targets:
        scope = {"context": target.context_name, "kubeconfig": target.kubeconfig_path}
        if target.problem and announce:
            log.warning("broken context: %s", target.problem, extra=scope)
        elif target.insecure_skip_tls_verify and announce:
            log.warning(
                "insecure-skip-tls-verify is set: the API server's certificate is not verified",
                extra=scope,
            )
    if not targets:
        where = (
            ", ".join(settings.kubeconfigs)
            if settings.kubeconfigs
            else "KUBECONFIG"
            if settings.kubeconfig_env
            else "~/.kube/config"
        )
        filters = [f"--context {g}" for g in settings.contexts]
        filters += [f"--exclude-context {g}" for g in settings.exclude_contexts]
        matching = f" matches {' '.join(filters)}" if filters else " found"
        # Only unusable files (missing, malformed, without contexts): nothing can be collected,
        # which is a configuration error (exit 2), not a run with failed targets.
        unusable = "".join(f"; {o.error_message}" for o in file_outcomes)
        raise NoTargetsError(f"no target: no context{matching} in {where}{unusable}")
    filtered_out = [(t.kubeconfig_path, t.context_name) for t in loaded.filtered_out]
    return LoadedTargets(targets, file_outcomes, filtered_out)


def _file_outcome(err: KubeconfigError, now: datetime) -> TargetOutcome:
    return TargetOutcome(
        kubeconfig_path=err.path or "",
        context_name=err.context or "",
        status="failed",
        error_class=err.error_class,
        error_message=err.message,
        started_at=now,
        finished_at=now,
    )


def gather_options(settings: Settings) -> GatherOptions:
    from collector.gathering import GatherOptions  # noqa: PLC0415 (imports kubernetes_asyncio)

    return GatherOptions(settings.collection)


def exit_code_of(outcomes: Sequence[TargetOutcome]) -> int:
    if not outcomes:
        return EXIT_USAGE
    return EXIT_OK if all(o.status == "ok" for o in outcomes) else EXIT_PARTIAL


def run_status_of(outcomes: Sequence[TargetOutcome]) -> str:
    if all(o.status == "ok" for o in outcomes):
        return "ok"
    if any(o.status != "failed" for o in outcomes):
        return "partial"
    return "failed"


# --- one run --------------------------------------------------------------------------------


@dataclass
class RunReport:
    run_id: int | None
    status: str
    outcomes: list[TargetOutcome]
    result: CollectionResult
    not_claimed: list[str] = field(default_factory=list)
    versions_written: int = 0
    retired: list[Retirement] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.outcomes)


Progress = Callable[[Any], None]


@dataclass
class _StoredRun:
    """The database side of one run: its ledger row, its claims and what it wrote."""

    store: Store
    run_id: int
    fresh_within: timedelta
    not_claimed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # cluster_id -> who collects it instead
    versions_written: int = 0

    @classmethod
    async def start(cls, store: Store, fresh_within: timedelta) -> _StoredRun:
        await store.migrate()
        return cls(store, await store.start_run(), fresh_within)

    async def claim(self, cluster_id: str) -> bool:
        got = await self.store.claim_cluster(
            self.run_id, cluster_id, fresh_within=self.fresh_within
        )
        if not got:
            self.not_claimed.append(cluster_id)
            self.refused[cluster_id] = await self.store.describe_claim(cluster_id)
            log.info("cluster %s: %s", cluster_id, self.refused[cluster_id])
        return got

    async def on_inventory(self, inventory: ClusterInventory) -> None:
        with cluster_scope(", ".join(inventory.context_names)):
            stats = await self.store.store_inventory(self.run_id, inventory)
        self.versions_written += int(getattr(stats, "versions_written", 0))

    async def finish(
        self, report: RunReport, settings: Settings, filtered_out: list[tuple[str, str]]
    ) -> None:
        await self.store.record_outcomes(self.run_id, report.outcomes)
        report.retired = await retire_unreached_clusters(
            self.store, self.run_id, settings, filtered_out
        )
        await self.store.finish_run(self.run_id, report.status)

    async def abandon(self, outcomes: list[TargetOutcome]) -> None:
        log.warning("run %d abandoned: clusters not yet stored keep their state", self.run_id)
        with contextlib.suppress(Exception):
            await asyncio.shield(
                asyncio.wait_for(_close_abandoned_run(self.store, self.run_id, outcomes), 5)
            )

    async def fail(self) -> None:
        # Whatever stopped the run (the database, or a bug): the run is finished as failed, which
        # also releases its liveness lock. Without that, a daemon that keeps its store open would
        # keep the run "live", and its claims would keep the daemon's next runs from collecting
        # those clusters.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.store.finish_run(self.run_id, "failed"), 5)


def _run_report(
    loaded: LoadedTargets, result: CollectionResult, run: _StoredRun | None
) -> RunReport:
    if run is None:
        outcomes = [*loaded.file_outcomes, *result.outcomes]
        return RunReport(None, run_status_of(outcomes), outcomes, result)
    outcomes = [*loaded.file_outcomes, *_note_refused(result.outcomes, run.refused)]
    return RunReport(
        run.run_id,
        run_status_of(outcomes),
        outcomes,
        result,
        not_claimed=run.not_claimed,
        versions_written=run.versions_written,
    )


async def collect_once(
    settings: Settings,
    *,
    store: Store | None,
    progress: Progress | None = None,
    metrics: Metrics | None = None,
    fresh_within: timedelta = timedelta(0),
    loaded: LoadedTargets | None = None,
) -> RunReport:
    """One run: gather every target, then store each cluster (one transaction each) and the
    ledger. With ``store`` None (dry run) nothing is written."""
    if loaded is None:
        loaded = load_run_targets(settings)  # before the heavy imports: "no target" is instant
    from collector.gathering import gather  # noqa: PLC0415 (imports kubernetes_asyncio)

    run = await _StoredRun.start(store, fresh_within) if store is not None else None
    finished: dict[tuple[str, str], TargetOutcome] = {}

    def scoped_progress(event: Any) -> None:
        # gather() reports "started" from inside the target's own task: from there on, every
        # line logged by that task (clients, paging, retries) names the target's context.
        kind = getattr(event, "kind", None)
        if kind == "started":
            set_log_context(event.target.context_name, event.target.kubeconfig_path)
        elif kind == "done" and event.outcome is not None:
            finished[(event.target.kubeconfig_path, event.target.context_name)] = event.outcome
        if progress is not None:
            progress(event)

    try:
        result = await gather(
            loaded.targets,
            gather_options(settings),
            scoped_progress,
            claim=run.claim if run is not None else None,
            on_inventory=run.on_inventory if run is not None else None,
        )
        report = _run_report(loaded, result, run)
        if run is not None:
            await run.finish(report, settings, loaded.filtered_out)
        if metrics is not None:
            metrics.observe_outcomes(report.outcomes)
        _log_outcomes(report)
    except asyncio.CancelledError:
        if run is not None:
            await run.abandon(_outcomes_so_far(loaded, finished))
        raise
    except Exception:
        if run is not None:
            await run.fail()
        raise
    if store is not None:
        # After the run is finished and recorded: nothing here can change its outcome.
        await prune_ledger(store, settings)
    return report


async def prune_ledger(store: Store, settings: Settings) -> None:
    """The run-end ledger step: delete ledger rows older than ``retention.ledger``.

    The run is recorded by then; a failure here is logged and does not change its outcome.
    """
    older_than = settings.retention.ledger.delta
    if older_than is None:
        return
    try:
        pruned = await store.prune_ledger(older_than)
    except StoreError as exc:
        log.warning("the run ledger was not pruned: %s (the next run tries again)", exc.message)
        return
    if pruned.rows or pruned.runs:
        log.info(
            "run ledger: deleted %d target rows and %d runs older than %s (retention.ledger)",
            pruned.rows,
            pruned.runs,
            settings.retention.ledger,
            extra={"deleted_rows": pruned.rows, "deleted_runs": pruned.runs},
        )


async def retire_unreached_clusters(
    store: Store, run_id: int, settings: Settings, filtered_out: list[tuple[str, str]]
) -> list[Retirement]:
    """The run-end retirement step (after the run's ledger rows are written): the clusters this
    run reached are marked so, with those last reached through a context the run's filters left
    out (still configured), and those that no run reached for longer than
    ``lifecycle.retire_after`` are retired, one transaction per cluster."""
    retire_after = settings.lifecycle.retire_after.delta
    retired = await store.retire_unreached(run_id, retire_after, filtered_out)
    for r in retired:
        since = (
            f"since {r.last_reached_at:%Y-%m-%d %H:%M:%S %Z}"
            if r.last_reached_at
            else "in any run since it was collected"
        )
        log.warning(
            "cluster %s retired: no target has reached it %s (lifecycle.retire_after = %s); "
            "its history is kept, and it comes back when its inventory is collected again",
            r.cluster_id,
            since,
            settings.lifecycle.retire_after,
            extra={"cluster_id": r.cluster_id},
        )
    return retired


def _note_refused(
    outcomes: Sequence[TargetOutcome], refused: dict[str, str]
) -> list[TargetOutcome]:
    """Targets of clusters another collector claimed stay ``ok`` and ``deduplicated`` (their
    credentials work); their ledger rows say which run collects the cluster instead."""
    return [
        msgspec.structs.replace(o, error_message=refused[o.cluster_id])
        if o.deduplicated and o.cluster_id in refused and o.error_message is None
        else o
        for o in outcomes
    ]


def _outcomes_so_far(
    loaded: LoadedTargets, finished: dict[tuple[str, str], TargetOutcome]
) -> list[TargetOutcome]:
    """A run stopped in the middle: what finished, and every other target ``Abandoned``."""
    return [
        *loaded.file_outcomes,
        *(
            finished.get((t.kubeconfig_path, t.context_name)) or _abandoned(t)
            for t in loaded.targets
        ),
    ]


def _abandoned(target: Target) -> TargetOutcome:
    now = datetime.now(UTC)
    return TargetOutcome(
        kubeconfig_path=target.kubeconfig_path,
        context_name=target.context_name,
        server_url=target.server_url,
        status="failed",
        error_class="Abandoned",
        error_message="the run was stopped before this target finished; its stored state is kept",
        started_at=now,
        finished_at=now,
    )


async def _close_abandoned_run(store: Store, run_id: int, outcomes: list[TargetOutcome]) -> None:
    await store.record_outcomes(run_id, outcomes)
    await store.finish_run(run_id, "abandoned")


def _log_outcomes(report: RunReport) -> None:
    for o in report.outcomes:
        extra = {
            "context": o.context_name or "-",
            "kubeconfig": o.kubeconfig_path,
            "status": o.status,
            "duration_ms": o.duration_ms,
        }
        if o.status == "ok":
            log.debug("collected", extra={**extra, "cluster_id": o.cluster_id})
        else:
            log.warning(
                "%s: %s: %s",
                o.status,
                o.error_class,
                o.error_message,
                extra={**extra, "cluster_id": o.cluster_id},
            )
    counts = {
        s: sum(1 for o in report.outcomes if o.status == s) for s in ("ok", "partial", "failed")
    }
    log.info(
        "run %s finished: %s",
        report.run_id if report.run_id is not None else "(dry run)",
        report.status,
        extra={
            **counts,
            "clusters": len(
                {o.cluster_id for o in report.outcomes if o.cluster_id and o.status != "failed"}
            ),
            "versions_written": report.versions_written,
        },
    )


# --- database -------------------------------------------------------------------------------


async def open_settings_store(settings: Settings) -> Store:
    from collector.store import open_store  # noqa: PLC0415 (imports asyncpg)

    return await open_store(settings.database_url, data_dir=settings.embedded_data_dir)


# --- commands -------------------------------------------------------------------------------


async def collect_command(settings: Settings, *, dry_run: bool, output: str | None) -> int:
    from collector import progress_ui  # noqa: PLC0415

    ui = progress_ui.ProgressUI.for_terminal(enabled=output != "json")
    loaded = load_run_targets(settings)  # no target: exit 2 before any database work
    store: Store | None = None
    try:
        if not dry_run:
            store = await open_settings_store(settings)
        with ui:
            try:
                report = await collect_once(
                    settings, store=store, progress=ui.on_event, loaded=loaded
                )
            except StoreError as exc:
                print(f"kubeinv: error: {exc.message}", file=sys.stderr)
                return EXIT_DATABASE
    except StoreError as exc:
        print(f"kubeinv: error: {exc.message}", file=sys.stderr)
        return EXIT_DATABASE
    finally:
        if store is not None:
            with contextlib.suppress(Exception):
                await store.close()
    if output == "json":
        doc: Any
        if dry_run:
            doc = {"status": report.status, **msgspec.to_builtins(report.result)}
            doc["outcomes"] = msgspec.to_builtins(report.outcomes)
        else:
            doc = {
                "run_id": report.run_id,
                "status": report.status,
                "outcomes": msgspec.to_builtins(report.outcomes),
            }
        sys.stdout.buffer.write(msgspec.json.encode(doc) + b"\n")
        sys.stdout.flush()
    else:
        progress_ui.print_summary(report.outcomes, report.result, run_id=report.run_id)
    return report.exit_code


# Start-up with the database gone (compose starting both together, a failover): the daemon
# waits for it, first retrying after DATABASE_RETRY_FIRST seconds, doubling up to
# DATABASE_RETRY_MAX, each delay with up to 10% of random jitter.
DATABASE_RETRY_FIRST = 1.0
DATABASE_RETRY_MAX = 30.0


def database_retry_delays(
    first: float = DATABASE_RETRY_FIRST, most: float = DATABASE_RETRY_MAX
) -> Iterator[float]:
    """The delays between two attempts to reach the database at start-up: 1, 2, 4 ... 30, 30 s."""
    delay = first
    while True:
        yield min(delay, most) * (1 + random.uniform(0, 0.1))
        delay = min(delay * 2, most)


async def wait_for_database(
    settings: Settings, health: Health, stop: asyncio.Event
) -> Store | None:
    """Open the store and bring its schema up to date, retrying with backoff until it works or
    ``stop`` is set (then None).

    While waiting, ``/healthz`` answers 503 with the reason; every failed attempt is logged.
    A database that answers but refuses kubeinv (wrong password or user, no such database, a
    schema it cannot migrate) raises ``DatabaseRefusedError`` at once: no retry fixes that.
    """
    delays = database_retry_delays()
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            store = await _open_migrated_store(settings)
        except DatabaseRefusedError:
            raise
        except StoreError as exc:
            delay = next(delays)
            health.waiting_for_database = exc.message
            log.error(
                "the database cannot be used yet: %s; retrying in %.0fs (attempt %d)",
                exc.message,
                delay,
                attempt,
                extra={"attempt": attempt, "retry_in_s": round(delay, 1)},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        if attempt > 1:
            log.info("the database is reachable now (attempt %d)", attempt)
        health.waiting_for_database = None
        return store
    return None


async def _open_migrated_store(settings: Settings) -> Store:
    store = await open_settings_store(settings)
    try:
        await store.migrate()
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(store.close(), 5)
        raise
    return store


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def daemon_command(settings: Settings) -> int:
    from collector.metrics import Metrics, MetricsServer  # noqa: PLC0415
    from collector.scheduling import Daemon  # noqa: PLC0415

    # Fail fast on what no tick can fix: no target, broken settings, a port in use. A database
    # that cannot be reached is waited for (see wait_for_database); later outages fail a tick.
    load_run_targets(settings)
    metrics = Metrics()
    server: MetricsServer | None = None
    if settings.metrics.port is not None:
        server = MetricsServer(metrics, settings.metrics.host, settings.metrics.port)
        try:
            await server.start()
        except OSError as exc:
            raise ConfigError(
                f"metrics: cannot listen on {settings.metrics.host}:{settings.metrics.port}: "
                f"{exc.strerror}"
            ) from None
    try:
        stop = asyncio.Event()
        with _stop_on_signals(stop):
            first_store = await wait_for_database(settings, metrics.health, stop)
        if first_store is None:
            log.info("stopped before the database could be reached")
            return EXIT_OK
        return await _serve(settings, metrics, first_store, Daemon)
    finally:
        if server is not None:
            await server.stop()


async def _serve(settings: Settings, metrics: Metrics, first_store: Store, daemon_cls: Any) -> int:
    interval = settings.schedule.interval_delta
    # Two daemons on one database: a cluster claimed by any run less than a third of an
    # interval ago is not collected again (a third: our own previous run may have ended late).
    fresh_within = interval / 3 if interval and not settings.schedule.cron else timedelta(0)
    holder: dict[str, Store | None] = {"store": first_store}

    async def job() -> str:
        started = time.monotonic()
        store = holder["store"]
        try:
            if store is None:
                store = holder["store"] = await open_settings_store(settings)
            report = await collect_once(
                settings, store=store, metrics=metrics, fresh_within=fresh_within
            )
        except StoreError as exc:
            log.error(
                "run failed: the database cannot be used: %s (the next tick reconnects)",
                exc.message,
            )
            # Drop the pool: the next tick opens a fresh one.
            if holder["store"] is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(holder["store"].close(), 5)
                holder["store"] = None
            return "error"
        log.debug("tick took %.2fs", time.monotonic() - started)
        return report.status

    daemon = daemon_cls(settings.schedule, job, metrics=metrics)
    try:
        return int(await daemon.serve())
    finally:
        if holder["store"] is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(holder["store"].close(), 5)


def contexts_command(settings: Settings, *, check: bool, output: str | None) -> int:
    from collector import progress_ui  # noqa: PLC0415

    loaded = load_run_targets(settings, announce=False)
    checked: list[TargetOutcome] | None = None
    if check:
        from collector.gathering import check_targets  # noqa: PLC0415

        checked = asyncio.run(check_targets(loaded.targets, gather_options(settings)))
    rows = progress_ui.context_rows(loaded.targets, loaded.file_outcomes, checked)
    if output == "json":
        sys.stdout.buffer.write(msgspec.json.encode(rows) + b"\n")
        sys.stdout.flush()
    else:
        progress_ui.print_contexts(rows, checked=check)
    failed = bool(loaded.file_outcomes) or any(t.problem for t in loaded.targets)
    if checked is not None:
        failed = failed or any(o.status != "ok" for o in checked)
    return EXIT_PARTIAL if failed else EXIT_OK


async def migrate_command(settings: Settings) -> int:
    store = await open_settings_store(settings)
    try:
        applied = await store.migrate()
    finally:
        await store.close()
    print(f"applied {', '.join(applied)}" if applied else "the schema is up to date")
    return EXIT_OK


async def db_url_command(settings: Settings) -> int:
    if settings.database_url:
        # The configured DSN, as given: it is for psql, which needs it whole.
        print(settings.database_url)
        return EXIT_OK
    store = await open_settings_store(settings)
    try:
        print(store.dsn)
    finally:
        await store.close()
    return EXIT_OK
