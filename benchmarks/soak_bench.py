"""Soak benchmark: `kubeinv run` for hundreds of runs, sampled from outside.

A simulated fleet (``kubeinv sim serve``, its own process) of clusters whose users are inline
certificates, certificate files, tokens, token files and exec plugins is collected by a
``kubeinv run`` subprocess on a short interval into a fresh database. After chosen runs the
daemon is sampled: descriptors (/proc/PID/fd), resident memory (VmRSS), threads, asyncio tasks
(its /metrics), PostgreSQL sessions on its database (pg_stat_activity) and the entries of its
private $TMPDIR. The database is dropped at the end.

    python benchmarks/soak_bench.py --database-url postgresql://postgres@127.0.0.1:5432/test \\
        --runs 200 --clusters 20 --interval 1s

Prints a Markdown table and, with ``--json FILE``, every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
USER_KINDS = ("cert-data", "cert-file", "token", "token-file", "exec")


def _with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _finished_runs(log_path: Path) -> int:
    count = 0
    with log_path.open() as fh:
        for line in fh:
            if line.startswith("{") and '"kubeinv.scheduling"' in line and " finished: " in line:
                count += 1
    return count


async def _tasks(port: int) -> int | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    for family in text_string_to_metric_families(raw.decode().partition("\r\n\r\n")[2]):
        for s in family.samples:
            if s.name == "kubeinv_asyncio_tasks":
                return int(s.value)
    return None


async def _sample(run: int, pid: int, port: int, dsn: str, tmpdir: Path) -> dict[str, Any]:
    fds, threads, tasks = [], [], []
    for _ in range(3):  # the smallest of three: not a reading from the next run's start
        fds.append(len(os.listdir(f"/proc/{pid}/fd")))
        threads.append(int(_status(pid)["Threads"]))
        tasks.append(await _tasks(port))
        await asyncio.sleep(0.02)
    known_tasks = [t for t in tasks if t is not None]
    conn = await asyncpg.connect(dsn)
    try:
        sessions = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        ledger = await conn.fetchval("SELECT count(*) FROM inventory.cluster_collection")
    finally:
        await conn.close()
    return {
        "run": run,
        "descriptors": min(fds),
        "rss_mib": round(int(_status(pid)["VmRSS"].split()[0]) / 1024, 1),
        "threads": min(threads),
        "asyncio_tasks": min(known_tasks) if known_tasks else None,
        "pg_sessions": int(sessions),
        "tmp_entries": sum(len(d) + len(f) for _, d, f in os.walk(tmpdir)),
        "ledger_rows": int(ledger),
        "at": round(time.time(), 1),
    }


def _scenario(path: Path, clusters: int, nodes: int) -> None:
    lines = ["seed = 7", 'layout = "single"', ""]
    for i in range(clusters):
        kind = USER_KINDS[i % len(USER_KINDS)]
        lines += ["[[cluster]]", f'name = "soak-{i:03d}"', f"nodes = {nodes}"]
        lines += [f'users = ["{kind}"]', ""]
    path.write_text("\n".join(lines))


async def soak(args: argparse.Namespace) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="kinv-soak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEINV_")}
    env["PYTHONPATH"] = str(ROOT)
    tmpdir = work / "tmp"
    tmpdir.mkdir()
    _scenario(work / "fleet.toml", args.clusters, args.nodes)
    fleet_dir = work / "fleet"
    sim = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "collector", "sim", "serve"),
        *("--scenario", str(work / "fleet.toml"), "--out", str(fleet_dir)),
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    database = f"kinv_soak_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    dsn = _with_database(args.database_url, database)
    samples: list[dict[str, Any]] = []
    daemon: asyncio.subprocess.Process | None = None
    try:
        while not (fleet_dir / "ready").exists():
            if sim.returncode is not None:
                raise SystemExit("the simulator exited")
            await asyncio.sleep(0.1)
        port = _free_port()
        log_path = work / "daemon.log"
        with log_path.open("wb") as log_file:
            daemon = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "collector",
                "run",
                "--kubeconfig",
                str(fleet_dir / "kubeconfig"),
                "--database-url",
                dsn,
                "--interval",
                args.interval,
                "--metrics-port",
                str(port),
                "--log-format",
                "json",
                env={**env, "TMPDIR": str(tmpdir)},
                cwd=str(ROOT),
                stdout=log_file,
                stderr=log_file,
            )
        at = sorted({1, 2, 5, *range(25, args.runs + 1, 25), 100, args.runs})
        for run in (r for r in at if r <= args.runs):
            while _finished_runs(log_path) < run:
                if daemon.returncode is not None:
                    raise SystemExit(f"the daemon exited: {log_path.read_text()[-2000:]}")
                await asyncio.sleep(0.02)
            sample = await _sample(run, daemon.pid, port, dsn, tmpdir)
            samples.append(sample)
            print(json.dumps(sample), file=sys.stderr, flush=True)
        daemon.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(daemon.wait(), 60)
        print(f"daemon exit code {rc}", file=sys.stderr)
    finally:
        if daemon is not None and daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        sim.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sim.wait(), 20)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(work, ignore_errors=True)
    return samples


def _table(samples: list[dict[str, Any]]) -> str:
    keys = ["run", "descriptors", "rss_mib", "threads", "asyncio_tasks", "pg_sessions"]
    keys += ["tmp_entries", "ledger_rows"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(s[k]) for k in keys) + " |" for s in samples]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="a server's maintenance DSN")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--interval", default="1s")
    parser.add_argument("--json", metavar="FILE", help="write every sample here")
    args = parser.parse_args()
    started = time.monotonic()
    samples = asyncio.run(soak(args))
    print(_table(samples))
    print(f"\n{args.runs} runs in {time.monotonic() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(samples, indent=1) + "\n")


if __name__ == "__main__":
    main()
