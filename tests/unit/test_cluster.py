"""/version, kube-system uid, cluster services (kubectl cluster-info), cluster id, provider."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from collector.errors import MalformedResponseError
from collector.normalize.cluster import (
    decode_cluster_services,
    decode_namespace_uid,
    decode_version,
    detect_provider,
    fallback_cluster_id,
    parse_minor,
)
from collector.normalize.nodes import decode_node_page
from collector.records import VersionRecord
from tests.k8s_fixtures import K8S

FIXTURES = K8S


def test_version_kind() -> None:
    version = decode_version((FIXTURES / "version" / "kind-v1.20.0.json").read_bytes())
    assert (version.major, version.minor, version.minor_version) == ("1", "20", 20)
    assert version.git_version == "v1.20.0"
    assert version.git_commit == "af46c47ce925f4c4ad5cc8d1fca46c7b77d13b38"
    assert version.git_tree_state == "clean"
    assert version.build_date == datetime(2020, 12, 8, 22, 31, 47, tzinfo=UTC)
    assert (version.go_version, version.compiler, version.platform) == (
        "go1.15.5",
        "gc",
        "linux/amd64",
    )
    assert version.content_hash


def test_version_dev_build_minor_plus() -> None:
    version = decode_version((FIXTURES / "version" / "dev-build-v1.9.0-alpha.1.json").read_bytes())
    assert version.minor == "9+"
    assert version.minor_version == 9
    assert version.git_version == "v1.9.0-alpha.1.487+550c3cab4fe267"


def test_version_eks_style_and_emulation_fields() -> None:
    doc = {
        "major": "1",
        "minor": "28+",
        "gitVersion": "v1.28.5-eks-5e0fdde",
        "emulationMajor": "1",
        "emulationMinor": "31",
        "buildDate": "bogus",
    }
    version = decode_version(json.dumps(doc).encode())
    assert version.minor_version == 28
    assert (version.emulation_major, version.emulation_minor) == ("1", "31")
    assert version.build_date is None


@pytest.mark.parametrize(
    ("minor", "git_version", "expected"),
    [("28", "", 28), ("28+", "", 28), ("", "v1.27.3+k3s1", 27), ("", "", None), ("x", "y", None)],
)
def test_parse_minor(minor: str, git_version: str, expected: int | None) -> None:
    assert parse_minor(minor, git_version) == expected


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"{}", b'{"major": 1}'])
def test_bad_version_raises(raw: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        decode_version(raw)


def test_namespace_uid() -> None:
    raw = b'{"kind":"Namespace","metadata":{"name":"kube-system","uid":"3b1e-uid"}}'
    assert decode_namespace_uid(raw) == "3b1e-uid"
    with pytest.raises(MalformedResponseError):
        decode_namespace_uid(b'{"metadata":{"name":"kube-system"}}')


def test_cluster_services_eks_fixture() -> None:
    raw = (FIXTURES / "services" / "eks-v1.31-kube-system-services.json").read_bytes()
    server = "https://ABCDEF.gr7.us-east-1.eks.amazonaws.com"
    records = decode_cluster_services(raw, server_url=server)
    # Only kube-dns carries kubernetes.io/cluster-service=true.
    assert [(r.namespace, r.name, r.proxy_url) for r in records] == [
        (
            "kube-system",
            "kube-dns",
            f"{server}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy",
        ),
    ]


def _service(name: str, ports: list[dict[str, Any]], ingress: list[dict[str, str]] | None = None):
    return {
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "labels": {"kubernetes.io/cluster-service": "true"},
        },
        "spec": {"ports": ports},
        "status": {"loadBalancer": {"ingress": ingress} if ingress else {}},
    }


def test_cluster_service_links_follow_kubectl() -> None:
    items = [
        _service("plain", []),
        _service("unnamed-port", [{"port": 80}]),
        _service("https-by-name", [{"name": "https", "port": 8443}]),
        _service("https-by-port", [{"name": "web", "port": 443}, {"name": "x", "port": 80}]),
        _service("https-unnamed-443", [{"port": 443}]),
        _service(
            "lb", [{"name": "a", "port": 80}, {"name": "b", "port": 8080}], [{"ip": "1.2.3.4"}]
        ),
        _service("lb-host", [{"port": 80}], [{"hostname": "lb.example.com"}]),
    ]
    raw = json.dumps({"kind": "ServiceList", "items": items}).encode()
    urls = {r.name: r.proxy_url for r in decode_cluster_services(raw, server_url="https://k:6443")}
    base = "https://k:6443/api/v1/namespaces/kube-system/services"
    assert urls == {
        "plain": f"{base}/plain/proxy",
        "unnamed-port": f"{base}/unnamed-port/proxy",
        "https-by-name": f"{base}/https:https-by-name:https/proxy",
        "https-by-port": f"{base}/https:https-by-port:web/proxy",
        "https-unnamed-443": f"{base}/https:https-unnamed-443:/proxy",
        "lb": "http://1.2.3.4:80 http://1.2.3.4:8080",
        "lb-host": "http://lb.example.com:80",
    }


def test_fallback_cluster_id() -> None:
    a = fallback_cluster_id("https://10.0.0.1:6443", b"CA")
    assert a.startswith("sha256:") and len(a) == 7 + 64
    assert a == fallback_cluster_id("https://10.0.0.1:6443/", b"CA\n")
    assert a != fallback_cluster_id("https://10.0.0.1:6443", b"other CA")
    assert a != fallback_cluster_id("https://10.0.0.2:6443", b"CA")
    assert fallback_cluster_id("https://x", None) != fallback_cluster_id("https://x", b"CA")


def _nodes(name: str):
    return decode_node_page((FIXTURES / "nodes" / name).read_bytes()).nodes


def _version(git_version: str) -> VersionRecord:
    return VersionRecord(major="1", minor="28", minor_version=28, git_version=git_version)


@pytest.mark.parametrize(
    ("git_version", "fixture", "expected"),
    [
        ("v1.31.13-eks-ecaa3a6", None, "eks"),
        ("v1.29.1-gke.1589000", None, "gke"),
        ("v1.28.5+k3s1", None, "k3s"),
        ("v1.31.0", "eks-v1.31.13-nodelist.json", "eks"),
        ("v1.18.19", "aks-v1.18.19-node.json", "aks"),
        ("v1.28.5+k3s1", "k3s-v1.28.5-nodelist.json", "k3s"),
        ("v1.17.1+b83bc57", "openshift-4.4-gce-worker-node.json", "openshift"),
        ("v1.20.0", "kind-v1.20.0-nodelist.json", "kind"),
        ("v1.15.2", "minikube-v1.15.2-node.json", "other"),
        ("v1.16.2", "microk8s-v1.16.2-node-array.json", "other"),
        ("v1.30.0", None, "other"),
    ],
)
def test_detect_provider(git_version: str, fixture: str | None, expected: str) -> None:
    nodes = _nodes(fixture) if fixture else None
    assert detect_provider(_version(git_version), nodes) == expected


def test_detect_provider_without_version() -> None:
    assert detect_provider(None, _nodes("kind-v1.20.0-nodelist.json")) == "kind"
    assert detect_provider(None, None) == "other"
