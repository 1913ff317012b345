"""Discovery decoding: aggregated v2/v2beta1, legacy documents, kubectl's selection."""

from __future__ import annotations

import json

import pytest

from collector.errors import MalformedResponseError
from collector.normalize.discovery import (
    decode_aggregated_discovery,
    decode_core_versions,
    decode_group_list,
    decode_resource_list,
    select_like_kubectl,
    version_priority_key,
)
from collector.records import ApiResourceRecord
from tests.k8s_fixtures import K8S

DISCOVERY = K8S / "discovery"


def raw(name: str) -> bytes:
    return (DISCOVERY / name).read_bytes()


def test_aggregated_v2_fixture() -> None:
    result = decode_aggregated_discovery(raw("aggregated_v2.json"))
    assert result.stale_groups == []
    by_key = {(r.api_group, r.api_version, r.resource): r for r in result.resources}
    deploy = by_key[("apps", "v1", "deployments")]
    assert deploy.kind == "Deployment"
    assert deploy.namespaced is True
    assert deploy.short_names == ("deploy",)
    assert deploy.categories == ("all",)
    assert deploy.singular_name == "deployment"
    assert deploy.preferred is True
    assert "watch" in deploy.verbs
    assert not any("/" in r.resource for r in result.resources)  # no subresources
    # Every served version is kept, with the preferred flag on the first listed one.
    assert by_key[("autoscaling", "v2", "horizontalpodautoscalers")].preferred is True
    assert by_key[("autoscaling", "v1", "horizontalpodautoscalers")].preferred is False
    assert by_key[("apiregistration.k8s.io", "v1", "apiservices")].namespaced is False
    # Every resource of the fixture, subresources excluded.
    doc = json.loads(raw("aggregated_v2.json"))
    expected = {
        (g["metadata"]["name"], v["version"], res["resource"])
        for g in doc["items"]
        for v in g["versions"]
        for res in v.get("resources") or ()
    }
    assert set(by_key) == expected
    assert len(result.resources) == len(expected)


def test_aggregated_v2beta1_and_stale_groups_and_core() -> None:
    doc = {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2beta1",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": ""},
                "versions": [
                    {
                        "version": "v1",
                        "resources": [
                            {
                                "resource": "pods",
                                "responseKind": {"kind": "Pod"},
                                "scope": "Namespaced",
                                "verbs": ["get", "list"],
                                "shortNames": ["po"],
                                "subresources": [{"subresource": "log", "verbs": ["get"]}],
                            },
                        ],
                    }
                ],
            },
            {
                "metadata": {"name": "metrics.k8s.io"},
                "versions": [
                    {
                        "version": "v1beta1",
                        "freshness": "Stale",
                        "resources": [
                            {
                                "resource": "nodes",
                                "responseKind": {"kind": "NodeMetrics"},
                                "scope": "Cluster",
                                "verbs": ["get", "list"],
                            }
                        ],
                    }
                ],
            },
            {
                "metadata": {"name": "example.com"},
                "versions": [
                    {
                        "version": "v1",
                        "freshness": "Current",
                        "resources": [
                            {
                                "resource": "widgets",
                                "responseKind": {"kind": "Widget"},
                                "scope": "Namespaced",
                                "verbs": ["get"],
                            }
                        ],
                    },
                    {
                        "version": "v1alpha1",
                        "resources": [
                            {
                                "resource": "widgets",
                                "responseKind": {"kind": "Widget"},
                                "scope": "Namespaced",
                                "verbs": ["get"],
                            },
                            {
                                "resource": "gadgets",
                                "responseKind": {"kind": "Gadget"},
                                "scope": "Cluster",
                                "verbs": ["get"],
                            },
                        ],
                    },
                ],
            },
        ],
    }
    result = decode_aggregated_discovery(json.dumps(doc).encode())
    assert result.stale_groups == ["metrics.k8s.io"]
    assert [(r.api_group, r.api_version, r.resource, r.preferred) for r in result.resources] == [
        ("", "v1", "pods", True),
        ("example.com", "v1", "widgets", True),
        ("example.com", "v1alpha1", "widgets", False),
        ("example.com", "v1alpha1", "gadgets", False),
    ]
    selected = select_like_kubectl(result.resources)
    assert [(r.api_group, r.api_version, r.resource) for r in selected] == [
        ("", "v1", "pods"),
        ("example.com", "v1alpha1", "gadgets"),  # only served by a non-preferred version
        ("example.com", "v1", "widgets"),
    ]


def test_legacy_documents() -> None:
    assert decode_core_versions(raw("api.json")) == ["v1"]
    groups = {g.name: g for g in decode_group_list(raw("apis.json"))}
    assert groups["apps"].versions == ("v1",)
    assert groups["autoscaling"].versions[0] == groups["autoscaling"].preferred == "v2"
    assert "v1" in groups["autoscaling"].versions
    core = decode_resource_list(raw("api__v1.json"), group="", version="v1", preferred=True)
    by_name = {r.resource: r for r in core}
    assert "pods" in by_name and "pods/log" not in by_name
    assert by_name["pods"].short_names == ("po",)
    assert by_name["pods"].api_group == "" and by_name["pods"].api_version == "v1"
    assert by_name["componentstatuses"].verbs == ("get", "list")
    assert by_name["nodes"].namespaced is False


def test_legacy_and_aggregated_agree_per_group_version() -> None:
    aggregated = decode_aggregated_discovery(raw("aggregated_v2.json")).resources
    for name, group, version in [
        ("apis__apps__v1.json", "apps", "v1"),
        ("apis__batch__v1.json", "batch", "v1"),
        ("apis__rbac.authorization.k8s.io__v1.json", "rbac.authorization.k8s.io", "v1"),
        ("apis__policy__v1.json", "policy", "v1"),
        ("apis__discovery.k8s.io__v1.json", "discovery.k8s.io", "v1"),
        ("apis__coordination.k8s.io__v1.json", "coordination.k8s.io", "v1"),
        ("apis__apiextensions.k8s.io__v1.json", "apiextensions.k8s.io", "v1"),
    ]:
        legacy = decode_resource_list(raw(name), group=group, version=version, preferred=True)
        agg = [r for r in aggregated if (r.api_group, r.api_version) == (group, version)]

        def key(r: ApiResourceRecord) -> str:
            return r.resource

        def fields(r: ApiResourceRecord) -> tuple[object, ...]:
            return (
                r.resource,
                r.kind,
                r.namespaced,
                set(r.verbs),
                r.short_names,
                r.categories,
                r.preferred,
            )

        assert [fields(r) for r in sorted(legacy, key=key)] == [
            fields(r) for r in sorted(agg, key=key)
        ], name


def test_version_priority() -> None:
    versions = [
        "v1",
        "v11alpha2",
        "foo10",
        "v2",
        "v1beta2",
        "v10beta3",
        "foo1",
        "v10",
        "v3beta1",
        "v12alpha1",
        "v11beta2",
    ]
    # The order documented in apimachinery's CompareKubeAwareVersionStrings.
    assert sorted(versions, key=version_priority_key) == [
        "v10",
        "v2",
        "v1",
        "v11beta2",
        "v10beta3",
        "v3beta1",
        "v1beta2",
        "v12alpha1",
        "v11alpha2",
        "foo1",
        "foo10",
    ]


def _res(group: str, version: str, name: str, preferred: bool) -> ApiResourceRecord:
    return ApiResourceRecord(
        api_group=group,
        api_version=version,
        resource=name,
        kind=name.title(),
        namespaced=True,
        preferred=preferred,
    )


def test_select_like_kubectl_prefers_the_preferred_version_even_if_listed_later() -> None:
    rows = [
        _res("g", "v1beta1", "a", False),
        _res("g", "v1alpha1", "b", False),
        _res("g", "v1", "a", True),
        _res("g", "v1beta1", "b", False),
        _res("g", "v1", "c/status", True),
    ]
    assert [(r.api_version, r.resource) for r in select_like_kubectl(rows)] == [
        ("v1", "a"),
        ("v1beta1", "b"),  # not in the preferred version: first other version by priority
    ]


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"items": 3}', b'{"kind": "Status", "items": []}']
)
def test_malformed_aggregated_discovery_raises(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        decode_aggregated_discovery(body)


@pytest.mark.parametrize(
    "body", [b"", b"<html>", b"[]", b'{"resources": 3}', b'{"resources": [{"name": 1}]}']
)
def test_malformed_legacy_discovery_raises(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        decode_resource_list(body, group="", version="v1", preferred=True)
    with pytest.raises(MalformedResponseError):
        decode_group_list(body.replace(b"resources", b"groups"))
