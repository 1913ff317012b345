"""The real kubectl as an oracle: it must accept the simulator as a kube-apiserver."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from collector.sim import ClusterSpec, Fleet
from tests.plugins.sim import FleetFactory

pytestmark = pytest.mark.kubectl


async def kubectl(
    kubectl_path: str, fleet: Fleet, *args: str, kubeconfig: Path | None = None
) -> tuple[int, str, str]:
    """Run kubectl without blocking the loop that serves the fleet."""
    proc = await asyncio.create_subprocess_exec(
        kubectl_path,
        "--kubeconfig",
        str(kubeconfig or fleet.kubeconfig),
        "--cache-dir",
        str(fleet.dir / "kubectl-cache"),
        "--request-timeout",
        "20s",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_version_json(sim_fleet: FleetFactory, kubectl_path: str) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="c", flavour="eks", version="v1.29.8")])
    code, out, err = await kubectl(kubectl_path, fleet, "version", "-o", "json")
    assert code == 0, err
    server = json.loads(out)["serverVersion"]
    assert server == fleet.clusters[0].version_info
    assert server["minor"] == "29+"


async def test_get_nodes_wide_fills_every_column(
    sim_fleet: FleetFactory, kubectl_path: str
) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="c", flavour="kubeadm", nodes=6)])
    cluster = fleet.clusters[0]
    code, out, err = await kubectl(kubectl_path, fleet, "get", "nodes", "-o", "wide")
    assert code == 0, err
    lines = out.splitlines()
    header = lines[0].split()
    assert header == [
        "NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
        "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME",
    ]  # fmt: skip
    rows = lines[1:]
    assert [r.split()[0] for r in rows] == cluster.node_names
    for row in rows:
        assert "<none>" not in row and "<unknown>" not in row, row
        # OS-IMAGE has spaces ("Ubuntu 22.04.4 LTS"): 10 columns, at least 10 words
        assert len(row.split()) >= len(header), row
    statuses = {r.split()[1] for r in rows}
    assert statuses <= {
        "Ready",
        "NotReady",
        "Ready,SchedulingDisabled",
        "NotReady,SchedulingDisabled",
    }


async def test_get_nodes_really_pages(sim_fleet: FleetFactory, kubectl_path: str) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="c", nodes=7)])
    cluster = fleet.clusters[0]
    code, out, err = await kubectl(kubectl_path, fleet, "get", "nodes", "--chunk-size=2")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == cluster.node_names
    node_lists = [r for r in cluster.request_log if r.path == "/api/v1/nodes"]
    assert len(node_lists) == 4  # 2 + 2 + 2 + 1
    assert all("limit=2" in r.query for r in node_lists)
    assert sum("continue=" in r.query for r in node_lists) == 3
    assert {r.method for r in cluster.request_log} == {"GET"}


async def test_api_resources_wide(sim_fleet: FleetFactory, kubectl_path: str) -> None:
    fleet = await sim_fleet(
        clusters=[
            ClusterSpec(name="new", version="v1.31.2"),
            ClusterSpec(name="beta", version="v1.28.9"),
            ClusterSpec(name="legacy", version="v1.24.17"),
        ]
    )
    for cluster in fleet.clusters:
        code, out, err = await kubectl(
            kubectl_path, fleet, "--context", cluster.name, "api-resources", "-o", "wide"
        )
        assert code == 0, err
        by_name: dict[str, str] = {}
        for line in out.splitlines()[1:]:
            words = line.split()
            api_version = next(w for w in words if "/" in w or w == "v1")
            by_name.setdefault(words[0], api_version)
        assert by_name["nodes"] == "v1"
        assert by_name["deployments"] == "apps/v1"
        assert by_name["alertmanagerconfigs"] == "monitoring.coreos.com/v1alpha1"
        assert by_name["prometheuses"] == "monitoring.coreos.com/v1"
        paths = {r.path for r in cluster.request_log}
        if cluster.name == "legacy":
            assert (
                "/apis/apps/v1" in paths
            )  # no aggregated discovery: one request per group-version
            assert by_name["cronjobs"] == "batch/v1"
        else:
            accept = [r.headers.get("Accept", "") for r in cluster.request_log if r.path == "/apis"]
            assert any("apidiscovery.k8s.io" in a for a in accept)
            assert "/apis/apps/v1" not in paths  # aggregated discovery answered everything


async def test_api_resources_reports_unavailable_metrics(
    sim_fleet: FleetFactory, kubectl_path: str
) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="c", version="v1.24.17")])
    fleet.clusters[0].faults.unavailable("metrics.k8s.io")
    code, out, err = await kubectl(kubectl_path, fleet, "api-resources")
    assert code != 0
    assert "metrics.k8s.io/v1beta1" in err
    assert "deployments" in out


async def test_cluster_info(sim_fleet: FleetFactory, kubectl_path: str) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="c", flavour="gke")])
    cluster = fleet.clusters[0]
    code, out, err = await kubectl(kubectl_path, fleet, "cluster-info")
    assert code == 0, err
    plain = out.replace("\x1b[0;32m", "").replace("\x1b[0;33m", "").replace("\x1b[0m", "")
    assert f"Kubernetes control plane is running at {cluster.server_url}" in plain
    base = f"{cluster.server_url}/api/v1/namespaces/kube-system/services"
    assert f"KubeDNS is running at {base}/kube-dns:dns/proxy" in plain
    assert f"Metrics-server is running at {base}/https:metrics-server:https/proxy" in plain
    assert f"GLBCDefaultBackend is running at {base}/default-http-backend:http/proxy" in plain


@pytest.mark.parametrize("layout", ["single", "kubeadm"])
async def test_every_user_kind_works_with_kubectl(
    sim_fleet: FleetFactory, kubectl_path: str, layout: str
) -> None:
    kinds = ("cert-data", "cert-file", "token", "token-file", "exec")
    fleet = await sim_fleet(clusters=[ClusterSpec(name="c", users=kinds)], layout=layout)
    for ctx in fleet.contexts:
        code, out, err = await kubectl(
            kubectl_path, fleet, "--context", ctx.name,
            "get", "--raw", "/api/v1/namespaces/kube-system",
            kubeconfig=ctx.path,
        )  # fmt: skip
        assert code == 0, (ctx, err)
        assert json.loads(out)["metadata"]["uid"] == fleet.clusters[0].uid
    users = {r.user for r in fleet.clusters[0].request_log}
    assert "kubernetes-admin" in users
    assert "system:serviceaccount:kube-system:sim-exec" in users
    assert "system:serviceaccount:kube-system:sim-token-file" in users
