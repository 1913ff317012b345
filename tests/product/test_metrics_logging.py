"""Metrics (Prometheus text and /healthz over real HTTP) and log lines (context, no secrets)."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import msgspec
import pytest

from collector.logging_setup import cluster_scope, replace_secrets, setup_logging
from collector.metrics import Metrics, MetricsServer
from collector.records import TargetOutcome


async def _get(port: int, path: str, method: str = "GET") -> tuple[int, str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    status = int(head.split()[1])
    ctype = next(
        (
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("content-type:")
        ),
        "",
    )
    return status, ctype, body


def _outcomes() -> list[TargetOutcome]:
    return [
        TargetOutcome(
            kubeconfig_path="/k/a.yaml",
            context_name="prod",
            status="ok",
            cluster_id="uid-1",
            duration_ms=1500,
            node_count=12,
            api_resource_count=80,
        ),
        TargetOutcome(
            kubeconfig_path="/k/b.yaml",
            context_name="prod-alias",
            status="ok",
            cluster_id="uid-1",
            deduplicated=True,
            duration_ms=100,
        ),
        TargetOutcome(
            kubeconfig_path="/k/c.yaml",
            context_name="down",
            status="failed",
            error_class="Unreachable",
            error_message="connection refused",
            duration_ms=30,
        ),
    ]


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    """setup_logging configures the process's loggers: put them back for the other tests."""
    names = ["", "kubeinv", "collector", "apscheduler", "asyncpg"]
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers)) for n in names}
    yield
    for n, (level, handlers) in saved.items():
        logger = logging.getLogger(n)
        logger.setLevel(level)
        logger.handlers[:] = handlers


async def test_metrics_endpoint_serves_counters_and_healthz() -> None:
    metrics = Metrics()
    server = MetricsServer(metrics, "127.0.0.1", 0)
    await server.start()
    try:
        status, _, body = await _get(server.port, "/healthz")
        assert status == 200
        assert json.loads(body)["runs"] == 0

        metrics.observe_outcomes(_outcomes())
        metrics.observe_run("partial", 2.0)
        metrics.observe_run("skipped", 0.0)
        status, ctype, body = await _get(server.port, "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        assert 'kubeinv_runs_total{status="partial"} 1.0' in body
        assert 'kubeinv_runs_total{status="skipped"} 1.0' in body
        assert (
            'kubeinv_target_collections_total{context="down",error_class="Unreachable",'
            'kubeconfig="/k/c.yaml",status="failed"} 1.0' in body
        )
        assert (
            'kubeinv_target_last_duration_seconds{context="prod",kubeconfig="/k/a.yaml"} 1.5'
            in body
        )
        assert 'kubeinv_cluster_nodes{cluster_id="uid-1",context="prod"} 12.0' in body
        assert 'kubeinv_cluster_api_resources{cluster_id="uid-1",context="prod"} 80.0' in body
        assert 'kubeinv_cluster_last_success_timestamp_seconds{cluster_id="uid-1"}' in body
        assert 'kubeinv_target_up{context="down",kubeconfig="/k/c.yaml"} 0.0' in body
        assert "kubeinv_nodes_collected_total 12.0" in body
        # The deduplicated context does not count the cluster's nodes twice.
        assert 'context="prod-alias"' not in body.split("kubeinv_cluster_nodes")[1].split("#")[0]

        status, _, body = await _get(server.port, "/healthz")
        doc = json.loads(body)
        assert status == 200 and doc["runs"] == 1 and doc["last_run_status"] == "partial"

        assert (await _get(server.port, "/nope"))[0] == 404
        assert (await _get(server.port, "/metrics", "POST"))[0] == 405

        # Waiting for the database at start-up: not ready, but alive.
        metrics.health.waiting_for_database = "cannot connect to PostgreSQL at ...: refused"
        status, _, body = await _get(server.port, "/healthz")
        doc = json.loads(body)
        assert status == 503 and doc["status"] == "waiting-for-database" and not doc["ready"]
        assert doc["database_error"].startswith("cannot connect")
        assert (await _get(server.port, "/readyz"))[0] == 503
        assert (await _get(server.port, "/livez"))[0] == 200
        metrics.health.waiting_for_database = None

        status, _, body = await _get(server.port, "/metrics")
        assert "kubeinv_asyncio_tasks" in body and "kubeinv_threads" in body
        assert "process_open_fds" in body and "process_resident_memory_bytes" in body

        metrics.health.stopping = True
        assert (await _get(server.port, "/healthz"))[0] == 503
        assert (await _get(server.port, "/livez"))[0] == 503
    finally:
        await server.stop()


def test_text_log_lines_carry_the_context_and_never_a_secret() -> None:
    stream = io.StringIO()
    setup_logging(fmt="text", level="debug", stream=stream)
    replace_secrets(["sup3r-s3cret-token-xyz"])
    log = logging.getLogger("kubeinv.gathering")
    log.warning("plain line", extra={"context": "prod-eu"})
    with cluster_scope("stage-us", "/k/stage.yaml"):
        log.error("auth failed with sup3r-s3cret-token-xyz and Bearer abcdefghijkl123")
    lines = stream.getvalue().splitlines()
    assert "context=prod-eu: plain line" in lines[0]
    assert "context=stage-us:" in lines[1]
    assert "sup3r-s3cret-token-xyz" not in stream.getvalue()
    assert "abcdefghijkl123" not in stream.getvalue()
    assert "[REDACTED]" in lines[1]


def test_json_log_lines_are_objects_with_context() -> None:
    stream = io.StringIO()
    setup_logging(fmt="json", level="info", stream=stream)
    replace_secrets(["an0ther-s3cret-value"])
    log = logging.getLogger("kubeinv.running")
    with cluster_scope("prod-eu", "/k/prod.yaml"):
        log.info("collected %d nodes", 5, extra={"cluster_id": "uid-9"})
    log.debug("not shown at info")
    log.info("leak? an0ther-s3cret-value")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = msgspec.json.decode(lines[0])
    assert first["message"] == "collected 5 nodes"
    assert first["context"] == "prod-eu"
    assert first["kubeconfig"] == "/k/prod.yaml"
    assert first["cluster_id"] == "uid-9"
    assert first["level"] == "info"
    assert "ts" in first
    second = msgspec.json.decode(lines[1])
    assert "context" not in second
    assert "an0ther-s3cret-value" not in lines[1]
