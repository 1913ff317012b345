"""Shapes and behaviour of the simulated API server, over HTTPS."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest

from collector.sim import ClusterSpec, FleetSpec
from collector.sim.cluster import decode_continue
from tests.plugins.sim import FleetFactory
from tests.sim.conftest import get

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


async def test_unauthenticated_gets_the_real_401(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet()
    cluster = fleet.clusters[0]
    reply = await get(fleet, cluster, "/version", client_cert=False)
    assert reply.status == 401
    assert len(reply.body) == 129  # byte for byte the real kube-apiserver body
    assert reply.json()["reason"] == "Unauthorized"
    reply = await get(fleet, cluster, "/version", token="not-a-token")
    assert reply.status == 401


async def test_version_namespace_and_services(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(flavour="eks", version="v1.28.5")])
    cluster = fleet.clusters[0]
    version = (await get(fleet, cluster, "/version")).json()
    assert version["minor"] == "28+" and version["gitVersion"].startswith("v1.28.5-eks-")
    ns = (await get(fleet, cluster, "/api/v1/namespaces/kube-system")).json()
    assert ns["kind"] == "Namespace" and ns["metadata"]["uid"] == cluster.uid
    all_services = (await get(fleet, cluster, "/api/v1/namespaces/kube-system/services")).json()
    assert all_services["kind"] == "ServiceList"
    assert {s["metadata"]["name"] for s in all_services["items"]} == {
        "kube-dns",
        "eks-extension-metrics-api",
    }
    selected = (
        await get(
            fleet,
            cluster,
            "/api/v1/namespaces/kube-system/services?labelSelector=kubernetes.io%2Fcluster-service%3Dtrue",
        )
    ).json()
    assert [s["metadata"]["name"] for s in selected["items"]] == ["kube-dns"]


async def test_uid_is_stable_per_seed_and_differs_between_clusters(sim_fleet: FleetFactory) -> None:
    a = await sim_fleet(FleetSpec.varied(3, seed=7))
    b = await sim_fleet(FleetSpec.varied(3, seed=7))
    assert [c.uid for c in a.clusters] == [c.uid for c in b.clusters]
    assert len({c.uid for c in a.clusters}) == 3
    for ca, cb in zip(a.clusters, b.clusters, strict=True):
        assert ca.node_names == cb.node_names
        assert [ca.node(n).body for n in ca.node_names] == [cb.node(n).body for n in cb.node_names]


@pytest.mark.parametrize(
    ("version", "accept", "expected"),
    [
        ("v1.31.2", V2, "apidiscovery.k8s.io/v2"),
        ("v1.31.2", f"{V2},{V2BETA1},application/json", "apidiscovery.k8s.io/v2"),
        ("v1.28.3", f"{V2},{V2BETA1},application/json", "apidiscovery.k8s.io/v2beta1"),
        ("v1.28.3", f"{V2},application/json", "legacy"),
        ("v1.28.3", V2, 406),
        ("v1.25.9", f"{V2},{V2BETA1},application/json", "legacy"),
        ("v1.25.9", V2BETA1, 406),
        ("v1.31.2", "application/json", "legacy"),
        ("v1.31.2", "application/vnd.kubernetes.protobuf", 406),
    ],
)
async def test_discovery_negotiation(
    sim_fleet: FleetFactory, version: str, accept: str, expected: str | int
) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(version=version)])
    cluster = fleet.clusters[0]
    for path in ("/api", "/apis"):
        reply = await get(fleet, cluster, path, accept=accept)
        if isinstance(expected, int):
            assert reply.status == expected
            assert reply.json()["reason"] == "NotAcceptable"
            continue
        assert reply.status == 200
        doc = reply.json()
        if expected == "legacy":
            assert reply.headers["Content-Type"] == "application/json"
            assert doc["kind"] == ("APIVersions" if path == "/api" else "APIGroupList")
        else:
            assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == expected
            assert reply.headers["Content-Type"].startswith(
                "application/json;g=apidiscovery.k8s.io"
            )
            if path == "/api":
                assert [i["versions"][0]["version"] for i in doc["items"]] == ["v1"]


async def test_trailing_slash_paths(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet()
    cluster = fleet.clusters[0]
    assert (await get(fleet, cluster, "/api/")).json()["kind"] == "APIVersions"
    assert (await get(fleet, cluster, "/apis/")).json()["kind"] == "APIGroupList"
    assert (await get(fleet, cluster, "/apis/apps/v1/")).json()["groupVersion"] == "apps/v1"


async def test_discovery_varies_by_version_and_has_crds(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(
        clusters=[
            ClusterSpec(name="old", version="v1.23.17"),
            ClusterSpec(name="new", version="v1.31.2"),
        ]
    )
    old, new = fleet.clusters

    async def versions(cluster, group):  # type: ignore[no-untyped-def]
        doc = (await get(fleet, cluster, "/apis")).json()
        return {g["name"]: [v["version"] for v in g["versions"]] for g in doc["groups"]}.get(group)

    assert await versions(old, "batch") == ["v1", "v1beta1"]
    assert await versions(new, "batch") == ["v1"]
    assert await versions(new, "flowcontrol.apiserver.k8s.io") == ["v1", "v1beta3"]
    assert await versions(old, "flowcontrol.apiserver.k8s.io") == ["v1beta2", "v1beta1"]
    assert await versions(new, "monitoring.coreos.com") == ["v1", "v1alpha1"]
    cronjobs = (await get(fleet, old, "/apis/batch/v1beta1")).json()
    assert [r["name"] for r in cronjobs["resources"]] == ["cronjobs", "cronjobs/status"]
    group = (await get(fleet, new, "/apis/monitoring.coreos.com")).json()
    assert group["preferredVersion"]["version"] == "v1"
    alpha = (await get(fleet, new, "/apis/monitoring.coreos.com/v1alpha1")).json()
    assert [r["name"] for r in alpha["resources"]] == ["alertmanagerconfigs"]
    v1 = (await get(fleet, new, "/apis/monitoring.coreos.com/v1")).json()
    assert "alertmanagerconfigs" not in {r["name"] for r in v1["resources"]}
    assert "prometheuses/status" in {r["name"] for r in v1["resources"]}
    agg = (await get(fleet, new, "/apis", accept=V2)).json()
    metrics = next(i for i in agg["items"] if i["metadata"]["name"] == "metrics.k8s.io")
    assert metrics["versions"][0]["freshness"] == "Current"
    # legacy and aggregated forms agree on every group-version
    legacy = (await get(fleet, new, "/apis")).json()
    assert {(g["name"], v["version"]) for g in legacy["groups"] for v in g["versions"]} == {
        (i["metadata"]["name"], v["version"]) for i in agg["items"] for v in i["versions"]
    }


async def test_node_paging_and_410(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(nodes=7)])
    cluster = fleet.clusters[0]
    first = (await get(fleet, cluster, "/api/v1/nodes?limit=3")).json()
    assert len(first["items"]) == 3 and first["metadata"]["remainingItemCount"] == 4
    token = first["metadata"]["continue"]
    rv, _start = decode_continue(token)
    assert str(rv) == first["metadata"]["resourceVersion"]
    # a mutation between pages does not change the pages of the list in progress
    cluster.add_node()
    second = (await get(fleet, cluster, f"/api/v1/nodes?limit=3&continue={token}")).json()
    third = (
        await get(
            fleet, cluster, f"/api/v1/nodes?limit=3&continue={second['metadata']['continue']}"
        )
    ).json()
    names = [n["metadata"]["name"] for p in (first, second, third) for n in p["items"]]
    assert len(names) == 7 and names == sorted(names)
    assert "continue" not in third["metadata"]

    cluster.faults.expire_continue_tokens(1)
    expired = await get(fleet, cluster, f"/api/v1/nodes?limit=3&continue={token}")
    assert expired.status == 410
    status = expired.json()
    assert status["reason"] == "Expired" and status["code"] == 410
    assert status["message"].startswith("The provided continue parameter is too old")
    # the inconsistent-continue token of the 410 resumes at the latest version
    resumed = await get(
        fleet, cluster, f"/api/v1/nodes?limit=100&continue={status['metadata']['continue']}"
    )
    assert resumed.status == 200 and len(resumed.json()["items"]) == 5  # 8 nodes, 3 before start
    bad = await get(fleet, cluster, "/api/v1/nodes?limit=3&continue=garbage!")
    assert bad.status == 400 and bad.json()["reason"] == "BadRequest"


async def test_heartbeats_change_on_every_request(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet()
    cluster = fleet.clusters[0]
    name = cluster.node_names[0]
    seen = set()
    for _ in range(3):
        node = (await get(fleet, cluster, f"/api/v1/nodes/{name}")).json()
        assert node["kind"] == "Node"
        seen.add(node["status"]["conditions"][0]["lastHeartbeatTime"])
    assert len(seen) == 3
    missing = await get(fleet, cluster, "/api/v1/nodes/nope")
    assert missing.status == 404 and missing.json()["details"]["name"] == "nope"


async def test_node_table_form(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(nodes=5)])
    cluster = fleet.clusters[0]
    table = (await get(fleet, cluster, "/api/v1/nodes?limit=2", accept=TABLE)).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Status", "Roles", "Age", "Version",
        "Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime",
    ]  # fmt: skip
    assert len(table["rows"]) == 2 and table["metadata"]["continue"]
    row = table["rows"][0]
    assert all(row["cells"]) and row["object"]["kind"] == "PartialObjectMetadata"


async def test_mutations(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(nodes=4, version="v1.30.4")])
    cluster = fleet.clusters[0]
    cluster.upgrade("v1.31.1", kubelets=True)
    assert (await get(fleet, cluster, "/version")).json()["gitVersion"] == "v1.31.1"
    first = cluster.node_names[-1]
    cluster.cordon(first)
    cluster.set_labels(first, {"team": "blue", "kubernetes.io/os": None})
    added = cluster.add_node(labels={"pool": "new"})
    victim = cluster.node_names[0]
    cluster.remove_node(victim)
    cluster.remove_group("monitoring.coreos.com")
    doc = (await get(fleet, cluster, "/api/v1/nodes")).json()
    by_name = {n["metadata"]["name"]: n for n in doc["items"]}
    assert victim not in by_name and by_name[added]["metadata"]["labels"]["pool"] == "new"
    assert by_name[first]["spec"]["unschedulable"] is True
    assert by_name[first]["metadata"]["labels"]["team"] == "blue"
    assert "kubernetes.io/os" not in by_name[first]["metadata"]["labels"]
    kubelets = {
        n["status"]["nodeInfo"]["kubeletVersion"]
        for n in doc["items"]
        if n["metadata"]["name"] != added
    }
    assert kubelets == {"v1.31.1"}
    groups = {g["name"] for g in (await get(fleet, cluster, "/apis")).json()["groups"]}
    assert "monitoring.coreos.com" not in groups
    assert (await get(fleet, cluster, "/apis/monitoring.coreos.com/v1")).status == 404


async def test_status_faults(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet()
    cluster = fleet.clusters[0]
    cluster.faults.fail("/api/v1/nodes", 403)
    forbidden = await get(fleet, cluster, "/api/v1/nodes")
    assert forbidden.status == 403
    assert forbidden.json()["message"] == (
        'nodes is forbidden: User "kubernetes-admin" cannot list resource "nodes" '
        'in API group "" at the cluster scope'
    )
    assert (await get(fleet, cluster, "/version")).status == 200
    cluster.faults.clear()
    cluster.faults.fail("/version", 500, times=2)
    assert [(await get(fleet, cluster, "/version")).status for _ in range(3)] == [500, 500, 200]
    cluster.faults.fail("/api/v1/*", 429, times=1, retry_after=3)
    throttled = await get(fleet, cluster, "/api/v1/nodes")
    assert throttled.status == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["details"]["retryAfterSeconds"] == 3
    cluster.faults.fail("/apis", 401, times=1)
    assert (await get(fleet, cluster, "/apis")).status == 401


async def test_unavailable_aggregated_group(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet()
    cluster = fleet.clusters[0]
    cluster.faults.unavailable("metrics.k8s.io")
    reply = await get(fleet, cluster, "/apis/metrics.k8s.io/v1beta1")
    assert reply.status == 503 and reply.body == b"service unavailable\n"
    legacy = (await get(fleet, cluster, "/apis")).json()
    assert "metrics.k8s.io" in {g["name"] for g in legacy["groups"]}
    agg = (await get(fleet, cluster, "/apis", accept=V2)).json()
    fresh = {i["metadata"]["name"]: i["versions"][0]["freshness"] for i in agg["items"]}
    assert fresh["metrics.k8s.io"] == "Stale" and fresh["apps"] == "Current"
    assert (await get(fleet, cluster, "/apis/apps/v1")).status == 200


async def test_malformed_and_latency(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet()
    cluster = fleet.clusters[0]
    cluster.faults.malform("/api/v1/nodes")
    reply = await get(fleet, cluster, "/api/v1/nodes")
    assert reply.status == 200
    with pytest.raises(Exception, match=r"(?i)truncated|unexpected|invalid|eof"):
        reply.json()
    cluster.faults.malform("/version", "garbage")
    with pytest.raises(Exception):  # noqa: B017 - any decode error
        (await get(fleet, cluster, "/version")).json()
    cluster.faults.clear()
    cluster.faults.latency = 0.3
    loop = asyncio.get_running_loop()
    start = loop.time()
    await get(fleet, cluster, "/version")
    assert loop.time() - start >= 0.3


async def test_connection_level_faults(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(
        clusters=[
            ClusterSpec(name="closed", server="closed-port"),
            ClusterSpec(name="silent", server="no-answer"),
            ClusterSpec(name="foreign", server="foreign-ca"),
            ClusterSpec(name="hang"),
        ]
    )
    closed, silent, foreign, hang = fleet.clusters
    with pytest.raises(aiohttp.ClientConnectorError):
        await get(fleet, closed, "/version")
    with pytest.raises(asyncio.TimeoutError):
        await get(fleet, silent, "/version", seconds=0.5)
    with pytest.raises(aiohttp.ClientConnectorCertificateError) as err:
        await get(fleet, foreign, "/version")
    assert isinstance(err.value.certificate_error, ssl.SSLCertVerificationError)
    hang.faults.hang = True
    with pytest.raises(asyncio.TimeoutError):
        await get(fleet, hang, "/version", seconds=0.5)
    hang.faults.hang = False
    assert (await get(fleet, hang, "/version")).status == 200


async def test_request_log_records_methods_without_secrets(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(users=("token",))])
    cluster = fleet.clusters[0]
    token = next(iter(cluster.tokens))
    await get(fleet, cluster, "/api/v1/nodes?limit=2", token=token)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            cluster.server_url + "/api/v1/namespaces",
            ssl=fleet.client_ssl_context(),
            json={},
        ) as resp,
    ):
        assert resp.status == 405
    assert [(r.method, r.path, r.query) for r in cluster.request_log] == [
        ("GET", "/api/v1/nodes", "limit=2"),
        ("POST", "/api/v1/namespaces", ""),
    ]
    for record in cluster.request_log:
        assert "Authorization" not in record.headers
        assert token not in repr(record)


async def test_label_selector_pages_without_losing_nodes(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(nodes=9)])
    cluster = fleet.clusters[0]
    for name in cluster.node_names[::2]:
        cluster.set_labels(name, {"pick": "yes"})
    wanted = cluster.node_names[::2]
    seen: list[str] = []
    query = "labelSelector=pick%3Dyes&limit=2"
    doc = (await get(fleet, cluster, f"/api/v1/nodes?{query}")).json()
    while True:
        seen += [n["metadata"]["name"] for n in doc["items"]]
        token = doc["metadata"].get("continue")
        if not token:
            break
        doc = (await get(fleet, cluster, f"/api/v1/nodes?{query}&continue={token}")).json()
    assert seen == wanted
    one = (
        await get(fleet, cluster, f"/api/v1/nodes?fieldSelector=metadata.name%3D{wanted[1]}")
    ).json()
    assert [n["metadata"]["name"] for n in one["items"]] == [wanted[1]]


async def test_only_superseded_list_snapshots_expire(sim_fleet: FleetFactory) -> None:
    """Compaction removes old revisions; a long-lived server still pages its current one."""
    fleet = await sim_fleet(clusters=[ClusterSpec(nodes=4)])
    cluster = fleet.clusters[0]
    cluster.compaction_seconds = 0.0
    first = (await get(fleet, cluster, "/api/v1/nodes?limit=2")).json()
    token = first["metadata"]["continue"]
    await asyncio.sleep(0.01)
    current = await get(fleet, cluster, f"/api/v1/nodes?limit=2&continue={token}")
    assert current.status == 200 and len(current.json()["items"]) == 2
    cluster.add_node()  # the list's revision is now superseded, and older than compaction
    superseded = await get(fleet, cluster, f"/api/v1/nodes?limit=2&continue={token}")
    assert superseded.status == 410
