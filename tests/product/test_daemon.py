"""`kubeinv run` for real: a subprocess daemon collecting simulated clusters into PostgreSQL.

The database is a throwaway embedded PostgreSQL of this test (never the machine's shared
service), so that it can be stopped and started again between two ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.sim import ClusterSpec, FleetSpec
from collector.store.embedded import EmbeddedServer

from .conftest import REPO, clean_env

pytestmark = pytest.mark.slow


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedServer]:
    # A short, world-searchable directory: as root the server runs as 'nobody'.
    base = Path(tempfile.mkdtemp(prefix="kinv-daemon-"))
    base.chmod(0o755)
    server = EmbeddedServer(base / "pg")
    try:
        server.ensure_running()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    body = raw.decode().partition("\r\n\r\n")[2]
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def _runs(port: int, status: str) -> float:
    try:
        samples = await _metrics(port)
    except OSError:
        return 0.0
    return samples.get(("kubeinv_runs_total", (("status", status),)), 0.0)


async def _wait_for(
    what: str, check: Callable[[], object], within: float, proc: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}) while waiting: {what}")
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def _daemon(
    *args: str, env: dict[str, str]
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    fd, name = tempfile.mkstemp(prefix="kinv-daemon-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "wb") as log_file:
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
            yield proc, log_path
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            if os.environ.get("KUBEINV_KEEP_LOGS") is None:
                with contextlib.suppress(OSError):
                    os.unlink(name)


async def test_daemon_runs_serves_metrics_survives_a_postgres_restart_and_stops_on_sigterm(
    sim_fleet: Callable[..., object],
    own_postgres: EmbeddedServer,
    tmp_path: Path,
) -> None:
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(
            clusters=[
                ClusterSpec(name="alpha", version="v1.30.6", flavour="eks", nodes=3),
                ClusterSpec(
                    name="beta", version="v1.29.10", flavour="gke", nodes=2, users=("token",)
                ),
                ClusterSpec(name="gamma", version="v1.31.2", nodes=2, server="closed-port"),
            ]
        )
    )
    dsn = own_postgres.dsn()
    port = _free_port()
    env = clean_env(tmp_path)
    args = (
        "--kubeconfig",
        str(fleet.kubeconfig),
        "--database-url",
        dsn,
        "--interval",
        "2s",
        "--metrics-port",
        str(port),
        "--log-format",
        "json",
        "--timeout",
        "3",
        "--cluster-timeout",
        "10",
        "--shutdown-grace",
        "10",
    )
    async with _daemon(*args, env=env) as (proc, log_path):
        # Runs happen; a cluster that is down makes each run partial, not the daemon fail.
        await _wait_for("two runs", lambda: _two_partial(port), 60, proc)
        samples = await _metrics(port)
        alpha = ("context", "alpha"), ("kubeconfig", str(fleet.kubeconfig))
        assert samples[("kubeinv_target_up", alpha)] == 1.0
        gamma = ("context", "gamma"), ("kubeconfig", str(fleet.kubeconfig))
        assert samples[("kubeinv_target_up", gamma)] == 0.0
        assert samples[("kubeinv_nodes_collected_total", ())] >= 5

        async def nodes_counted_twice() -> bool:
            # A busy machine may make a run follow the previous one so closely that its claims
            # defer the clusters to the next tick: wait for two runs that collected them.
            samples = await _metrics(port)
            return samples.get(("kubeinv_nodes_collected_total", ()), 0) >= 10

        await _wait_for("nodes counted by two runs", nodes_counted_twice, 60, proc)
        assert any(name == "kubeinv_cluster_last_success_timestamp_seconds" for name, _ in samples)
        assert any(
            name == "kubeinv_target_collections_total" and ("error_class", "Unreachable") in labels
            for name, labels in samples
        )

        # PostgreSQL goes away between ticks: the next run fails with a clear log line ...
        await asyncio.to_thread(own_postgres.stop)
        await _wait_for("a failed run", lambda: _runs_at_least(port, "error", 1), 30, proc)
        # ... and once it is back, a later tick reconnects and works.
        partial_before = await _runs(port, "partial")
        await asyncio.to_thread(own_postgres.ensure_running)
        await _wait_for(
            "a run after the restart",
            lambda: _runs_at_least(port, "partial", partial_before + 1),
            30,
            proc,
        )

        # SIGTERM: a clean stop, exit 0, within the deadline.
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 20)
        took = time.monotonic() - t0
        log_text = log_path.read_text()

    assert rc == 0, log_text[-3000:]
    assert took < 15
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert lines, log_text[-2000:]
    db_errors = [
        line
        for line in lines
        if line["level"] == "error" and "database cannot be used" in line["message"]
    ]
    assert db_errors, log_text[-3000:]
    assert all("context" in line for line in lines if "gamma" in line["message"])
    assert any(line["message"].startswith("stopping on SIGTERM") for line in lines)
    assert "Traceback" not in log_text

    conn = await asyncpg.connect(dsn)
    try:
        runs = await conn.fetch(
            "SELECT run_id, status FROM inventory.collection_run ORDER BY run_id"
        )
        assert sum(1 for r in runs if r["status"] == "partial") >= 3
        clusters = await conn.fetch(
            "SELECT context_names, node_count, last_status FROM inventory.cluster_current"
        )
        assert sorted((list(c["context_names"]), c["node_count"]) for c in clusters) == [
            (["alpha"], 3),
            (["beta"], 2),
        ]
        # Change-only history: many runs, one version per node.
        versions = await conn.fetchval("SELECT count(*) FROM inventory.node_history")
        assert versions == 5
        failed = await conn.fetchval(
            "SELECT count(*) FROM inventory.cluster_collection "
            "WHERE context_name = 'gamma' AND status = 'failed'"
        )
        assert failed >= 3
    finally:
        await conn.close()


async def _two_partial(port: int) -> bool:
    return await _runs(port, "partial") >= 2


async def _runs_at_least(port: int, status: str, count: float) -> bool:
    return await _runs(port, status) >= count


async def test_sigterm_abandons_a_slow_run_cleanly(
    sim_fleet: Callable[..., object],
    pg_dsn: str,
    tmp_path: Path,
) -> None:
    """A run still in flight after the grace period is abandoned: exit 0, run marked, nothing
    half written (each cluster is one transaction)."""
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(
            clusters=[
                ClusterSpec(name="fast", nodes=2),
                ClusterSpec(name="slow", nodes=2, latency=3.0),
            ]
        )
    )
    env = clean_env(tmp_path)
    args = (
        "--kubeconfig",
        str(fleet.kubeconfig),
        "--database-url",
        pg_dsn,
        "--interval",
        "1h",
        "--timeout",
        "10",
        "--cluster-timeout",
        "60",
        "--shutdown-grace",
        "1",
    )
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with _daemon(*args, env=env) as (proc, log_path):

            async def fast_stored() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM inventory.cluster_current WHERE node_count = 2"
                    )
                )

            await _wait_for("the fast cluster stored", fast_stored, 60, proc)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(proc.wait(), 20)
            took = time.monotonic() - t0
            log_text = log_path.read_text()
        assert rc == 0, log_text[-3000:]
        assert took < 10, took
        assert "abandoning it" in log_text
        assert "Traceback" not in log_text
        status = await conn.fetchval("SELECT status FROM inventory.collection_run")
        assert status == "abandoned"
        # The fast cluster is complete; the slow one was never half written.
        rows = await conn.fetch(
            "SELECT c.cluster_id, count(n.*) AS nodes FROM inventory.cluster_current c "
            "LEFT JOIN inventory.node_current n USING (cluster_id) GROUP BY 1"
        )
        assert [r["nodes"] for r in rows] == [2]
        ledger = await conn.fetch(
            "SELECT context_name, status, error_class FROM inventory.cluster_collection "
            "ORDER BY context_name"
        )
        assert [tuple(r) for r in ledger] == [
            ("fast", "ok", None),
            ("slow", "failed", "Abandoned"),
        ]
    finally:
        await conn.close()


# --- the database gone at start-up -----------------------------------------------------------


async def _healthz(port: int) -> tuple[int, dict[str, object]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _server_address(dsn: str) -> tuple[str, str | int]:
    """Where the PostgreSQL of ``dsn`` listens: ("tcp", port) or ("unix", socket path)."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    port = int(query.get("port", [parts.port or 5432])[0])
    if parts.hostname:
        return parts.hostname, port
    return "unix", f"{query['host'][0]}/.s.PGSQL.{port}"


async def _forward(listen_port: int, dsn: str) -> asyncio.Server:
    """A PostgreSQL server appearing on 127.0.0.1:listen_port: a TCP forwarder to the real one."""
    host, where = _server_address(dsn)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if host == "unix":
            up_reader, up_writer = await asyncio.open_unix_connection(str(where))
        else:
            up_reader, up_writer = await asyncio.open_connection(host, int(where))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", listen_port)


def _through(dsn: str, port: int) -> str:
    """``dsn`` reaching its database through 127.0.0.1:port."""
    parts = urlsplit(dsn)
    user = parts.username or parse_qs(parts.query).get("user", [""])[0]
    auth = f"{user}@" if user else ""
    return f"postgresql://{auth}127.0.0.1:{port}{parts.path}"


async def test_database_gone_at_start_the_daemon_waits_retries_and_then_collects(
    sim_fleet: Callable[..., object], pg_dsn: str, tmp_path: Path
) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a", nodes=2)])  # type: ignore[misc]
    db_port, metrics_port = _free_port(), _free_port()
    args = (
        "--kubeconfig",
        str(fleet.kubeconfig),  # type: ignore[attr-defined]
        "--database-url",
        _through(pg_dsn, db_port),  # nothing listens there yet
        "--interval",
        "1h",
        "--metrics-port",
        str(metrics_port),
        "--log-format",
        "json",
    )
    forwarder: asyncio.Server | None = None
    try:
        async with _daemon(*args, env=clean_env(tmp_path)) as (proc, log_path):

            def attempts() -> int:
                return log_path.read_text().count("the database cannot be used yet")

            # It says so, retries with backoff, is not ready, and does not exit.
            await _wait_for("a second attempt", lambda: attempts() >= 2, 30, proc)
            status, doc = await _healthz(metrics_port)
            assert status == 503, doc
            assert doc["status"] == "waiting-for-database" and doc["ready"] is False
            assert "cannot connect to PostgreSQL" in str(doc["database_error"])
            assert proc.returncode is None
            assert list(fleet.clusters[0].request_log) == []  # type: ignore[attr-defined]

            # The database appears: the daemon connects, collects and is ready.
            forwarder = await _forward(db_port, pg_dsn)

            async def collected() -> bool:
                status, doc = await _healthz(metrics_port)
                return status == 200 and doc["last_run_status"] == "ok"

            await _wait_for("a run once the database is there", collected, 60, proc)
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(proc.wait(), 20)
            log_text = log_path.read_text()
    finally:
        if forwarder is not None:
            forwarder.close()
    assert rc == 0, log_text[-3000:]
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    waits = [line for line in lines if "cannot be used yet" in line["message"]]
    assert all(line["level"] == "error" for line in waits)
    delays = [float(line["retry_in_s"]) for line in waits]
    assert delays[1] > delays[0], delays  # backoff
    assert any("the database is reachable now" in line["message"] for line in lines)
    assert "Traceback" not in log_text
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM inventory.node_current") == 2
    finally:
        await conn.close()


def _unreachable_kubeconfig(tmp_path: Path) -> Path:
    """One context whose API server nothing listens on: the daemon never gets to it here."""
    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "clusters:\n- name: a\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "users:\n- name: u\n  user: {token: t}\n"
        "contexts:\n- name: a\n  context: {cluster: a, user: u}\n"
    )
    return kubeconfig


async def test_sigterm_while_waiting_for_the_database_exits_0(tmp_path: Path) -> None:
    kubeconfig = _unreachable_kubeconfig(tmp_path)
    dsn = f"postgresql://kubeinv:s3cret-pw@127.0.0.1:{_free_port()}/kubeinv"
    args = ("--kubeconfig", str(kubeconfig), "--database-url", dsn, "--interval", "1h")
    async with _daemon(*args, env=clean_env(tmp_path)) as (proc, log_path):
        await _wait_for(
            "the first attempt",
            lambda: "the database cannot be used yet" in log_path.read_text(),
            30,
            proc,
        )
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 20)
        log_text = log_path.read_text()
    assert rc == 0, log_text
    assert "s3cret-pw" not in log_text
    assert "Traceback" not in log_text


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        ("database", 'database "kinv_no_such_db" does not exist'),
        ("role", 'role "kinv_no_such_role" does not exist'),
        ("newer-schema", "it was migrated by a newer kubeinv"),
    ],
)
async def test_a_database_that_refuses_kubeinv_exits_3_at_once_instead_of_waiting(
    refusal: str, message: str, pg_dsn: str, tmp_path: Path
) -> None:
    # Waiting fixes a database that is down, never one that answers "no": a wrong user or
    # database name, or a schema this kubeinv cannot migrate, exits 3 with the reason.
    parts = urlsplit(pg_dsn)
    if refusal == "database":
        dsn = parts._replace(path="/kinv_no_such_db").geturl()
    elif refusal == "role":
        host = parts.netloc.rpartition("@")[2]
        dsn = parts._replace(netloc=f"kinv_no_such_role@{host}").geturl()
    else:
        dsn = pg_dsn
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "INSERT INTO inventory.schema_migration (version, name, checksum, execution_ms)"
                " VALUES ('9999', 'from_the_future', 'x', 0)"
            )
        finally:
            await conn.close()
    kubeconfig = _unreachable_kubeconfig(tmp_path)
    args = ("--kubeconfig", str(kubeconfig), "--database-url", dsn, "--interval", "1h")
    async with _daemon(*args, env=clean_env(tmp_path)) as (proc, log_path):
        rc = await asyncio.wait_for(proc.wait(), 60)
        log_text = log_path.read_text()
    assert rc == 3, log_text
    assert message in log_text
    assert "kubeinv: error:" in log_text
    assert "cannot be used yet" not in log_text  # no retry
    assert "Traceback" not in log_text


async def test_an_embedded_server_that_cannot_run_here_exits_3_at_once(tmp_path: Path) -> None:
    # The embedded PostgreSQL's configuration problems (no binaries, a data directory too deep
    # for its socket path, no user to run it as) are not fixed by waiting either.
    kubeconfig = _unreachable_kubeconfig(tmp_path)
    data_dir = tmp_path / ("deep" * 30)
    env = clean_env(tmp_path, {"KUBEINV_DATA_DIR": str(data_dir)})
    args = ("--kubeconfig", str(kubeconfig), "--interval", "1h")
    async with _daemon(*args, env=env) as (proc, log_path):
        rc = await asyncio.wait_for(proc.wait(), 60)
        log_text = log_path.read_text()
    assert rc == 3, log_text
    assert "too deep for a unix socket path" in log_text
    assert "cannot be used yet" not in log_text  # no retry
    assert "Traceback" not in log_text
    assert not data_dir.exists()  # nothing was created for a server that cannot run
