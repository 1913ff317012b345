"""The scheduler itself, with real APScheduler timing and a job that only sleeps.

Runs of the real collector against the simulator and PostgreSQL are in test_daemon.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from collector.metrics import Metrics
from collector.scheduling import Daemon, build_trigger
from collector.settings import ScheduleSettings


def test_trigger_from_interval_and_cron() -> None:
    t = build_trigger(ScheduleSettings(interval="90s", jitter=5))
    assert isinstance(t, IntervalTrigger)
    assert t.interval.total_seconds() == 90 and t.jitter == 5
    t = build_trigger(ScheduleSettings(cron="*/15 * * * *", timezone="Europe/Paris"))
    assert isinstance(t, CronTrigger)
    assert str(t.timezone) == "Europe/Paris"
    nxt = t.get_next_fire_time(None, datetime(2026, 1, 1, 10, 1, tzinfo=UTC))
    assert nxt is not None and nxt.minute % 15 == 0


async def test_runs_at_start_then_on_interval_and_stops() -> None:
    starts: list[float] = []
    three = asyncio.Event()

    async def job() -> str:
        starts.append(time.monotonic())
        if len(starts) == 3:
            three.set()
        return "ok"

    metrics = Metrics()
    daemon = Daemon(ScheduleSettings(interval="1s"), job, metrics=metrics)
    task = asyncio.create_task(daemon.serve(install_signal_handlers=False))
    await asyncio.wait_for(three.wait(), 10)
    daemon.request_stop("test")
    assert await asyncio.wait_for(task, 5) == 0
    assert starts[1] - starts[0] == pytest.approx(1.0, abs=0.5)
    assert metrics.health.runs >= 3
    assert metrics.health.stopping


async def test_a_run_longer_than_the_interval_is_skipped_never_stacked() -> None:
    running = 0
    most = 0
    started = 0

    async def slow_job() -> str:
        nonlocal running, most, started
        started += 1
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(2.5)
        finally:
            running -= 1
        return "ok"

    metrics = Metrics()
    daemon = Daemon(ScheduleSettings(interval="1s"), slow_job, metrics=metrics)
    task = asyncio.create_task(daemon.serve(install_signal_handlers=False))
    await asyncio.sleep(5.6)
    daemon.request_stop("test")
    assert await asyncio.wait_for(task, 10) == 0
    assert most == 1
    assert daemon.runs_skipped >= 2
    assert started <= 3
    sample = metrics.registry.get_sample_value("kubeinv_runs_total", {"status": "skipped"})
    assert sample == daemon.runs_skipped


async def test_stop_waits_for_the_run_in_flight_within_grace() -> None:
    finished = asyncio.Event()

    async def job() -> str:
        await asyncio.sleep(0.5)
        finished.set()
        return "ok"

    daemon = Daemon(ScheduleSettings(interval="1h", shutdown_grace=5), job)
    task = asyncio.create_task(daemon.serve(install_signal_handlers=False))
    await asyncio.sleep(0.1)
    daemon.request_stop("test")
    assert await asyncio.wait_for(task, 5) == 0
    assert finished.is_set()


async def test_stop_abandons_a_run_that_outlives_the_grace() -> None:
    cancelled = asyncio.Event()

    async def job() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "ok"

    daemon = Daemon(ScheduleSettings(interval="1h", shutdown_grace=0.3), job)
    task = asyncio.create_task(daemon.serve(install_signal_handlers=False))
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    daemon.request_stop("test")
    assert await asyncio.wait_for(task, 5) == 0
    assert cancelled.is_set()
    assert time.monotonic() - t0 < 3


async def test_a_failing_run_does_not_stop_the_daemon() -> None:
    calls = 0
    second = asyncio.Event()

    async def job() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is down")
        second.set()
        return "ok"

    metrics = Metrics()
    daemon = Daemon(ScheduleSettings(interval="1s"), job, metrics=metrics)
    task = asyncio.create_task(daemon.serve(install_signal_handlers=False))
    await asyncio.wait_for(second.wait(), 10)
    await asyncio.sleep(0.1)
    daemon.request_stop("test")
    await asyncio.wait_for(task, 5)
    assert metrics.registry.get_sample_value("kubeinv_runs_total", {"status": "error"}) == 1
    assert metrics.registry.get_sample_value("kubeinv_runs_total", {"status": "ok"}) >= 1
