"""End-to-end harness: the real ``kubeinv`` CLI in a subprocess, against the simulator (served by
the test's own event loop) and a real PostgreSQL database.

The subprocess is started with asyncio so that the simulated API servers, which live in the
test's event loop, keep answering while the CLI runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from collector.sim import SimCluster

REPO = Path(__file__).resolve().parents[2]

# Startup of a fresh interpreter (imports, migrations check) on a shared, noisy 2-core machine:
# a hang guard, never a benchmark.
STARTUP_MARGIN = 45.0
# Ledger durations are measured inside the collector: the deadline plus a small margin.
LEDGER_MARGIN_MS = 3000

# Timeouts used by the fault matrix: short enough to keep the suite quick.
TIMEOUT = 2.0
CLUSTER_TIMEOUT = 5.0


def cli_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a kubeinv process: none of the developer's KUBEINV_* or KUBECONFIG."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KUBEINV_") and k not in ("KUBECONFIG", "PYTEST_CURRENT_TEST")
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        KUBEINV_DATA_DIR=str(home / "kubeinv-data"),
        COLUMNS="200",
        PYTHONPATH=str(REPO),
        NO_COLOR="1",
    )
    if extra:
        env.update(extra)
    return env


@dataclass
class Result:
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    elapsed: float
    pid: int = 0

    def json(self) -> Any:
        return msgspec.json.decode(self.stdout.encode())

    def __str__(self) -> str:  # shown by failing asserts
        return (
            f"kubeinv {' '.join(self.argv)} -> exit {self.code} in {self.elapsed:.1f}s\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-6000:]}"
        )


async def start(*argv: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=str(REPO),
    )


async def finish(
    proc: asyncio.subprocess.Process, argv: Sequence[str], started: float, limit: float
) -> Result:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"kubeinv {' '.join(argv)} hung: killed after {limit:.0f}s\n{err.decode()[-4000:]}"
        ) from None
    assert proc.returncode is not None
    return Result(
        list(argv),
        proc.returncode,
        out.decode(),
        err.decode(),
        time.monotonic() - started,
        proc.pid,
    )


async def kubeinv(*argv: str, env: Mapping[str, str], limit: float = 120.0) -> Result:
    """Run ``kubeinv ARGV`` to completion (killed, and the test failed, after ``limit``)."""
    started = time.monotonic()
    proc = await start(*argv, env=env)
    return await finish(proc, argv, started, limit)


async def interrupt(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)


def collect_argv(
    kubeconfigs: Iterable[Path | str],
    dsn: str | None,
    *extra: str,
    timeout: float = TIMEOUT,
    cluster_timeout: float = CLUSTER_TIMEOUT,
    output: str | None = "json",
) -> list[str]:
    argv = ["collect"]
    for path in kubeconfigs:
        argv += ["--kubeconfig", str(path)]
    if dsn is not None:
        argv += ["--database-url", dsn]
    argv += ["--timeout", str(timeout), "--cluster-timeout", str(cluster_timeout)]
    if output:
        argv += ["--output", output]
    return [*argv, *extra]


# --- the database side ------------------------------------------------------------------------


@dataclass
class Ledger:
    run_id: int
    run_status: str
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # context_name -> row

    def __getitem__(self, context: str) -> dict[str, Any]:
        return self.rows[context]


async def connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=30)


async def latest_ledger(dsn: str) -> Ledger:
    conn = await connect(dsn)
    try:
        run = await conn.fetchrow(
            "SELECT run_id, status FROM inventory.collection_run ORDER BY run_id DESC LIMIT 1"
        )
        assert run is not None, "no run in the ledger"
        rows = await conn.fetch(
            "SELECT * FROM inventory.cluster_collection WHERE run_id = $1", run["run_id"]
        )
    finally:
        await conn.close()
    ledger = Ledger(run["run_id"], run["status"])
    for row in rows:
        ledger.rows[row["context_name"]] = dict(row)
    return ledger


def expected_api_resources(cluster: SimCluster) -> set[tuple[str, str, str]]:
    return {(g, v, r) for (g, v, r) in cluster.discovery().resources_by_path}


async def stored_state(dsn: str, cluster_id: str) -> dict[str, Any]:
    """What the public views show for one cluster."""
    conn = await connect(dsn)
    try:
        cluster = await conn.fetchrow(
            "SELECT * FROM inventory.cluster_current WHERE cluster_id = $1", cluster_id
        )
        nodes = await conn.fetch(
            "SELECT name, kubelet_version, labels FROM inventory.node_current "
            "WHERE cluster_id = $1",
            cluster_id,
        )
        api = await conn.fetch(
            "SELECT api_group, api_version, resource FROM inventory.api_resource_current "
            "WHERE cluster_id = $1",
            cluster_id,
        )
        services = await conn.fetch(
            "SELECT name FROM inventory.cluster_service_current WHERE cluster_id = $1", cluster_id
        )
    finally:
        await conn.close()
    return {
        "cluster": dict(cluster) if cluster is not None else None,
        "nodes": {r["name"]: dict(r) for r in nodes},
        "api": {(r["api_group"], r["api_version"], r["resource"]) for r in api},
        "services": {r["name"] for r in services},
    }


async def assert_stored_in_full(dsn: str, cluster: SimCluster) -> dict[str, Any]:
    """The cluster's current state in the views is exactly what the simulator serves."""
    state = await stored_state(dsn, cluster.uid)
    assert state["cluster"] is not None, f"{cluster.name}: not in cluster_current"
    assert state["cluster"]["git_version"] == cluster.git_version, cluster.name
    assert set(state["nodes"]) == set(cluster.node_names), cluster.name
    assert state["api"] == expected_api_resources(cluster), cluster.name
    assert state["cluster"]["node_count"] == len(cluster.node_names)
    return state


def assert_get_only(clusters: Iterable[SimCluster]) -> None:
    """kubeinv only reads: every request any simulated server saw was a GET."""
    for cluster in clusters:
        methods = {r.method for r in cluster.request_log}
        assert methods <= {"GET"}, f"{cluster.name}: {methods}"


def assert_within_deadline(result: Result, ledger: Ledger, cluster_timeout: float) -> None:
    assert result.elapsed < cluster_timeout + STARTUP_MARGIN, str(result)
    for context, row in ledger.rows.items():
        assert row["duration_ms"] is None or row["duration_ms"] <= (
            cluster_timeout * 1000 + LEDGER_MARGIN_MS
        ), (context, row["duration_ms"])
