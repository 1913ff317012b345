"""The transport against the simulator over real HTTPS: one connection per cluster, exec
credentials that expire (cache, expiry during a paged list, a 401 re-run), no credential file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

from collector.gathering import GatherOptions, gather
from collector.kube.exec_plugin import RUN_COUNTS, ExecCredentialCache
from collector.settings import CollectionSettings
from collector.sim import ClusterSpec, Fleet
from collector.targets import load_targets

EXPIRES = "2030-01-01T00:00:00Z"
EXPIRES_AT = 1893456000.0  # the same, as Unix time

# An exec plugin that mints a new token per run ("tok-1", "tok-2", ...), counting its runs in a
# file; the expiry it reports is read from the file $SIM_EXPIRES names (none when empty).
_PLUGIN = """#!{python}
import json, os, sys
count_file = os.environ["SIM_COUNT_FILE"]
n = int(open(count_file).read() or 0) + 1 if os.path.exists(count_file) else 1
open(count_file, "w").write(str(n))
status = {{"token": os.environ.get("SIM_PREFIX", "tok-") + str(n)}}
expires = open(os.environ["SIM_EXPIRES"]).read().strip()
if expires:
    status["expirationTimestamp"] = expires
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": status}}))
"""


def exec_kubeconfig(
    fleet: Fleet, directory: Path, *, expires: str, contexts: int = 1, prefix: str = "tok-"
) -> tuple[Path, Path]:
    """A kubeconfig whose contexts all reach the fleet's first cluster through the plugin."""
    plugin = directory / "plugin.py"
    plugin.write_text(_PLUGIN.format(python=sys.executable))
    plugin.chmod(0o755)
    (directory / "expires").write_text(expires)
    count_file = directory / "runs"
    cluster = fleet.clusters[0]
    ca = base64.b64encode(fleet.ca_path.read_bytes()).decode()
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "./plugin.py",
            "env": [
                {"name": "SIM_COUNT_FILE", "value": str(count_file)},
                {"name": "SIM_EXPIRES", "value": str(directory / "expires")},
                {"name": "SIM_PREFIX", "value": prefix},
            ],
            "interactiveMode": "Never",
        }
    }
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {"server": cluster.server_url, "certificate-authority-data": ca},
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": f"ctx-{i}", "context": {"cluster": "c", "user": "u"}} for i in range(contexts)
        ],
        "current-context": "ctx-0",
    }
    path = directory / "kubeconfig"
    path.write_text(json.dumps(doc))
    return path, count_file


def runs(count_file: Path) -> int:
    return int(count_file.read_text()) if count_file.exists() else 0


def unauthorized(cluster) -> int:
    return sum(1 for r in cluster.request_log if r.user is None)


class Clock:
    """The exec credential cache's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def collect(path: Path, cache: ExecCredentialCache, **options):
    targets = load_targets([str(path)]).targets
    return await gather(
        targets,
        GatherOptions(CollectionSettings(timeout=10, **options)),
        exec_credentials=cache,
    )


async def test_one_connection_per_cluster_for_all_its_requests(sim_fleet):
    fleet = await sim_fleet(
        clusters=[ClusterSpec(nodes=12, users=(kind,)) for kind in ("cert-data", "token", "exec")]
    )
    result = await gather(
        load_targets([str(fleet.kubeconfig)]).targets,
        GatherOptions(CollectionSettings(page_size=5)),
    )
    assert [o.status for o in result.outcomes] == ["ok"] * 3
    for cluster in fleet.clusters:
        assert len(cluster.request_log) >= 8  # identity, services, discovery, 3 node pages
        assert cluster.connections == 1, cluster.name


async def test_exec_credential_cached_until_expiry_across_contexts_and_runs(sim_fleet, tmp_path):
    fleet = await sim_fleet(clusters=[ClusterSpec(users=("token",))])
    cluster = fleet.clusters[0]
    for n in range(1, 6):
        cluster.tokens[f"tok-{n}"] = "exec-user"
    path, count = exec_kubeconfig(fleet, tmp_path, expires=EXPIRES, contexts=3)
    clock = Clock(EXPIRES_AT - 3600)
    cache = ExecCredentialCache(clock=clock)
    before = dict(RUN_COUNTS)
    for _ in range(3):
        result = await collect(path, cache)
        assert [o.status for o in result.outcomes] == ["ok"] * 3
    assert runs(count) == 1  # three contexts, three runs: one plugin run
    assert RUN_COUNTS["ok"] - before["ok"] == 1
    clock.now = EXPIRES_AT + 1  # expired: the next run runs the plugin again
    (tmp_path / "expires").write_text("2031-01-01T00:00:00+00:00")
    result = await collect(path, cache)
    assert [o.status for o in result.outcomes] == ["ok"] * 3
    assert runs(count) == 2
    assert unauthorized(cluster) == 0


async def test_exec_credential_without_expiry_is_obtained_again_every_run(sim_fleet, tmp_path):
    fleet = await sim_fleet(clusters=[ClusterSpec(users=("token",))])
    for n in range(1, 6):
        fleet.clusters[0].tokens[f"tok-{n}"] = "exec-user"
    path, count = exec_kubeconfig(fleet, tmp_path, expires="", contexts=2)
    cache = ExecCredentialCache()
    for expected in (1, 2, 3):
        result = await collect(path, cache)
        assert [o.status for o in result.outcomes] == ["ok"] * 2
        assert runs(count) == expected  # once per run, shared by the run's two contexts


async def test_credential_expiring_during_a_paged_node_list_is_renewed_before_a_request(
    sim_fleet, tmp_path
):
    fleet = await sim_fleet(clusters=[ClusterSpec(nodes=30, users=("token",))])
    cluster = fleet.clusters[0]
    cluster.tokens["tok-1"] = "exec-user"
    cluster.tokens["tok-2"] = "exec-user"
    path, count = exec_kubeconfig(fleet, tmp_path, expires=EXPIRES)
    clock = Clock(EXPIRES_AT - 60)
    cache = ExecCredentialCache(clock=clock)
    pages = 0

    class Log(list):
        """The server's request log; expires the credential (on the client's clock and on the
        server) as page 3 of the node list is served."""

        def append(self, record):
            nonlocal pages
            super().append(record)
            if record.path == "/api/v1/nodes":
                pages += 1
                if pages == 3:
                    clock.now = EXPIRES_AT + 1
                    cluster.tokens.pop("tok-1")
                    (tmp_path / "expires").write_text("2031-01-01T00:00:00Z")

    cluster.request_log = Log()
    result = await collect(path, cache, page_size=3)
    (outcome,) = result.outcomes
    assert outcome.status == "ok", outcome.error_message
    assert outcome.node_count == 30
    assert pages == 10
    assert runs(count) == 2  # run again once the credential expired, mid-list
    assert not any(r.user is None for r in cluster.request_log)  # never a 401: renewed before


async def test_401_runs_the_plugin_again_once_and_retries(sim_fleet, tmp_path):
    fleet = await sim_fleet(clusters=[ClusterSpec(users=("token",))])
    cluster = fleet.clusters[0]
    cluster.tokens["tok-1"] = "exec-user"
    cluster.tokens["tok-2"] = "exec-user"
    path, count = exec_kubeconfig(fleet, tmp_path, expires=EXPIRES)
    cache = ExecCredentialCache(clock=Clock(EXPIRES_AT - 3600))
    assert (await collect(path, cache)).outcomes[0].status == "ok"
    cluster.tokens.pop("tok-1")  # revoked on the server while still valid on the client
    result = await collect(path, cache)
    (outcome,) = result.outcomes
    assert outcome.status == "ok", outcome.error_message
    assert runs(count) == 2
    assert 1 <= unauthorized(cluster) <= 2  # identity's two concurrent requests may both see it


async def test_401_after_the_plugin_ran_again_fails_as_auth(sim_fleet, tmp_path):
    fleet = await sim_fleet(clusters=[ClusterSpec(users=("token",))])
    fleet.clusters[0]
    path, count = exec_kubeconfig(fleet, tmp_path, expires=EXPIRES, prefix="refused-")
    cache = ExecCredentialCache(clock=Clock(EXPIRES_AT - 3600))
    result = await collect(path, cache)
    (outcome,) = result.outcomes
    assert outcome.status == "failed" and outcome.error_class == "Auth"
    assert runs(count) == 2  # the first credential, and one more after the 401; no loop
    assert "refused-" not in (outcome.error_message or "")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_no_credential_file_or_descriptor_left_over_runs(sim_fleet, tmp_path, monkeypatch):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))  # others share /tmp
    kinds = ("cert-data", "cert-file", "token", "token-file", "exec")
    fleet = await sim_fleet(clusters=[ClusterSpec(users=(kind,)) for kind in kinds])
    targets = load_targets([str(fleet.kubeconfig)]).targets

    def descriptors() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                found.append(os.readlink(f"/proc/self/fd/{fd}"))
        return found

    counts = []
    for _ in range(4):
        result = await gather(targets, GatherOptions(), exec_credentials=ExecCredentialCache())
        assert [o.status for o in result.outcomes] == ["ok"] * len(kinds)
        counts.append(len(descriptors()))
    assert counts[-1] <= counts[1], counts  # flat from the second run on
    assert [d for d in descriptors() if "kubeinv" in d or "memfd" in d] == []
    assert os.listdir(private_tmp) == []


async def test_plugin_runs_are_counted_in_the_metrics(sim_fleet, tmp_path):
    from collector.metrics import Metrics  # noqa: PLC0415

    def exposed(result: str) -> float:
        for line in Metrics().render().decode().splitlines():
            if line.startswith(f'kubeinv_exec_plugin_runs_total{{result="{result}"}}'):
                return float(line.split()[-1])
        raise AssertionError("kubeinv_exec_plugin_runs_total is not exposed")

    fleet = await sim_fleet(clusters=[ClusterSpec(users=("token",))])
    fleet.clusters[0].tokens["tok-1"] = "exec-user"
    path, _count = exec_kubeconfig(fleet, tmp_path, expires="")
    ok, failed = exposed("ok"), exposed("failed")
    assert (await collect(path, ExecCredentialCache())).outcomes[0].status == "ok"
    (tmp_path / "plugin.py").write_text("#!/bin/sh\nexit 3\n")
    assert (await collect(path, ExecCredentialCache())).outcomes[0].error_class == "ExecPlugin"
    assert (exposed("ok"), exposed("failed")) == (ok + 1, failed + 1)


async def test_exec_plugin_client_certificate_over_https(sim_fleet, tmp_path):
    fleet = await sim_fleet(clusters=[ClusterSpec(nodes=2, users=("token",))])
    cert = (fleet.dir / "pki" / "admin.crt").read_text()
    key = (fleet.dir / "pki" / "admin.key").read_text()
    plugin = tmp_path / "cert-plugin.py"
    status = {"clientCertificateData": cert, "clientKeyData": key}
    doc = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential"}
    plugin.write_text(
        f"#!{sys.executable}\nimport json\nprint(json.dumps({{**{doc!r}, 'status': {status!r}}}))\n"
    )
    plugin.chmod(0o755)
    path, _count = exec_kubeconfig(fleet, tmp_path, expires="")
    config = json.loads(path.read_text())
    config["users"][0]["user"]["exec"]["command"] = str(plugin)
    path.write_text(json.dumps(config))
    result = await collect(path, ExecCredentialCache())
    assert result.outcomes[0].status == "ok", result.outcomes[0].error_message
    assert {r.user for r in fleet.clusters[0].request_log} == {"kubernetes-admin"}


async def test_a_connection_the_server_closed_while_idle_is_opened_again(sim_fleet):
    import asyncio  # noqa: PLC0415

    from collector.kube.transport import Endpoint, HTTPConnection  # noqa: PLC0415

    fleet = await sim_fleet(clusters=[ClusterSpec(nodes=1)])
    cluster = fleet.clusters[0]
    connection = HTTPConnection(Endpoint(cluster.server_url, fleet.client_ssl_context()))
    assert (await connection.get("/version", (), [("Accept", "application/json")])).status == 200
    for server in fleet._lowlevel:  # the API server ends its idle keep-alive connections
        for handler in list(server.connections):
            handler.force_close()
            if handler.transport is not None:
                handler.transport.close()
    await asyncio.sleep(0.2)
    async with asyncio.timeout(20):
        response = await connection.get("/version", (), [("Accept", "application/json")])
    assert response.status == 200
    assert (connection.opened, cluster.connections) == (2, 2)
    await connection.close()
