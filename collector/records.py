"""Frozen record types shared by normalize (which builds them) and store (which writes them).

Pure data: no I/O, no asyncio. Quantities are exact integers in base units (millicores for CPU,
bytes for memory and storage, counts otherwise); the ``capacity`` and ``allocatable`` maps hold
every resource of the node in base units (CPU in cores, which may be fractional), as numbers.

``content_hash`` on each versioned record is the hash of its normalized content. The store
compares hashes and sends only new and changed rows, so that re-collecting an unchanged fleet
writes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

import msgspec

Status = Literal["ok", "partial", "failed"]
ClusterIdSource = Literal["kube-system-uid", "server-ca-hash"]
DiscoveryMode = Literal["aggregated-v2", "aggregated-v2beta1", "legacy"]

_hash_encoder = msgspec.json.Encoder(order="deterministic")


def content_hash(record: msgspec.Struct) -> str:
    """Stable hex digest of a record's normalized content (not its hash, not its problems).

    Definition: the first 32 hex digits of SHA-256 over the record's compact msgspec JSON,
    fields in declaration order and map keys sorted (``order="deterministic"``), with
    ``content_hash`` set to ``""`` and ``problems`` to ``()``. Adding, removing or reordering a
    field of a record type changes every hash of that type (the store then writes one new
    version of every row once).
    """
    blank: dict[str, object] = {}
    if getattr(record, "content_hash", ""):
        blank["content_hash"] = ""
    if getattr(record, "problems", ()):
        blank["problems"] = ()
    if blank:
        record = msgspec.structs.replace(record, **blank)
    return hash_blank_record(record)


def hash_blank_record(record: msgspec.Struct) -> str:
    """:func:`content_hash` of a record whose ``content_hash`` and ``problems`` are still
    empty (the normalizers hash a record before they set them)."""
    return hashlib.sha256(_hash_encoder.encode(record)).hexdigest()[:32]


class Taint(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    key: str
    effect: str
    value: str | None = None


class NodeCondition(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A node condition without its heartbeat time, which changes on every poll."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: datetime | None = None


class NodeRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One node, normalized. Normalizing leaves out, with a problem, an integer field
    (capacities in millicores, bytes or units) that a PostgreSQL bigint cannot hold; the store
    checks them again for records made elsewhere (store/writing.py node_row)."""

    node_uid: str
    name: str
    created_at: datetime | None = None
    roles: tuple[str, ...] = ()
    ready: bool | None = None
    unschedulable: bool = False
    kubelet_version: str | None = None
    container_runtime_version: str | None = None
    os_image: str | None = None
    kernel_version: str | None = None
    architecture: str | None = None
    operating_system: str | None = None
    internal_ip: str | None = None
    external_ip: str | None = None
    provider_id: str | None = None
    cloud_provider: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    cpu_capacity_millicores: int | None = None
    memory_capacity_bytes: int | None = None
    pods_capacity: int | None = None
    ephemeral_storage_capacity_bytes: int | None = None
    gpu_capacity: int | None = None
    cpu_allocatable_millicores: int | None = None
    memory_allocatable_bytes: int | None = None
    pods_allocatable: int | None = None
    capacity: dict[str, int | float] = {}
    allocatable: dict[str, int | float] = {}
    labels: dict[str, str] = {}
    taints: tuple[Taint, ...] = ()
    conditions: tuple[NodeCondition, ...] = ()
    # Problems found while normalizing this node (a bad quantity, a field of the wrong type).
    # Reported, never hashed: the rest of the node is kept.
    problems: tuple[str, ...] = ()
    content_hash: str = ""


class ApiResourceRecord(msgspec.Struct, frozen=True, kw_only=True):
    api_group: str  # '' for the core group
    api_version: str  # the version alone: 'v1', 'v1beta1'
    resource: str  # plural name, never a subresource
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    singular_name: str | None = None
    preferred: bool = False  # this version is the group's preferred version
    content_hash: str = ""


class ClusterServiceRecord(msgspec.Struct, frozen=True, kw_only=True):
    namespace: str
    name: str
    proxy_url: str


class VersionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Every field of ``GET /version``, plus the parsed minor."""

    major: str
    minor: str
    minor_version: int | None  # "28+" -> 28
    git_version: str
    git_commit: str | None = None
    git_tree_state: str | None = None
    build_date: datetime | None = None
    go_version: str | None = None
    compiler: str | None = None
    platform: str | None = None
    emulation_major: str | None = None
    emulation_minor: str | None = None
    content_hash: str = ""


class ClusterInventory(msgspec.Struct, kw_only=True):
    """What one collection read of one cluster.

    ``None`` means "not read" (forbidden, failed): the store then keeps the last known state of
    that part. An empty tuple means "read, and there are none".
    """

    cluster_id: str
    cluster_id_source: ClusterIdSource
    server_url: str
    context_names: tuple[str, ...]
    provider: str = "other"  # eks, gke, aks, openshift, k3s, kind, other
    version: VersionRecord | None = None
    services: tuple[ClusterServiceRecord, ...] | None = None
    nodes: tuple[NodeRecord, ...] | None = None
    api_resources: tuple[ApiResourceRecord, ...] | None = None
    discovery_mode: DiscoveryMode | None = None
    # API groups whose discovery failed or was Stale: their stored resources are kept as they
    # were, neither closed nor replaced.
    failed_groups: tuple[str, ...] = ()
    collected_at: datetime | None = None


class TargetOutcome(msgspec.Struct, kw_only=True):
    """One ledger row: one (kubeconfig file, context) in one run."""

    kubeconfig_path: str
    context_name: str
    status: Status
    cluster_id: str | None = None
    server_url: str | None = None
    deduplicated: bool = False
    error_class: str | None = None
    error_message: str | None = None  # already redacted
    duration_ms: int = 0
    discovery_mode: DiscoveryMode | None = None
    insecure_skip_tls_verify: bool = False
    node_count: int | None = None
    api_resource_count: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class CollectionResult(msgspec.Struct, kw_only=True):
    """Everything one run gathered: one outcome per target, one inventory per cluster."""

    started_at: datetime
    finished_at: datetime
    outcomes: list[TargetOutcome]
    inventories: list[ClusterInventory]

    @property
    def status(self) -> Status:
        if all(o.status == "ok" for o in self.outcomes):
            return "ok"
        if any(o.status != "failed" for o in self.outcomes):
            return "partial"
        return "failed"
