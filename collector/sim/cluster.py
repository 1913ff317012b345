"""The state of one simulated cluster, its mutations and its faults (no I/O here)."""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import fnmatch
import random
import re
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import Any, NamedTuple

import msgspec

from collector.sim import discovery, nodes
from collector.sim.nodes import NodeContext, SimNode

Json = dict[str, Any]

_VERSION_RE = re.compile(r"^v?1\.(\d+)(?:\.(\d+))?$")

_GO_VERSIONS = {
    19: "go1.15.15",
    20: "go1.15.15",
    21: "go1.16.15",
    22: "go1.16.15",
    23: "go1.17.13",
    24: "go1.18.10",
    25: "go1.19.13",
    26: "go1.20.13",
    27: "go1.21.13",
    28: "go1.22.12",
    29: "go1.22.12",
    30: "go1.22.12",
    31: "go1.22.12",
    32: "go1.23.6",
    33: "go1.24.4",
    34: "go1.24.6",
}


def parse_version(text: str) -> tuple[int, int]:
    """'v1.31.2' or '1.31' -> (31, 2)."""
    m = _VERSION_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a Kubernetes version: {text!r} (expected e.g. v1.31.2)")
    return int(m.group(1)), int(m.group(2) or 0)


class RequestRecord(NamedTuple):
    """One request as the simulator saw it. Authorization is never recorded."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    user: str | None  # the authenticated user
    as_user: str | None = None  # the user it impersonated (Impersonate-User), if any
    as_groups: tuple[str, ...] = ()  # the Impersonate-Group headers, in order (they repeat)


@dataclass
class StatusRule:
    """Answer `status` on paths matching `path` (fnmatch), `times` times (None: always)."""

    path: str
    status: int
    times: int | None = None
    retry_after: int | None = None
    method: str = "*"
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method):
            return False
        return fnmatch.fnmatchcase(path, self.path) or fnmatch.fnmatchcase(
            path.rstrip("/"), self.path
        )


_FAULT_KEYS = {"latency", "unavailable", "malformed", "expire_continue", "hang", "status"}
_STATUS_KEYS = {"path", "status", "times", "retry_after", "method"}


@dataclass
class Faults:
    """Faults of one cluster, changeable while it serves.

    - latency: seconds added to every request;
    - fail(path, status, ...): a chosen status on a chosen path, optionally N times only;
    - unavailable_groups: aggregated groups whose APIService is down (503 on /apis/{g}/{v},
      Stale in aggregated discovery);
    - malformed: path pattern -> 'truncated' | 'garbage' (the body is broken after rendering);
    - expire_continue: the next N list requests with a continue token get 410 Expired;
    - hang: requests are accepted and never answered.
    """

    latency: float = 0.0
    rules: list[StatusRule] = field(default_factory=list)
    unavailable_groups: set[str] = field(default_factory=set)
    malformed: dict[str, str] = field(default_factory=dict)
    expire_continue: int = 0
    hang: bool = False

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int | None = None,
        retry_after: int | None = None,
        method: str = "*",
    ) -> StatusRule:
        rule = StatusRule(path, status, times, retry_after, method)
        self.rules.append(rule)
        return rule

    def unavailable(self, group: str = "metrics.k8s.io") -> None:
        self.unavailable_groups.add(group)

    def malform(self, path: str, mode: str = "truncated") -> None:
        if mode not in ("truncated", "garbage"):
            raise ValueError(f"malformed mode must be 'truncated' or 'garbage', not {mode!r}")
        self.malformed[path] = mode

    def expire_continue_tokens(self, count: int = 1) -> None:
        self.expire_continue = count

    def configure(self, spec: Mapping[str, Any]) -> None:
        """Add the faults described by a mapping (a scenario's [cluster.faults] table)."""
        unknown = set(spec) - _FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        self.latency = float(spec.get("latency", self.latency))
        for group in spec.get("unavailable", []):
            self.unavailable(str(group))
        for path, mode in dict(spec.get("malformed", {})).items():
            self.malform(str(path), str(mode))
        self.expire_continue = int(spec.get("expire_continue", self.expire_continue))
        self.hang = bool(spec.get("hang", self.hang))
        for rule in spec.get("status", []):
            unknown = set(rule) - _STATUS_KEYS
            if unknown:
                raise ValueError(f"unknown status-fault keys: {', '.join(sorted(unknown))}")
            self.fail(
                str(rule["path"]),
                int(rule["status"]),
                times=None if rule.get("times") is None else int(rule["times"]),
                retry_after=None if rule.get("retry_after") is None else int(rule["retry_after"]),
                method=str(rule.get("method", "*")),
            )

    def clear(self) -> None:
        self.latency = 0.0
        self.rules.clear()
        self.unavailable_groups.clear()
        self.malformed.clear()
        self.expire_continue = 0
        self.hang = False

    def match(self, method: str, path: str) -> StatusRule | None:
        for rule in self.rules:
            if rule.matches(method, path):
                rule.hits += 1
                return rule
        return None

    def malformed_mode(self, path: str) -> str | None:
        for pattern, mode in self.malformed.items():
            if fnmatch.fnmatchcase(path, pattern):
                return mode
        return None


@dataclass
class ListSnapshot:
    """The node list at one resourceVersion: what continue tokens page through."""

    resource_version: int
    names: list[str]
    bodies: list[bytes]
    created: float


class ContinueError(Exception):
    """A continue token that cannot be used: 'invalid' (400) or 'expired' (410)."""

    def __init__(self, reason: str, detail: str, start: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.start = start  # for 'expired': where an inconsistent continuation would resume


_SNAPSHOTS_KEPT = 16


@dataclass(eq=False, repr=False)
class SimCluster:
    """One simulated cluster. Mutations bump the resourceVersion, as the API server would."""

    name: str
    _: KW_ONLY
    version: InitVar[str]  # "v1.31.2"; the control plane's, see upgrade()
    flavour: str
    node_count: InitVar[int]
    seed: int
    variant: int
    virtual_nodes: int = 0  # the virtual-kubelet nodes it starts with
    alpha_apis: bool = False
    compaction_seconds: float = 300.0
    request_log_limit: int = 100_000

    def __post_init__(self, version: str, node_count: int) -> None:
        if self.flavour not in nodes.FLAVOURS:
            raise ValueError(
                f"unknown flavour {self.flavour!r}; one of {', '.join(nodes.FLAVOURS)}"
            )
        rng = random.Random(f"{self.seed}/{self.name}/cluster")
        self.uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.created = nodes.rfc3339(
            dt.datetime(2024, 2, 1, tzinfo=dt.UTC) + dt.timedelta(hours=rng.randrange(500))
        )
        self._commit_rng = rng
        self._rendered: tuple[frozenset[str], discovery.RenderedDiscovery] | None = None
        self._set_version(version)
        self.faults = Faults()
        # The most recent requests (bounded, so a long-running fleet does not grow without end).
        self.request_log: deque[RequestRecord] = deque(maxlen=self.request_log_limit)
        self.tokens: dict[str, str] = {}  # bearer token -> user name (pop one to revoke it)
        self.connections = 0  # TCP connections accepted (each one a TLS handshake)
        self.server_url = ""
        self.path_prefix = ""  # served behind this path (e.g. "/k8s/clusters/c-abc", Rancher)
        # Impersonation, as kube-apiserver's RBAC would see it: who may impersonate (None:
        # every authenticated user, as the simulator's admins may), and what an impersonated
        # user or group may read: resource names ("nodes", "namespaces", ...) or "*".
        # system:masters may read everything; anyone may read /version and discovery.
        self.impersonators: frozenset[str] | None = None
        self.grants: dict[str, frozenset[str]] = {"system:masters": frozenset({"*"})}
        self.resource_version = 1000
        self._nodes: dict[str, SimNode] = {}
        self._next_index = 0
        ctx = self._node_context()
        for _ in range(node_count):
            self._insert(nodes.make_node(ctx, self._next_index, total=node_count))
            self._next_index += 1
        for i in range(self.virtual_nodes):
            self._insert(nodes.virtual_node(ctx, i))
        self._snapshots: OrderedDict[int, ListSnapshot] = OrderedDict()
        self._removed_groups: set[str] = set()
        self._heartbeat_counter = 0

    # --- read side ---------------------------------------------------------------------------

    @property
    def git_version(self) -> str:
        return str(self.version_info["gitVersion"])

    @property
    def node_names(self) -> list[str]:
        return sorted(self._nodes)

    def node(self, name: str) -> SimNode:
        try:
            return self._nodes[name]
        except KeyError:
            raise KeyError(f"cluster {self.name} has no node {name!r}") from None

    def node_object(self, name: str) -> Json:
        """The node as a client would decode it (heartbeats filled in)."""
        body = self.node(name).body.replace(nodes.HEARTBEAT_PLACEHOLDER, self.heartbeat())
        result: Json = msgspec.json.decode(body)
        return result

    def heartbeat(self) -> bytes:
        """Heartbeat time for this request: within the last five minutes, different every time.

        Kubernetes writes times with one-second resolution, so a wall clock alone would repeat
        within a second; the counter makes consecutive requests differ.
        """
        self._heartbeat_counter += 1
        t = int(time.time()) - 300 + self._heartbeat_counter % 300
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)).encode()

    def discovery(self) -> discovery.RenderedDiscovery:
        stale = frozenset(self.faults.unavailable_groups)
        if self._rendered is None or self._rendered[0] != stale:
            groups = [g for g in self._groups if g.name not in self._removed_groups]
            self._rendered = (stale, discovery.render(groups, stale))
        return self._rendered[1]

    def group_names(self) -> list[str]:
        return [g.name for g in self._groups if g.name not in self._removed_groups]

    def is_aggregated_group(self, group: str) -> bool:
        return any(g.name == group and g.aggregated for g in self._groups)

    def snapshot(self, resource_version: int | None = None) -> ListSnapshot:
        """The current list snapshot, or the one a continue token refers to."""
        if resource_version is None:
            snap = self._snapshots.get(self.resource_version)
            if snap is None:
                names = sorted(self._nodes)
                snap = ListSnapshot(
                    self.resource_version, names, [self._nodes[n].body for n in names], time.time()
                )
                self._snapshots[self.resource_version] = snap
                while len(self._snapshots) > _SNAPSHOTS_KEPT:
                    self._snapshots.popitem(last=False)
            return snap
        snap = self._snapshots.get(resource_version)
        if snap is None:
            raise ContinueError("expired", "too old resource version")
        # Compaction only removes superseded revisions: the current one never expires.
        superseded = resource_version != self.resource_version
        if superseded and time.time() - snap.created > self.compaction_seconds:
            raise ContinueError("expired", "too old resource version")
        return snap

    def page(
        self, *, limit: int, continue_token: str | None
    ) -> tuple[ListSnapshot, int, int, str | None]:
        """(snapshot, start index, end index, next continue token) for one page of nodes."""
        if continue_token:
            rv, start = decode_continue(continue_token)
            if rv == -1:  # the token of a 410 answer: continue at the latest version
                snap = self.snapshot()
            else:
                if self.faults.expire_continue > 0:
                    self.faults.expire_continue -= 1
                    raise ContinueError("expired", "expired by fault injection", start)
                try:
                    snap = self.snapshot(rv)
                except ContinueError as exc:
                    raise ContinueError("expired", str(exc), start) from None
            begin = bisect.bisect_left(snap.names, start)
        else:
            snap = self.snapshot()
            begin = 0
        end = len(snap.names) if limit <= 0 else min(begin + limit, len(snap.names))
        token = None
        if end < len(snap.names):
            token = encode_continue(snap.resource_version, snap.names[end - 1] + "\x00")
        return snap, begin, end, token

    def services(self) -> list[Json]:
        return kube_system_services(self.flavour, self.uid)

    # --- mutations ---------------------------------------------------------------------------

    def upgrade(self, version: str, *, kubelets: bool = False) -> None:
        """New control-plane version; discovery follows. With kubelets=True every node too."""
        self._set_version(version)
        if kubelets:
            for node in self._nodes.values():
                info = node.obj["status"]["nodeInfo"]
                if info.get("kubeletVersion", "").endswith(("vk-azure-aci-1.6.1",)):
                    continue
                info["kubeletVersion"] = info["kubeProxyVersion"] = nodes.kubelet_version(
                    self.flavour, self.minor, self.patch
                )
                self._touch(node)
        self._bump()

    def add_node(self, name: str | None = None, *, labels: Mapping[str, str] | None = None) -> str:
        """Add a node of the cluster's flavour (the next index); returns its name."""
        node = nodes.make_node(self._node_context(), self._next_index, total=self._next_index + 1)
        self._next_index += 1
        if name:
            node.name = name
            node.obj["metadata"]["name"] = name
            node.labels["kubernetes.io/hostname"] = name
            for a in node.obj["status"]["addresses"]:
                if a["type"] == "Hostname":
                    a["address"] = name
        if name in self._nodes:
            raise ValueError(f"cluster {self.name} already has node {name!r}")
        if labels:
            node.labels.update(labels)
        self._insert(node)
        self._bump()
        return node.name

    def remove_node(self, name: str) -> None:
        self.node(name)
        del self._nodes[name]
        self._bump()

    def cordon(self, name: str, unschedulable: bool = True) -> None:
        node = self.node(name)
        nodes.set_unschedulable(node, unschedulable)
        self._touch(node)
        self._bump()

    def uncordon(self, name: str) -> None:
        self.cordon(name, False)

    def set_ready(self, name: str, ready: bool) -> None:
        node = self.node(name)
        nodes.set_ready(node.obj, ready)
        self._touch(node)
        self._bump()

    def set_labels(self, name: str, labels: Mapping[str, str | None]) -> None:
        """Merge labels into a node; a None value removes that label."""
        node = self.node(name)
        current = node.labels
        for key, value in labels.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        self._touch(node)
        self._bump()

    def set_capacity(
        self, name: str, capacity: Mapping[str, str], allocatable: Mapping[str, str]
    ) -> None:
        node = self.node(name)
        node.obj["status"]["capacity"].update(capacity)
        node.obj["status"]["allocatable"].update(allocatable)
        self._touch(node)
        self._bump()

    def remove_group(self, group: str) -> None:
        """Remove an API group (e.g. a CRD group whose CRDs were deleted)."""
        if group not in self.group_names():
            raise KeyError(f"cluster {self.name} serves no group {group!r}")
        self._removed_groups.add(group)
        self._rendered = None

    def restore_group(self, group: str) -> None:
        self._removed_groups.discard(group)
        self._rendered = None

    # --- internals ---------------------------------------------------------------------------

    def _node_context(self) -> NodeContext:
        return NodeContext(self.name, self.flavour, self.minor, self.patch, self.seed)

    def _insert(self, node: SimNode) -> None:
        self.resource_version += 1
        node.obj["metadata"]["resourceVersion"] = str(self.resource_version)
        node.render()
        self._nodes[node.name] = node

    def _touch(self, node: SimNode) -> None:
        self.resource_version += 1
        node.obj["metadata"]["resourceVersion"] = str(self.resource_version)
        node.render()

    def _bump(self) -> None:
        self.resource_version += 1

    def _set_version(self, version: str) -> None:
        """The control plane's version: /version's body and the APIs it serves."""
        self.minor, self.patch = parse_version(version)
        self.version_info = self._version_info()
        self._groups = discovery.builtin_groups(
            self.minor, alpha=self.alpha_apis
        ) + discovery.custom_groups(self.flavour, self.variant)
        self._rendered = None

    def _version_info(self) -> Json:
        rng = random.Random(f"{self.seed}/{self.name}/{self.minor}.{self.patch}")
        minor, patch, f = self.minor, self.patch, self.flavour
        minor_text = str(minor)
        if f == "eks":
            git = f"v1.{minor}.{patch}-eks-{rng.getrandbits(28):07x}"
            minor_text = f"{minor}+"
        elif f == "gke":
            git = f"v1.{minor}.{patch}-gke.{1000000 + rng.randrange(90000)}"
        elif f == "k3s":
            git = f"v1.{minor}.{patch}+k3s1"
        elif f == "openshift":
            git = f"v1.{minor}.{patch}+{rng.getrandbits(28):07x}"
        else:
            git = f"v1.{minor}.{patch}"
        release = dt.datetime(2020, 12, 8, tzinfo=dt.UTC) + dt.timedelta(
            days=(minor - 20) * 120 + patch * 30 + rng.randrange(20)
        )
        return {
            "major": "1",
            "minor": minor_text,
            "gitVersion": git,
            "gitCommit": f"{rng.getrandbits(160):040x}",
            "gitTreeState": "clean",
            "buildDate": nodes.rfc3339(release),
            "goVersion": _GO_VERSIONS.get(minor, "go1.22.12"),
            "compiler": "gc",
            "platform": "linux/amd64",
        }


def encode_continue(resource_version: int, start: str) -> str:
    """The etcd3 storage's continue token: base64url(JSON{v, rv, start}) without padding."""
    raw = msgspec.json.encode({"v": "meta.k8s.io/v1", "rv": resource_version, "start": start})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = msgspec.json.decode(raw)
        if doc.get("v") != "meta.k8s.io/v1":
            raise ContinueError(
                "invalid",
                "continue key is not valid: incorrect encoded start resourceVersion "
                "(version meta.k8s.io/v1)",
            )
        return int(doc["rv"]), str(doc["start"])
    except (
        binascii.Error,
        msgspec.DecodeError,
        KeyError,
        ValueError,
        TypeError,
        AttributeError,
    ) as exc:
        raise ContinueError("invalid", f"continue key is not valid: {exc}") from exc


# --- kube-system services -------------------------------------------------------------------------


def _service(
    name: str, uid: str, labels: dict[str, str], cluster_ip: str, ports: list[Json]
) -> Json:
    return {
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "uid": uid,
            "resourceVersion": "255",
            "creationTimestamp": "2024-02-01T10:00:00Z",
            "labels": labels,
        },
        "spec": {
            "ports": ports,
            "selector": {"k8s-app": labels.get("k8s-app", name)},
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    }


def kube_system_services(flavour: str, cluster_uid: str) -> list[Json]:
    """Services of kube-system by flavour; those labelled cluster-service show in cluster-info."""
    rng = random.Random(cluster_uid)

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    dns_name = "KubeDNS" if flavour == "gke" else "CoreDNS"
    dns = _service(
        "kube-dns",
        uid(),
        {
            "k8s-app": "kube-dns",
            "kubernetes.io/cluster-service": "true",
            "kubernetes.io/name": dns_name,
        },
        "10.96.0.10",
        [
            {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 53},
            {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 53},
            {"name": "metrics", "protocol": "TCP", "port": 9153, "targetPort": 9153},
        ],
    )
    if flavour == "eks":
        dns["metadata"]["labels"] = {
            "eks.amazonaws.com/component": "kube-dns",
            "k8s-app": "kube-dns",
            "kubernetes.io/cluster-service": "true",
            "kubernetes.io/name": "CoreDNS",
        }
    metrics_server = _service(
        "metrics-server",
        uid(),
        {
            "k8s-app": "metrics-server",
            "kubernetes.io/cluster-service": "true",
            "kubernetes.io/name": "Metrics-server",
        },
        "10.96.12.34",
        [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"}],
    )
    if flavour == "openshift":
        return [
            _service(
                "kubelet",
                uid(),
                {"k8s-app": "kubelet"},
                "None",
                [{"name": "https-metrics", "protocol": "TCP", "port": 10250, "targetPort": 10250}],
            )
        ]
    if flavour == "eks":
        return [
            _service(
                "eks-extension-metrics-api",
                uid(),
                {},
                "172.20.151.98",
                [{"name": "metrics-api", "protocol": "TCP", "port": 443, "targetPort": 10443}],
            ),
            dns,
        ]
    if flavour == "gke":
        backend = _service(
            "default-http-backend",
            uid(),
            {
                "k8s-app": "glbc",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "GLBCDefaultBackend",
            },
            "10.96.3.7",
            [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        )
        return [backend, dns, metrics_server]
    if flavour in ("aks", "k3s"):
        return [dns, metrics_server]
    metrics_server["metadata"]["labels"].pop("kubernetes.io/cluster-service")
    return [dns, metrics_server]


# --- label selectors --------------------------------------------------------------------------


def parse_label_selector(text: str) -> list[tuple[str, str, set[str]]]:
    """A subset of the label selector grammar: =, ==, !=, in (...), notin (...), key, !key."""
    reqs: list[tuple[str, str, set[str]]] = []
    for raw in _split_selector(text):
        part = raw.strip()
        if not part:
            continue
        m = re.match(r"^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$", part)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), values))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append((k.strip(), "!=", {v.strip()}))
        elif "==" in part:
            k, v = part.split("==", 1)
            reqs.append((k.strip(), "=", {v.strip()}))
        elif "=" in part:
            k, v = part.split("=", 1)
            reqs.append((k.strip(), "=", {v.strip()}))
        elif part.startswith("!"):
            reqs.append((part[1:].strip(), "!", set()))
        else:
            reqs.append((part, "exists", set()))
    return reqs


def _split_selector(text: str) -> Iterable[str]:
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            yield text[start:i]
            start = i + 1
    yield text[start:]


def selector_matches(reqs: list[tuple[str, str, set[str]]], labels: Mapping[str, str]) -> bool:
    for key, op, values in reqs:
        present = key in labels
        if op == "=" and (not present or labels[key] not in values):
            return False
        if op == "!=" and present and labels[key] in values:
            return False
        if op == "in" and (not present or labels[key] not in values):
            return False
        if op == "notin" and present and labels[key] in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True
