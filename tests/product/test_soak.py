"""Soak: `kubeinv run` for many runs keeps every resource flat.

A subprocess daemon collects a small simulated fleet (users with inline certificates,
certificate files, tokens, token files and an exec plugin) every half second into a fresh
database. After run 5 and after the last run it is sampled from outside: descriptors
(/proc/PID/fd), resident memory, threads, asyncio tasks (its /metrics), PostgreSQL sessions
(pg_stat_activity of its database) and the entries of its private $TMPDIR. Growth between the
two samples must stay within a small fixed allowance. Counting, not timing: a slow machine only
makes the test take longer.

The allowances are far below what a leak of one object per target and run adds over 27 runs
(5 targets: >= 135); they absorb what is legitimately variable: an asyncpg pool connection
opened when two stores overlap for the first time, allocator noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.sim import ClusterSpec, FleetSpec

from .conftest import REPO, clean_env

pytestmark = pytest.mark.slow

RUNS = 32  # the issue asks for at least 30
FIRST_SAMPLE = 5
INTERVAL = "0.5s"
USER_KINDS = ("cert-data", "cert-file", "token", "token-file", "exec")

# Largest growth tolerated between run FIRST_SAMPLE and run RUNS.
ALLOWED = {
    "descriptors": 6,
    "rss_mib": 12,
    "threads": 1,
    "asyncio_tasks": 2,
    "pg_sessions": 2,
    "tmp_entries": 0,
}


@dataclass
class Sample:
    run: int
    descriptors: int
    rss_mib: float
    threads: int
    asyncio_tasks: int | None  # None: the daemon has no kubeinv_asyncio_tasks gauge
    pg_sessions: int
    tmp_entries: int

    def growth(self, later: Sample) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for f in fields(self):
            if f.name == "run":
                continue
            a, b = getattr(self, f.name), getattr(later, f.name)
            out[f.name] = None if a is None or b is None else round(b - a, 1)
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_status(pid: int) -> dict[str, str]:
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    return status


def _tree_entries(root: Path) -> int:
    return sum(len(dirs) + len(files) for _, dirs, files in os.walk(root))


async def _asyncio_tasks(port: int) -> int | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    body = raw.decode().partition("\r\n\r\n")[2]
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == "kubeinv_asyncio_tasks":
                return int(s.value)
    return None


async def _sessions(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def _sample(run: int, pid: int, port: int, dsn: str, tmpdir: Path) -> Sample:
    # The run has just ended and the next starts at the next tick: take the smallest of a few
    # readings over 0.2 s, so that a reading caught in the next run does not count.
    readings: list[tuple[int, int, int, int | None, int, int]] = []
    for _ in range(5):
        readings.append(
            (
                len(os.listdir(f"/proc/{pid}/fd")),
                int(_proc_status(pid)["VmRSS"].split()[0]),
                int(_proc_status(pid)["Threads"]),
                await _asyncio_tasks(port),
                await _sessions(dsn),
                _tree_entries(tmpdir),
            )
        )
        await asyncio.sleep(0.04)
    tasks = [r[3] for r in readings if r[3] is not None]  # none: the daemon has no such gauge
    return Sample(
        run=run,
        descriptors=min(r[0] for r in readings),
        rss_mib=round(min(r[1] for r in readings) / 1024, 1),
        threads=min(r[2] for r in readings),
        asyncio_tasks=min(tasks) if tasks else None,
        pg_sessions=min(r[4] for r in readings),
        tmp_entries=min(r[5] for r in readings),
    )


def _finished_runs(log_path: Path) -> int:
    count = 0
    for line in log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        doc = json.loads(line)
        if doc.get("logger") == "kubeinv.scheduling" and doc["message"].startswith("run "):
            count += " finished: " in doc["message"]
    return count


def _tail(log_path: Path) -> str:
    return log_path.read_text()[-3000:]


@contextlib.asynccontextmanager
async def _daemon(args: list[str], env: dict[str, str], log_path: Path) -> AsyncIterator[Any]:
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collector",
            "run",
            *args,
            env=env,
            cwd=str(REPO),
            stdout=log_file,
            stderr=log_file,
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _wait_for_run(n: int, proc: Any, log_path: Path, *, within: float = 300) -> None:
    deadline = time.monotonic() + within
    while _finished_runs(log_path) < n:
        if proc.returncode is not None:
            raise AssertionError(
                f"the daemon exited ({proc.returncode}) before run {n}:\n{_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"run {n} did not finish:\n{_tail(log_path)}")
        await asyncio.sleep(0.02)


async def test_thirty_runs_of_the_daemon_leak_nothing(
    sim_fleet: Any, pg_dsn: str, tmp_path: Path
) -> None:
    fleet = await sim_fleet(
        FleetSpec(
            clusters=[
                ClusterSpec(name=f"soak-{kind}", nodes=2, users=(kind,)) for kind in USER_KINDS
            ]
        )
    )
    tmpdir = tmp_path / "daemon-tmp"
    tmpdir.mkdir()
    port = _free_port()
    env = clean_env(tmp_path, {"TMPDIR": str(tmpdir)})
    args = [
        "--kubeconfig",
        str(fleet.kubeconfig),
        "--database-url",
        pg_dsn,
        "--interval",
        INTERVAL,
        "--metrics-port",
        str(port),
        "--log-format",
        "json",
        "--timeout",
        "10",
    ]
    log_path = tmp_path / "daemon.log"
    async with _daemon(args, env, log_path) as proc:
        await _wait_for_run(FIRST_SAMPLE, proc, log_path)
        first = await _sample(FIRST_SAMPLE, proc.pid, port, pg_dsn, tmpdir)
        await _wait_for_run(RUNS, proc, log_path)
        last = await _sample(_finished_runs(log_path), proc.pid, port, pg_dsn, tmpdir)
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 60)

    log_text = log_path.read_text()
    growth = first.growth(last)
    growth_report = ", ".join(
        f"{k} {getattr(first, k)} -> {getattr(last, k)} (+{v}, allowed +{ALLOWED[k]})"
        for k, v in growth.items()
    )
    print(f"run {first.run} -> run {last.run}: {growth_report}")
    too_much = {k: v for k, v in growth.items() if v is None or v > ALLOWED[k]}
    assert not too_much, f"growth from run {first.run} to run {last.run}: {growth_report}"
    assert rc == 0, log_text[-3000:]
    assert "Traceback" not in log_text

    # Every run collected every target: a leak-free daemon that stopped working proves nothing.
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(
            "SELECT r.run_id, r.status, count(cc.*) AS targets, "
            "count(*) FILTER (WHERE cc.status = 'ok') AS ok "
            "FROM inventory.collection_run r "
            "LEFT JOIN inventory.cluster_collection cc USING (run_id) "
            "GROUP BY r.run_id ORDER BY r.run_id"
        )
    finally:
        await conn.close()
    assert len(rows) >= RUNS
    assert all(r["status"] == "ok" and r["ok"] == len(USER_KINDS) for r in rows), [
        dict(r) for r in rows if r["status"] != "ok"
    ]
