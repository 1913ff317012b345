"""The daemon's clock: APScheduler 3.x on the asyncio loop, one run at a time, clean shutdown.

- The job runs on an interval (``15m``) or a crontab expression, with jitter, and once at start.
- ``max_instances=1`` and ``coalesce=True``: a tick that comes while a run is still in flight is
  skipped (logged and counted), never stacked; ticks missed while the loop was busy collapse
  into one.
- SIGTERM or SIGINT stops new ticks at once. The run in flight gets ``shutdown_grace`` seconds
  to finish; after that it is cancelled. Each cluster is stored in one transaction, so a
  cancelled run leaves every cluster with either its complete old or complete new state.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from collector.logging_setup import get_logger
from collector.metrics import Metrics
from collector.settings import ScheduleSettings

log = get_logger("scheduling")

RunJob = Callable[[], Coroutine[Any, Any, str]]
"""One collection run; returns the run status (ok, partial, failed) or raises."""

JOB_ID = "collect"


def build_trigger(schedule: ScheduleSettings) -> Any:
    """The APScheduler trigger of the schedule: cron when set, else the interval."""
    jitter = int(schedule.jitter) if schedule.jitter else None
    if schedule.cron:
        return _cron_with_jitter(schedule.cron, schedule.timezone, jitter)
    interval = schedule.interval_delta
    assert interval is not None  # guaranteed by ScheduleSettings validation
    return IntervalTrigger(seconds=interval.total_seconds(), jitter=jitter, timezone=UTC)


# The five fields of a crontab line, in order (what CronTrigger.from_crontab reads, which takes
# no jitter).
_CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


def _cron_with_jitter(expr: str, timezone: str, jitter: int | None) -> Any:
    fields = dict(zip(_CRONTAB_FIELDS, expr.split(), strict=True))
    return CronTrigger(**fields, timezone=timezone, jitter=jitter)


class Daemon:
    """Runs ``job`` on the schedule until :meth:`request_stop` (or SIGTERM/SIGINT)."""

    def __init__(
        self, schedule: ScheduleSettings, job: RunJob, *, metrics: Metrics | None = None
    ) -> None:
        self.schedule = schedule
        self.job = job
        self.metrics = metrics
        self.runs_started = 0
        self.runs_skipped = 0
        self._stop = asyncio.Event()
        self._inflight: asyncio.Task[str] | None = None
        self._stopping = False

    def request_stop(self, signame: str = "stop") -> None:
        if not self._stopping:
            log.info("stopping on %s", signame)
        self._stopping = True
        if self.metrics is not None:
            self.metrics.health.stopping = True
        self._stop.set()

    async def _tick(self) -> None:
        if self._stopping:
            return
        self.runs_started += 1
        started = time.monotonic()
        task: asyncio.Task[str] = asyncio.create_task(
            self.job(), name=f"kubeinv-run-{self.runs_started}"
        )
        self._inflight = task
        status = "error"
        try:
            status = await asyncio.shield(task)
        except asyncio.CancelledError:
            # The scheduler's executor was shut down; the run itself is handled by serve().
            if not task.done():
                raise
            status = "interrupted"
        except Exception as exc:
            log.error("run failed: %s", exc, extra={"error_class": type(exc).__name__})
            status = "error"
        finally:
            if task.done():
                self._inflight = None
            if self.metrics is not None and (task.done() or status != "error"):
                self.metrics.observe_run(status, time.monotonic() - started)
        next_run = self._next_run_time()
        log.info(
            "run %d finished: %s",
            self.runs_started,
            status,
            extra={"next_run": next_run.isoformat() if next_run else None},
        )

    def _on_skipped(self, event: Any) -> None:
        self.runs_skipped += 1
        log.warning(
            "a run is still in flight: this tick is skipped, not stacked",
            extra={"scheduled_for": str(getattr(event, "scheduled_run_times", [""])[0])},
        )
        if self.metrics is not None:
            self.metrics.observe_run("skipped", 0.0)

    def _next_run_time(self) -> datetime | None:
        job = self._scheduler.get_job(JOB_ID) if getattr(self, "_scheduler", None) else None
        return job.next_run_time if job is not None else None

    async def serve(self, *, install_signal_handlers: bool = True) -> int:
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        self._scheduler = scheduler
        scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        job_kwargs: dict[str, Any] = {}
        if self.schedule.run_at_start:
            job_kwargs["next_run_time"] = datetime.now(UTC)
        scheduler.add_job(
            self._tick,
            build_trigger(self.schedule),
            id=JOB_ID,
            name="collect",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **job_kwargs,
        )
        scheduler.start()
        what = (
            f"cron {self.schedule.cron!r} ({self.schedule.timezone})"
            if self.schedule.cron
            else f"every {self.schedule.interval}"
        )
        log.info(
            "daemon started: collecting %s",
            what,
            extra={"jitter_s": self.schedule.jitter, "run_at_start": self.schedule.run_at_start},
        )
        try:
            await self._stop.wait()
        finally:
            scheduler.pause()
            await self._finish_inflight()
            scheduler.shutdown(wait=False)
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        log.info("daemon stopped", extra={"runs": self.runs_started, "skipped": self.runs_skipped})
        return 0

    async def _finish_inflight(self) -> None:
        task = self._inflight
        if task is None or task.done():
            return
        grace = self.schedule.shutdown_grace
        log.info("waiting up to %.0fs for the run in flight to finish", grace)
        done, _ = await asyncio.wait({task}, timeout=grace)
        if done:
            return
        log.warning(
            "the run in flight did not finish within %.0fs: abandoning it; clusters not yet "
            "stored keep their previous state",
            grace,
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 10)
