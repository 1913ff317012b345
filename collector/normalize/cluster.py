"""Cluster-level documents: ``/version``, the kube-system namespace, cluster services.

Also the cluster-id fallback (a hash of server URL and CA) and the provider guess.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

import msgspec
from msgspec.structs import force_setattr

from collector.errors import MalformedResponseError
from collector.normalize import wire
from collector.records import ClusterServiceRecord, NodeRecord, VersionRecord, hash_blank_record

__all__ = [
    "CLUSTER_SERVICE_LABEL",
    "cluster_service_proxy_url",
    "decode_cluster_services",
    "decode_namespace_uid",
    "decode_version",
    "detect_provider",
    "fallback_cluster_id",
    "parse_minor",
]

CLUSTER_SERVICE_LABEL = "kubernetes.io/cluster-service"

T = TypeVar("T")

_version_decoder = msgspec.json.Decoder(wire.Version)
_namespace_decoder = msgspec.json.Decoder(wire.Namespace)
_service_list_decoder = msgspec.json.Decoder(wire.ServiceList)


def _decode(decoder: msgspec.json.Decoder[T], raw: bytes, what: str) -> T:
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedResponseError(f"{what} could not be decoded: {exc}") from exc


_LEADING_INT = re.compile(r"^\s*(\d+)")
_GIT_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def parse_minor(minor: str, git_version: str = "") -> int | None:
    """``"28"`` -> 28, ``"28+"`` (EKS, GKE, dev builds) -> 28; falls back to gitVersion."""
    if match := _LEADING_INT.match(minor or ""):
        return int(match[1])
    if match := _GIT_VERSION.match(git_version or ""):
        return int(match[2])
    return None


def decode_version(raw: bytes) -> VersionRecord:
    """Decode ``GET /version``; every field kept, minor parsed, buildDate as a datetime."""
    doc = _decode(_version_decoder, raw, "/version")
    if not doc.git_version and not doc.major:
        raise MalformedResponseError("/version has neither gitVersion nor major")
    major = doc.major
    if not major and (match := _GIT_VERSION.match(doc.git_version)):
        major = match[1]
    build_date: datetime | None = None
    if doc.build_date:
        try:
            build_date = datetime.fromisoformat(doc.build_date)
        except ValueError:
            build_date = None
        else:
            if build_date.tzinfo is None:
                build_date = build_date.replace(tzinfo=UTC)
    record = VersionRecord(
        major=major,
        minor=doc.minor,
        minor_version=parse_minor(doc.minor, doc.git_version),
        git_version=doc.git_version,
        git_commit=doc.git_commit or None,
        git_tree_state=doc.git_tree_state or None,
        build_date=build_date,
        go_version=doc.go_version or None,
        compiler=doc.compiler or None,
        platform=doc.platform or None,
        emulation_major=doc.emulation_major or None,
        emulation_minor=doc.emulation_minor or None,
    )
    force_setattr(record, "content_hash", hash_blank_record(record))  # a new record
    return record


def decode_namespace_uid(raw: bytes) -> str:
    """The ``metadata.uid`` of a Namespace (``GET /api/v1/namespaces/kube-system``)."""
    doc = _decode(_namespace_decoder, raw, "namespace")
    if doc.metadata is None or not doc.metadata.uid:
        raise MalformedResponseError("namespace has no metadata.uid")
    return doc.metadata.uid


def _join_scheme_name_port(scheme: str, name: str, port: str) -> str:
    # k8s.io/apimachinery/pkg/util/net.JoinSchemeNamePort
    if scheme:
        return f"{scheme}:{name}:{port}"
    if port:
        return f"{name}:{port}"
    return name


def cluster_service_proxy_url(service: wire.Service, *, server_url: str) -> str:
    """The link ``kubectl cluster-info`` prints for one service.

    A service with a load-balancer ingress gets ``http://<ip or hostname>:<port>`` per port
    (space-separated, as kubectl prints them); any other gets the API server proxy path of its
    first port, with ``https`` guessed from the port name or port 443.
    """
    meta = service.metadata or wire.ObjectMeta()
    ports = (service.spec.ports if service.spec else None) or []
    lb = service.status.load_balancer if service.status else None
    ingress = (lb.ingress if lb else None) or []
    if ingress:
        host = ingress[0].ip or ingress[0].hostname
        return " ".join(f"http://{host}:{port.port}" for port in ports)
    name = meta.name
    if ports:
        port = ports[0]
        scheme = "https" if port.name == "https" or port.port == 443 else ""
        name = _join_scheme_name_port(scheme, meta.name, port.name)
    return f"{server_url}/api/v1/namespaces/{meta.namespace}/services/{name}/proxy"


def decode_cluster_services(raw: bytes, *, server_url: str) -> list[ClusterServiceRecord]:
    """Services labelled ``kubernetes.io/cluster-service=true`` with kubectl's proxy URLs.

    ``server_url`` is the server of the kubeconfig cluster, as written there (kubectl prints
    ``rest.Config.Host``). Services without the label are ignored, so the whole kube-system
    list may be passed as well as the label-selected one.
    """
    doc = _decode(_service_list_decoder, raw, "service list")
    records = []
    for service in doc.items or ():
        meta = service.metadata
        if meta is None or not meta.name:
            continue
        if (meta.labels or {}).get(CLUSTER_SERVICE_LABEL) != "true":
            continue
        records.append(
            ClusterServiceRecord(
                namespace=meta.namespace,
                name=meta.name,
                proxy_url=cluster_service_proxy_url(service, server_url=server_url),
            )
        )
    return records


def fallback_cluster_id(server_url: str, ca_bytes: bytes | None) -> str:
    """``sha256:`` + hex digest of the server URL and the CA certificate (when known)."""
    digest = hashlib.sha256()
    digest.update(server_url.strip().rstrip("/").encode())
    digest.update(b"\0")
    if ca_bytes:
        digest.update(ca_bytes.strip())
    return "sha256:" + digest.hexdigest()


_OPENSHIFT_LABEL_PREFIXES = ("node.openshift.io/", "machineconfiguration.openshift.io/")
# The signs of each provider, in the order they decide: a gitVersion (or kubelet version)
# suffix, then a node's providerID scheme, then a node's labels.
_VERSION_MARKERS = (("-eks-", "eks"), ("-gke.", "gke"), ("+k3s", "k3s"))
_PROVIDER_ID_SCHEMES = {"kind": "kind", "k3s": "k3s"}
_NODE_LABEL_PREFIXES = (
    ("kubernetes.azure.com/", "aks"),  # an azure:// providerID alone may be self-managed
    ("eks.amazonaws.com/", "eks"),
    ("cloud.google.com/gke-", "gke"),
)
_ANY_NODE_LABEL_PREFIX = tuple(prefix for prefix, _ in _NODE_LABEL_PREFIXES)


def detect_provider(version: VersionRecord | None, nodes: Sequence[NodeRecord] | None) -> str:
    """eks, gke, aks, openshift, k3s, kind or other, from /version and the nodes.

    gitVersion carries the managed-service suffixes (``v1.28.5-eks-5e0fdde``,
    ``v1.29.1-gke.1589000``, ``v1.28.5+k3s1``); AKS and kind are only visible on the nodes
    (AKS labels, ``kind://`` providerIDs); OpenShift by its node labels.
    """
    nodes = nodes or ()
    # One pass over the distinct label keys of the cluster (nodes of a node group share them)
    # instead of a scan of every node's labels for every provider.
    keys: set[str] = set()
    keys.update(*(node.labels for node in nodes))
    if any(key.startswith(_OPENSHIFT_LABEL_PREFIXES) for key in keys):
        return "openshift"
    git_version = version.git_version if version else ""
    for text in (git_version, *dict.fromkeys(n.kubelet_version or "" for n in nodes)):
        for marker, provider in _VERSION_MARKERS:
            if marker in text:
                return provider
    provider_keys = {key for key in keys if key.startswith(_ANY_NODE_LABEL_PREFIX)}
    schemes = {
        n.provider_id.partition("://")[0] for n in nodes if n.provider_id and "://" in n.provider_id
    }
    if provider_keys or not schemes.isdisjoint(_PROVIDER_ID_SCHEMES):
        for node in nodes:  # the first node with a sign decides, in node order
            found = _node_provider(node, provider_keys)
            if found is not None:
                return found
    return "other"


def _node_provider(node: NodeRecord, provider_keys: set[str]) -> str | None:
    scheme, separator, _ = (node.provider_id or "").partition("://")
    if separator and scheme in _PROVIDER_ID_SCHEMES:
        return _PROVIDER_ID_SCHEMES[scheme]
    if provider_keys.isdisjoint(node.labels):
        return None
    return next(
        (
            provider
            for prefix, provider in _NODE_LABEL_PREFIXES
            if any(key.startswith(prefix) for key in node.labels)
        ),
        None,
    )
