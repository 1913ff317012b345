"""Prometheus metrics of the daemon, and the aiohttp server for ``/metrics`` and ``/healthz``.

Labels never carry credentials: only context names, kubeconfig paths, cluster IDs and statuses.
The registry is per process object (not prometheus-client's global one) so tests can build many.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import msgspec
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from collector.kube.exec_plugin import RUN_COUNTS
from collector.logging_setup import get_logger
from collector.records import TargetOutcome

log = get_logger("metrics")

_TARGET = ("kubeconfig", "context")
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _ExecPluginRuns(Collector):
    """``kubeinv_exec_plugin_runs_total{result}``: exec credential plugin runs of the process
    (``ok``, ``failed``); a credential served from the cache is no run."""

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "kubeinv_exec_plugin_runs",
            "Exec credential plugin runs, by result (ok, failed).",
            labels=["result"],
        )
        for result, count in sorted(RUN_COUNTS.items()):
            family.add_metric([result], count)
        yield family


@dataclass
class Health:
    """What ``/healthz`` answers."""

    started_at: float = field(default_factory=time.time)
    stopping: bool = False
    last_run_at: float | None = None
    last_run_status: str | None = None
    runs: int = 0
    # Set while `kubeinv run` waits for the database at start-up: why it cannot be used yet.
    waiting_for_database: str | None = None

    @property
    def status(self) -> str:
        if self.stopping:
            return "stopping"
        if self.waiting_for_database is not None:
            return "waiting-for-database"
        return "ok"


class _ReadCount:
    """A count read from each cluster (nodes, API resources): the gauge of a cluster's last
    collection, ``kubeinv_cluster_<what>``, and the sum over all runs,
    ``kubeinv_<what>_collected_total``."""

    def __init__(self, r: CollectorRegistry, what: str, text: str) -> None:
        self.last = Gauge(
            f"kubeinv_cluster_{what}",
            f"{text} read in the last collection of a cluster.",
            ["cluster_id", "context"],
            registry=r,
        )
        self.total = Counter(
            f"kubeinv_{what}_collected", f"{text} read, summed over all runs.", registry=r
        )

    def observe(self, cluster_id: str, context: str, count: int | None) -> None:
        if count is not None:
            self.last.labels(cluster_id, context).set(count)
            self.total.inc(count)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.health = Health()
        counter = functools.partial(Counter, registry=r)
        gauge = functools.partial(Gauge, registry=r)
        durations = functools.partial(Histogram, buckets=_DURATION_BUCKETS, registry=r)
        self.runs = counter(
            "kubeinv_runs",
            "Collection runs by outcome (ok, partial, failed, error, skipped).",
            ["status"],
        )
        self.run_duration = durations(
            "kubeinv_run_duration_seconds", "Wall time of a collection run."
        )
        self.last_run = gauge(
            "kubeinv_last_run_timestamp_seconds", "Unix time the last run finished."
        )
        self.target_outcomes = counter(
            "kubeinv_target_collections",
            "Per-target (kubeconfig, context) outcomes.",
            [*_TARGET, "status", "error_class"],
        )
        self.target_duration = gauge(
            "kubeinv_target_last_duration_seconds",
            "Duration of the last collection of a target.",
            _TARGET,
        )
        self.target_duration_hist = durations(
            "kubeinv_target_duration_seconds", "Duration of per-target collections."
        )
        self.target_up = gauge(
            "kubeinv_target_up",
            "1 when the last collection of a target was ok or partial.",
            _TARGET,
        )
        self.last_success = gauge(
            "kubeinv_target_last_success_timestamp_seconds",
            "Unix time of the last ok or partial collection of a target.",
            _TARGET,
        )
        self.cluster_last_success = gauge(
            "kubeinv_cluster_last_success_timestamp_seconds",
            "Unix time of the last collection that read the cluster.",
            ["cluster_id"],
        )
        self.nodes = _ReadCount(r, "nodes", "Nodes")
        self.api_resources = _ReadCount(r, "api_resources", "API resources (every served version)")
        r.register(_ExecPluginRuns())

        # What a daemon left alone for months must keep flat (README, "Running it for real"):
        # descriptors and memory (process_open_fds, process_resident_memory_bytes, Linux only),
        # asyncio tasks and threads.
        ProcessCollector(registry=r)
        self.tasks = gauge(
            "kubeinv_asyncio_tasks",
            "asyncio tasks of the daemon's event loop (this scrape's own included).",
        )
        self.tasks.set_function(_count_tasks)
        self.threads = gauge("kubeinv_threads", "Threads of the process.")
        self.threads.set_function(lambda: float(threading.active_count()))

    def observe_outcomes(self, outcomes: Iterable[TargetOutcome]) -> None:
        now = time.time()
        for o in outcomes:
            labels = (o.kubeconfig_path, o.context_name)
            self.target_outcomes.labels(*labels, o.status, o.error_class or "").inc()
            seconds = o.duration_ms / 1000
            self.target_duration.labels(*labels).set(seconds)
            self.target_duration_hist.observe(seconds)
            self.target_up.labels(*labels).set(0 if o.status == "failed" else 1)
            if o.status != "failed":
                self.last_success.labels(*labels).set(now)
                if o.cluster_id and not o.deduplicated:
                    self.cluster_last_success.labels(o.cluster_id).set(now)
            if o.cluster_id and not o.deduplicated:
                self.nodes.observe(o.cluster_id, o.context_name, o.node_count)
                self.api_resources.observe(o.cluster_id, o.context_name, o.api_resource_count)

    def observe_run(self, status: str, seconds: float) -> None:
        self.runs.labels(status).inc()
        if status != "skipped":
            self.run_duration.observe(seconds)
            self.last_run.set(time.time())
            self.health.last_run_at = time.time()
            self.health.last_run_status = status
            self.health.runs += 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _count_tasks() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # rendered outside the event loop
        return float("nan")


class MetricsServer:
    """``GET /metrics`` (Prometheus text format) and ``GET /healthz``, served by aiohttp."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[_answer])
        app.router.add_get("/metrics", self._metrics)
        for path in ("/healthz", "/health", "/livez", "/readyz"):
            app.router.add_get(path, self._health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0 and runner.addresses:
            self.port = int(runner.addresses[0][1])  # the port the system chose
        log.info("serving metrics", extra={"url": f"http://{self.host}:{self.port}/metrics"})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _health(self, request: web.Request) -> web.Response:
        # /healthz, /health, /readyz: ready to collect (503 while stopping or waiting for the
        # database). /livez: the process is alive and serving (503 stopping).
        h = self.metrics.health
        doc = {
            "status": h.status,
            "ready": h.status == "ok",
            "started_at": h.started_at,
            "runs": h.runs,
            "last_run_at": h.last_run_at,
            "last_run_status": h.last_run_status,
            "database_error": h.waiting_for_database,
        }
        failing = h.stopping if request.path == "/livez" else h.status != "ok"
        return web.Response(
            body=msgspec.json.encode(doc) + b"\n",
            status=503 if failing else 200,
            content_type="application/json",
        )


@web.middleware
async def _answer(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPNotFound:
        response = web.Response(status=404, text="try /metrics or /healthz\n")
    except web.HTTPMethodNotAllowed:
        response = web.Response(status=405, text="GET only\n")
    response.force_close()  # one request per connection (Connection: close), as scrapers expect
    return response
