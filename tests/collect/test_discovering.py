"""Discovery negotiation and failure handling, with scripted responses from real fixtures."""

import json

import pytest

from collector.errors import ForbiddenError
from collector.kube.discovering import (
    DISCOVERY_ACCEPT,
    discover_api_resources,
    discovery_mode,
)
from tests.collect.fakes import FakeResponse, fake_client
from tests.k8s_fixtures import K8S

FIXTURES = K8S / "discovery"
V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


@pytest.mark.parametrize(
    ("content_type", "mode"),
    [
        (V2, "aggregated-v2"),
        (V2BETA1, "aggregated-v2beta1"),
        ("application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io", "aggregated-v2"),
        ("application/json", "legacy"),
        ("application/json; charset=utf-8", "legacy"),
        ("", "legacy"),
        ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList", "legacy"),
    ],
)
def test_discovery_mode(content_type, mode):
    assert discovery_mode(content_type) == mode


def test_accept_header_is_client_gos():
    assert f"{V2},{V2BETA1},application/json" == DISCOVERY_ACCEPT


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _empty_list(group_version: str) -> bytes:
    return json.dumps(
        {"kind": "APIResourceList", "groupVersion": group_version, "resources": []}
    ).encode()


def legacy_server(failing: dict[str, int] | None = None):
    failing = failing or {}

    def answer(path, _kw):
        if path in failing:
            return FakeResponse(failing[path], b'{"kind":"Status","message":"unavailable"}')
        if path == "/api":
            return FakeResponse(200, _fixture("api.json"))
        if path == "/apis":
            return FakeResponse(200, _fixture("apis.json"))
        name = path.strip("/").replace("/", "__") + ".json"
        if (FIXTURES / name).exists():
            return FakeResponse(200, _fixture(name))
        return FakeResponse(200, _empty_list(path.split("/", 2)[-1]))

    return answer


def aggregated_server(content_type=V2, doc=None):
    def answer(path, kw):
        assert kw["accept"] == DISCOVERY_ACCEPT
        headers = {"Content-Type": content_type}
        if path == "/api":
            core = {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": "apidiscovery.k8s.io/v2",
                "items": [
                    json.loads(_fixture("aggregated_v2.json"))["items"][0]
                    | {
                        "metadata": {},
                        "versions": [
                            {
                                "version": "v1",
                                "resources": [
                                    {
                                        "resource": "pods",
                                        "responseKind": {"kind": "Pod"},
                                        "scope": "Namespaced",
                                        "verbs": ["get", "list"],
                                    },
                                    {
                                        "resource": "pods/log",
                                        "responseKind": {"kind": "Pod"},
                                        "scope": "Namespaced",
                                        "verbs": ["get"],
                                    },
                                ],
                            }
                        ],
                    }
                ],
            }
            return FakeResponse(200, json.dumps(core).encode(), headers)
        if path == "/apis":
            return FakeResponse(200, doc or _fixture("aggregated_v2.json"), headers)
        raise AssertionError(f"aggregated discovery needs no request to {path}")

    return answer


async def test_legacy_discovery_fetches_every_group_version():
    client, api, _ = fake_client(legacy_server())
    result = await discover_api_resources(client)
    assert result.mode == "legacy"
    assert result.failed_groups == []
    paths = {p for p, _ in api.calls}
    assert {"/api/v1", "/apis/apps/v1", "/apis/autoscaling/v2", "/apis/autoscaling/v1"} <= paths
    keys = {(r.api_group, r.api_version, r.resource) for r in result.resources}
    assert ("", "v1", "pods") in keys
    assert ("apps", "v1", "deployments") in keys
    assert not any("/" in r.resource for r in result.resources)
    pods = next(r for r in result.resources if r.resource == "pods")
    assert pods.preferred


async def test_failing_group_is_partial_and_named():
    client, _, _ = fake_client(legacy_server({"/apis/batch/v1": 503}))
    result = await discover_api_resources(client)
    assert result.failed_groups == ["batch"]
    assert [e.error_class for e in result.errors] == ["ServerError"]
    assert "503" in result.errors[0].message
    groups = {r.api_group for r in result.resources}
    assert "batch" not in groups and "apps" in groups and "" in groups


async def test_forbidden_root_fails_discovery():
    client, _, _ = fake_client(legacy_server({"/apis": 403}))
    with pytest.raises(ForbiddenError):
        await discover_api_resources(client)


@pytest.mark.parametrize(
    ("content_type", "mode"), [(V2, "aggregated-v2"), (V2BETA1, "aggregated-v2beta1")]
)
async def test_aggregated_discovery_is_two_requests(content_type, mode):
    client, api, _ = fake_client(aggregated_server(content_type))
    result = await discover_api_resources(client)
    assert result.mode == mode
    assert sorted(p for p, _ in api.calls) == ["/api", "/apis"]
    keys = {(r.api_group, r.api_version, r.resource) for r in result.resources}
    assert ("", "v1", "pods") in keys and ("", "v1", "pods/log") not in keys
    assert ("autoscaling", "v2", "horizontalpodautoscalers") in keys
    assert ("autoscaling", "v1", "horizontalpodautoscalers") in keys


async def test_stale_group_is_partial():
    doc = json.loads(_fixture("aggregated_v2.json"))
    for item in doc["items"]:
        if item["metadata"]["name"] == "batch":
            item["versions"][0]["freshness"] = "Stale"
    client, _, _ = fake_client(aggregated_server(V2, json.dumps(doc).encode()))
    result = await discover_api_resources(client)
    assert result.failed_groups == ["batch"]
    assert result.errors[0].error_class == "StaleGroup"
    assert "batch" not in {r.api_group for r in result.resources}
