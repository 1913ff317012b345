"""kubernetes-asyncio against the simulator over TLS: certificate and token users."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import new_client_from_config

from collector.sim import ClusterSpec, Fleet, FleetSpec
from tests.plugins.sim import FleetFactory

TIMEOUT = 10


async def _client(fleet: Fleet, context: str) -> Any:
    """An ApiClient for one context of the fleet's kubeconfig (created inside the loop)."""
    return await new_client_from_config(
        config_file=str(fleet.kubeconfig), context=context, persist_config=False
    )


async def _get(api: Any, path: str, **query: Any) -> tuple[int, bytes, dict[str, str]]:
    params = list(query.items())
    resp = await api.call_api(
        path,
        "GET",
        query_params=params,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=TIMEOUT,
    )
    raw = resp[0] if isinstance(resp, tuple) else resp
    body = await raw.read()
    return raw.status, body, dict(raw.headers)


@pytest.mark.parametrize("kind", ["cert-data", "cert-file", "token", "exec"])
async def test_core_calls_over_tls(
    sim_fleet: FleetFactory, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(name="c1", nodes=4, users=(kind,))])
    # kubernetes-asyncio resolves a relative exec command against the cwd (kubectl: the file's dir)
    monkeypatch.chdir(fleet.dir)
    cluster = fleet.clusters[0]
    api = await _client(fleet, "c1")
    async with api:
        version = client.VersionApi(api)
        raw = await version.get_code(_preload_content=False, _request_timeout=TIMEOUT)
        doc = json.loads(await raw.read())
        assert doc["gitVersion"] == "v1.31.2" and doc["minor"] == "31"

        core = client.CoreV1Api(api)
        raw = await core.read_namespace(
            "kube-system", _preload_content=False, _request_timeout=TIMEOUT
        )
        ns = json.loads(await raw.read())
        assert ns["kind"] == "Namespace" and ns["metadata"]["uid"] == cluster.uid

        raw = await core.list_node(limit=3, _preload_content=False, _request_timeout=TIMEOUT)
        page = json.loads(await raw.read())
        assert page["kind"] == "NodeList" and len(page["items"]) == 3
        token = page["metadata"]["continue"]
        assert page["metadata"]["remainingItemCount"] == 1
        raw = await core.list_node(
            limit=3, _continue=token, _preload_content=False, _request_timeout=TIMEOUT
        )
        rest = json.loads(await raw.read())
        assert "continue" not in rest["metadata"]
        names = [n["metadata"]["name"] for n in page["items"] + rest["items"]]
        assert names == cluster.node_names

        # The generated discovery calls use trailing-slash paths.
        raw = await client.CoreApi(api).get_api_versions(
            _preload_content=False, _request_timeout=TIMEOUT
        )
        assert json.loads(await raw.read())["versions"] == ["v1"]
        raw = await client.ApisApi(api).get_api_versions(
            _preload_content=False, _request_timeout=TIMEOUT
        )
        groups = {g["name"] for g in json.loads(await raw.read())["groups"]}
        assert {"apps", "monitoring.coreos.com", "metrics.k8s.io"} <= groups
    users = {r.user for r in cluster.request_log}
    assert None not in users
    if kind.startswith("cert"):
        assert users == {"kubernetes-admin"}
    else:
        assert users == {f"system:serviceaccount:kube-system:sim-{kind}"}


async def test_two_contexts_reach_the_same_cluster(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(
        clusters=[ClusterSpec(name="shared", users=("cert-data", "token", "invalid-token"))]
    )
    uids = []
    for ctx in ("shared", "shared-token"):
        api = await _client(fleet, ctx)
        async with api:
            status, body, _ = await _get(api, "/api/v1/namespaces/kube-system")
            assert status == 200
            uids.append(json.loads(body)["metadata"]["uid"])
    assert uids[0] == uids[1] == fleet.clusters[0].uid
    api = await _client(fleet, "shared-invalid-token")
    async with api:
        try:
            status, body, _ = await _get(api, "/version")
        except ApiException as exc:  # depending on the library path, raised or returned
            status, body = exc.status, exc.body
    assert status == 401
    assert body == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"Unauthorized","reason":"Unauthorized","code":401}\n'
    )


async def test_node_bytes_decode_with_msgspec(sim_fleet: FleetFactory) -> None:
    spec = FleetSpec.varied(7, nodes=6)
    for c in spec.clusters:  # a raw tokenFile breaks this library's headers (trailing newline)
        c.users = ("token",)
    fleet = await sim_fleet(spec)
    for cluster in fleet.clusters:
        api = await _client(fleet, cluster.name)
        async with api:
            status, body, headers = await _get(api, "/api/v1/nodes", limit=500)
        assert status == 200 and headers["Content-Type"] == "application/json"
        doc = msgspec.json.decode(body)
        assert len(doc["items"]) == len(cluster.node_names)
        for item in doc["items"]:
            assert item["status"]["nodeInfo"]["kubeletVersion"]
            for cond in item["status"]["conditions"]:
                assert cond["lastHeartbeatTime"].endswith("Z")
