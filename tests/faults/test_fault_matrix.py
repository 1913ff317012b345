"""The fault matrix of issue #6, end to end: the real ``kubeinv collect`` in a subprocess, the
simulator with fault injection, real PostgreSQL.

For every fault: the faulty target's status and error class in ``inventory.cluster_collection``;
the healthy cluster of the same run stored in full; the run ends within its deadline plus a
margin (a hang guard for a noisy machine, not a benchmark); the exit code; GET requests only.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.sim import ClusterSpec, Fleet, FleetSpec

from .harness import (
    CLUSTER_TIMEOUT,
    Ledger,
    Result,
    assert_get_only,
    assert_stored_in_full,
    assert_within_deadline,
    cli_env,
    collect_argv,
    connect,
    expected_api_resources,
    kubeinv,
    latest_ledger,
    stored_state,
)

pytestmark = pytest.mark.slow


async def collect(
    fleet: Fleet,
    dsn: str,
    tmp_path: Path,
    *extra: str,
    kubeconfigs: list[Path] | None = None,
    cluster_timeout: float = CLUSTER_TIMEOUT,
    expect_code: int = 1,
) -> tuple[Result, Ledger]:
    argv = collect_argv(
        kubeconfigs if kubeconfigs is not None else fleet.kubeconfig_paths,
        dsn,
        *extra,
        cluster_timeout=cluster_timeout,
    )
    result = await kubeinv(*argv, env=cli_env(tmp_path / "home"))
    assert result.code == expect_code, str(result)
    assert "Traceback" not in result.stderr, str(result)
    ledger = await latest_ledger(dsn)
    assert_within_deadline(result, ledger, cluster_timeout)
    assert_get_only(fleet.clusters)
    # the JSON printed on stdout agrees with the ledger
    doc = result.json()
    assert doc["run_id"] == ledger.run_id
    printed = {o["context_name"]: (o["status"], o["error_class"]) for o in doc["outcomes"]}
    stored = {c: (r["status"], r["error_class"]) for c, r in ledger.rows.items()}
    assert printed == stored
    return result, ledger


def status(ledger: Ledger, context: str) -> tuple[str, str | None]:
    row = ledger[context]
    return row["status"], row["error_class"]


async def start_fleet(sim_fleet: Any, *clusters: ClusterSpec) -> Fleet:
    fleet: Fleet = await sim_fleet(clusters=[ClusterSpec(name="good", nodes=4), *clusters])
    return fleet


# --- network and TLS ------------------------------------------------------------------------


async def test_network_and_tls_failures_are_per_target(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(
        sim_fleet,
        ClusterSpec(name="refused", server="closed-port"),
        ClusterSpec(name="silent", server="no-answer"),
        ClusterSpec(name="foreign", server="foreign-ca"),
    )
    result, ledger = await collect(fleet, pg_dsn, tmp_path)
    assert status(ledger, "good") == ("ok", None)
    assert status(ledger, "refused") == ("failed", "Unreachable")
    assert status(ledger, "silent") == ("failed", "Timeout")
    assert status(ledger, "foreign") == ("failed", "TLS")
    for name in ("refused", "silent", "foreign"):
        row = ledger[name]
        assert row["cluster_id"] is None and row["error_message"], row
        assert row["server_url"] == fleet.cluster(name).server_url
    assert "certificate" in ledger["foreign"]["error_message"].lower()
    assert ledger.run_status == "partial"
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))
    # the healthy cluster did not wait for the silent one
    assert ledger["good"]["duration_ms"] < CLUSTER_TIMEOUT * 1000
    # the user sees which target failed and why, on stderr
    for name in ("refused", "silent", "foreign"):
        assert f"context={name}" in result.stderr or name in result.stderr


# --- refusals -------------------------------------------------------------------------------


async def test_401_fails_the_target_and_keeps_the_others(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="rejected", users=("invalid-token",)))
    _result, ledger = await collect(fleet, pg_dsn, tmp_path)
    assert status(ledger, "rejected") == ("failed", "Auth")
    assert "401" in ledger["rejected"]["error_message"]
    # authentication failures are not retried: each identification request was sent once
    paths = [r.path for r in fleet.cluster("rejected").request_log]
    assert paths and len(paths) == len(set(paths)), paths
    assert status(ledger, "good") == ("ok", None)
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


async def test_403_on_nodes_is_partial_and_keeps_version_api_and_last_nodes(
    sim_fleet, pg_dsn, tmp_path
):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="limited", nodes=3))
    limited = fleet.cluster("limited")
    await collect(fleet, pg_dsn, tmp_path, expect_code=0)
    before = await assert_stored_in_full(pg_dsn, limited)

    limited.upgrade("v1.32.1")
    limited.faults.fail("/api/v1/nodes", 403)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path)
    assert status(ledger, "limited") == ("partial", "Forbidden")
    assert ledger["limited"]["node_count"] is None
    assert ledger["limited"]["api_resource_count"] == len(expected_api_resources(limited))
    after = await stored_state(pg_dsn, limited.uid)
    # version and API resources are the new ones; the nodes are the last known, not deleted
    assert after["cluster"]["git_version"] == "v1.32.1"
    assert after["api"] == expected_api_resources(limited)
    assert after["nodes"] == before["nodes"]
    assert after["cluster"]["last_status"] == "partial"
    assert status(ledger, "good") == ("ok", None)
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


# --- throttling and server errors -----------------------------------------------------------


def _paths(cluster: Any, path: str) -> int:
    return sum(1 for r in cluster.request_log if r.path == path)


async def test_429_retry_after_is_honoured(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="busy", nodes=2))
    busy = fleet.cluster("busy")
    busy.faults.fail("/api/v1/nodes", 429, times=1, retry_after=2)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path, expect_code=0)
    assert status(ledger, "busy") == ("ok", None)
    assert _paths(busy, "/api/v1/nodes") == 2
    # the retry waited for Retry-After (2 s) before asking again
    assert ledger["busy"]["duration_ms"] >= 1900
    await assert_stored_in_full(pg_dsn, busy)
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


async def test_429_forever_is_bounded(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="busy", nodes=2))
    busy = fleet.cluster("busy")
    busy.faults.fail("/api/v1/nodes", 429, retry_after=1)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path, "--max-retries", "2")
    assert status(ledger, "busy") == ("partial", "Throttled")
    assert _paths(busy, "/api/v1/nodes") == 3  # the first try and 2 retries, no more
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


async def test_429_retry_after_longer_than_the_deadline_is_bounded(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="busy", nodes=2))
    busy = fleet.cluster("busy")
    busy.faults.fail("/api/v1/nodes", 429, retry_after=3600)
    result, ledger = await collect(fleet, pg_dsn, tmp_path, cluster_timeout=3)
    assert ledger["busy"]["status"] == "partial"
    assert ledger["busy"]["error_class"] in ("Throttled", "Timeout")
    assert ledger["busy"]["duration_ms"] <= 3000 + 1500
    assert result.elapsed < 3600
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


async def test_500_a_few_times_then_success_is_retried(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="flaky", nodes=3))
    flaky = fleet.cluster("flaky")
    flaky.faults.fail("/api/v1/nodes", 500, times=3)
    flaky.faults.fail("/version", 503, times=1)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path, expect_code=0)
    assert status(ledger, "flaky") == ("ok", None)
    assert _paths(flaky, "/api/v1/nodes") == 4
    await assert_stored_in_full(pg_dsn, flaky)
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


async def test_500_forever_is_bounded_by_max_retries(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="broken", nodes=3))
    broken = fleet.cluster("broken")
    broken.faults.fail("/api/v1/nodes", 500)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path, cluster_timeout=20)
    assert status(ledger, "broken") == ("partial", "ServerError")
    assert _paths(broken, "/api/v1/nodes") == 5  # 1 + the default 4 retries
    # exponential backoff 0.2, 0.4, 0.8, 1.6 s (with jitter, at most 5 s each): well within 20 s
    assert ledger["broken"]["duration_ms"] < 20_000
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


@pytest.mark.parametrize("code", [400, 404, 405, 409])
async def test_other_4xx_are_not_retried(sim_fleet, pg_dsn, tmp_path, code):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="odd", nodes=3))
    odd = fleet.cluster("odd")
    odd.faults.fail("/api/v1/nodes", code)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path)
    assert ledger["odd"]["status"] == "partial"
    assert ledger["odd"]["error_class"] in ("Api", "NotFound")
    assert _paths(odd, "/api/v1/nodes") == 1
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


# --- discovery and lists --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "error_class"),
    [("v1.31.2", "StaleGroup"), ("v1.25.16", "ServerError")],
    ids=["aggregated", "legacy"],
)
async def test_503_from_one_aggregated_group_is_partial(
    sim_fleet, pg_dsn, tmp_path, version, error_class
):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="metrics", version=version, nodes=2))
    cluster = fleet.cluster("metrics")
    assert cluster.is_aggregated_group("metrics.k8s.io")
    cluster.faults.unavailable("metrics.k8s.io")
    _result, ledger = await collect(fleet, pg_dsn, tmp_path, cluster_timeout=10)
    assert status(ledger, "metrics") == ("partial", error_class)
    assert "metrics.k8s.io" in ledger["metrics"]["error_message"]
    state = await stored_state(pg_dsn, cluster.uid)
    others = {k for k in expected_api_resources(cluster) if k[0] != "metrics.k8s.io"}
    assert others <= state["api"]  # every other group is kept
    assert {k[0] for k in state["api"]} >= {"", "apps", "batch"}
    assert set(state["nodes"]) == set(cluster.node_names)
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


async def test_expired_continue_token_restarts_the_list(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="big", nodes=9))
    big = fleet.cluster("big")
    big.faults.expire_continue_tokens(1)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path, "--page-size", "2", expect_code=0)
    assert status(ledger, "big") == ("ok", None)
    lists = [r for r in big.request_log if r.path == "/api/v1/nodes"]
    firsts = [r for r in lists if "continue=" not in r.query]
    assert len(firsts) == 2, [r.query for r in lists]  # the list started again from the top
    await assert_stored_in_full(pg_dsn, big)
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


@pytest.mark.parametrize("mode", ["truncated", "garbage"])
async def test_malformed_node_list_is_partial(sim_fleet, pg_dsn, tmp_path, mode):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="mangled", nodes=3))
    mangled = fleet.cluster("mangled")
    mangled.faults.malform("/api/v1/nodes", mode)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path)
    assert status(ledger, "mangled") == ("partial", "MalformedResponse")
    state = await stored_state(pg_dsn, mangled.uid)
    assert state["api"] == expected_api_resources(mangled)
    assert state["nodes"] == {}
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


@pytest.mark.parametrize("mode", ["truncated", "garbage"])
async def test_malformed_version_fails_the_target(sim_fleet, pg_dsn, tmp_path, mode):
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="mangled", nodes=3))
    fleet.cluster("mangled").faults.malform("/version", mode)
    _result, ledger = await collect(fleet, pg_dsn, tmp_path)
    assert status(ledger, "mangled") == ("failed", "MalformedResponse")
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


# --- exec plugins ---------------------------------------------------------------------------


def _exec_kubeconfig(fleet: Fleet, tmp_path: Path, plugins: dict[str, str]) -> Path:
    """A kubeconfig with one context per plugin script (name -> shell body), reaching the
    fleet's 'good' cluster through an exec user."""
    doc = yaml.safe_load(fleet.kubeconfig.read_text())
    cluster_entry = next(c for c in doc["clusters"] if c["name"] == "good")
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [],
        "contexts": [],
        "current-context": next(iter(plugins)),
    }
    for name, body in plugins.items():
        command = f"./{name}.sh"
        if body:
            script = tmp_path / f"{name}.sh"
            script.write_text("#!/bin/sh\n" + body)
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
        out["users"].append(
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": command,
                        "interactiveMode": "Never",
                    }
                },
            }
        )
        out["contexts"].append({"name": name, "context": {"cluster": "good", "user": name}})
    path = tmp_path / "exec.kubeconfig"
    path.write_text(yaml.safe_dump(out))
    return path


async def test_missing_failing_and_hanging_exec_plugins_are_bounded(sim_fleet, pg_dsn, tmp_path):
    fleet = await start_fleet(sim_fleet)
    pidfile = tmp_path / "hanging.pid"
    kubeconfig = _exec_kubeconfig(
        fleet,
        tmp_path,
        {
            "missing": "",  # no such file
            "failing": "echo 'plugin: cannot reach the identity provider' >&2\nexit 3\n",
            "hanging": f"echo $$ > {pidfile}\nexec sleep 300\n",
            "garbage": "echo 'this is not an ExecCredential'\n",
        },
    )
    started = time.monotonic()
    _result, ledger = await collect(
        fleet, pg_dsn, tmp_path, kubeconfigs=[*fleet.kubeconfig_paths, kubeconfig]
    )
    for name in ("missing", "failing", "hanging", "garbage"):
        assert status(ledger, name) == ("failed", "ExecPlugin"), ledger[name]
        message = ledger[name]["error_message"]
        assert message, name
    assert "cannot reach the identity provider" in ledger["failing"]["error_message"]
    assert "missing.sh" in ledger["missing"]["error_message"]
    # the hanging plugin was stopped by the request timeout (2 s), well before the deadline
    assert ledger["hanging"]["duration_ms"] < CLUSTER_TIMEOUT * 1000 + 1000
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed, not left behind
    assert time.monotonic() - started < 60
    assert status(ledger, "good") == ("ok", None)
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))


# --- bad kubeconfigs ------------------------------------------------------------------------


async def test_malformed_kubeconfig_and_broken_contexts_among_good_ones(
    sim_fleet, pg_dsn, tmp_path
):
    fleet = await sim_fleet(
        FleetSpec(
            clusters=[ClusterSpec(name="good", nodes=4), ClusterSpec(name="also-good", nodes=2)],
            layout="per-cluster",
        )
    )
    malformed = tmp_path / "malformed.kubeconfig"
    malformed.write_text("apiVersion: v1\nkind: Config\ncontexts: [\n  - name: x\n  oops: {\n")
    doc = yaml.safe_load(fleet.kubeconfig.read_text())
    doc["contexts"] = [
        {"name": "no-cluster", "context": {"cluster": "nowhere", "user": doc["users"][0]["name"]}},
        {"name": "no-user", "context": {"cluster": "good", "user": "nobody"}},
    ]
    doc["current-context"] = "no-cluster"
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text(yaml.safe_dump(doc))
    paths = [fleet.kubeconfig_paths[0], malformed, broken, fleet.kubeconfig_paths[1]]
    result, ledger = await collect(fleet, pg_dsn, tmp_path, kubeconfigs=paths)

    file_row = next(r for r in ledger.rows.values() if r["kubeconfig_path"] == str(malformed))
    assert (file_row["status"], file_row["error_class"]) == ("failed", "Kubeconfig")
    assert str(malformed) in file_row["error_message"]
    assert status(ledger, "no-cluster") == ("failed", "BrokenContext")
    assert status(ledger, "no-user") == ("failed", "BrokenContext")
    assert "nowhere" in ledger["no-cluster"]["error_message"]
    assert "nobody" in ledger["no-user"]["error_message"]
    assert ledger["no-user"]["kubeconfig_path"] == str(broken)
    # stderr names the file and the context of every problem
    assert str(malformed) in result.stderr
    for context in ("no-cluster", "no-user"):
        line = next(ln for ln in result.stderr.splitlines() if context in ln)
        assert str(broken) in line or "broken.kubeconfig" in line, line
    # nothing was sent to the broken contexts' servers: only the good contexts' requests
    assert status(ledger, "good") == ("ok", None)
    assert status(ledger, "also-good") == ("ok", None)
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))
    await assert_stored_in_full(pg_dsn, fleet.cluster("also-good"))


async def test_only_unusable_kubeconfigs_is_no_target_exit_2(pg_dsn, tmp_path):
    """Nothing to collect at all (exit 2), and the reason names every file."""
    malformed = tmp_path / "malformed.kubeconfig"
    malformed.write_text(":\n- [")
    missing = tmp_path / "typo.kubeconfig"
    argv = collect_argv([malformed, missing], pg_dsn)
    result = await kubeinv(*argv, env=cli_env(tmp_path / "home"))
    assert result.code == 2, str(result)
    error = [ln for ln in result.stderr.splitlines() if ln.startswith("kubeinv: error:")]
    assert len(error) == 1, str(result)
    assert "no target" in error[0]
    assert str(malformed) in error[0] and str(missing) in error[0]
    assert "Traceback" not in result.stderr
    conn = await connect(pg_dsn)
    try:  # nothing was collected: no run in the ledger
        assert await conn.fetchval("SELECT count(*) FROM inventory.collection_run") == 0
    finally:
        await conn.close()


async def test_no_target_at_all_exits_2(pg_dsn, tmp_path):
    empty = tmp_path / "empty.kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    result = await kubeinv(*collect_argv([empty], pg_dsn), env=cli_env(tmp_path / "home"))
    assert result.code == 2, str(result)
    assert "no target" in result.stderr


# --- hostile node data ----------------------------------------------------------------------


async def test_hostile_node_fields_end_to_end(sim_fleet, pg_dsn, tmp_path):
    """Absurd quantities and a huge label map on some nodes: no crash, the rest is kept.

    (Property tests of the normalizer itself, with arbitrary mutations: tests/unit/test_nodes.py.)
    """
    fleet = await start_fleet(sim_fleet, ClusterSpec(name="odd", nodes=5))
    odd = fleet.cluster("odd")
    first, second, third = odd.node_names[:3]
    odd.set_capacity(first, {"cpu": "1e999999", "memory": "lots"}, {"cpu": "-3", "pods": "x"})
    odd.set_capacity(second, {"nvidia.com/gpu": "9" * 400}, {"memory": "12Qi"})
    odd.set_labels(third, {f"example.com/label-{i}": "v" * 60 for i in range(5000)})
    result = await kubeinv(
        *collect_argv(fleet.kubeconfig_paths, pg_dsn), env=cli_env(tmp_path / "home")
    )
    assert result.code in (0, 1), str(result)
    assert "Traceback" not in result.stderr
    ledger = await latest_ledger(pg_dsn)
    assert ledger["odd"]["status"] in ("ok", "partial")
    state = await stored_state(pg_dsn, odd.uid)
    # every node whose data is usable is stored; the hostile ones are stored or reported
    assert set(odd.node_names[3:]) <= set(state["nodes"])
    assert third in state["nodes"] and len(state["nodes"][third]["labels"]) >= 5000
    for name in (first, second):
        assert name in state["nodes"] or name in result.stderr
    await assert_stored_in_full(pg_dsn, fleet.cluster("good"))
