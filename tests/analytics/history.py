"""Build inventory histories at controlled times through the store's own write path.

``FleetHistory`` keeps each cluster's current records and stores the whole inventory with
``Store.store_inventory(..., at=...)``, exactly as a collection would after normalizing, so the
history rows (valid_from / valid_to, first collection, change-only versions) are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from collector.records import (
    ApiResourceRecord,
    ClusterInventory,
    NodeRecord,
    VersionRecord,
)
from collector.store import Store


def ts(text: str) -> datetime:
    """'2026-03-01 10:00' -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def version(git_version: str) -> VersionRecord:
    major, minor = git_version.lstrip("v").split(".")[:2]
    return VersionRecord(
        major=major,
        minor=minor,
        minor_version=int(minor),
        git_version=git_version,
        platform="linux/amd64",
        go_version="go1.22.5",
    )


def node(
    uid: str,
    name: str,
    kubelet: str | None,
    *,
    cpu: int = 4000,
    memory: int = 16 * 2**30,
    gpu: int | None = None,
    **fields: object,
) -> NodeRecord:
    values: dict[str, object] = {
        "ready": True,
        "roles": ("worker",),
        "labels": {"kubernetes.io/hostname": name},
        **fields,
    }
    return NodeRecord(
        node_uid=uid,
        name=name,
        kubelet_version=kubelet,
        cpu_capacity_millicores=cpu,
        memory_capacity_bytes=memory,
        gpu_capacity=gpu,
        **values,  # type: ignore[arg-type]
    )


def api(
    group: str, ver: str, resource: str, kind: str, *, preferred: bool = True
) -> ApiResourceRecord:
    return ApiResourceRecord(
        api_group=group,
        api_version=ver,
        resource=resource,
        kind=kind,
        namespaced=True,
        verbs=("get", "list", "watch"),
        preferred=preferred,
    )


@dataclass
class ClusterState:
    cluster_id: str
    contexts: tuple[str, ...]
    version: VersionRecord
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    apis: dict[tuple[str, str, str], ApiResourceRecord] = field(default_factory=dict)


class FleetHistory:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.clusters: dict[str, ClusterState] = {}

    async def collect(self, cluster_id: str, at: str) -> None:
        c = self.clusters[cluster_id]
        inv = ClusterInventory(
            cluster_id=c.cluster_id,
            cluster_id_source="kube-system-uid",
            server_url=f"https://{cluster_id}.example.test:6443",
            context_names=c.contexts,
            provider="other",
            version=c.version,
            services=(),
            nodes=tuple(c.nodes.values()),
            api_resources=tuple(c.apis.values()),
            discovery_mode="aggregated-v2",
            collected_at=ts(at),
        )
        await self.store.store_inventory(None, inv, at=ts(at))

    async def add_cluster(
        self,
        cluster_id: str,
        at: str,
        git_version: str,
        *,
        contexts: tuple[str, ...],
        nodes: list[NodeRecord],
        apis: list[ApiResourceRecord],
    ) -> None:
        self.clusters[cluster_id] = ClusterState(
            cluster_id,
            contexts,
            version(git_version),
            {n.node_uid: n for n in nodes},
            {(a.api_group, a.api_version, a.resource): a for a in apis},
        )
        await self.collect(cluster_id, at)

    def upgrade(self, cluster_id: str, git_version: str) -> None:
        self.clusters[cluster_id].version = version(git_version)

    def put_node(self, cluster_id: str, record: NodeRecord) -> None:
        self.clusters[cluster_id].nodes[record.node_uid] = record

    def change_node(self, cluster_id: str, uid: str, **changes: object) -> None:
        nodes = self.clusters[cluster_id].nodes
        nodes[uid] = msgspec.structs.replace(nodes[uid], **changes)

    def remove_node(self, cluster_id: str, uid: str) -> None:
        del self.clusters[cluster_id].nodes[uid]

    def put_api(self, cluster_id: str, record: ApiResourceRecord) -> None:
        key = (record.api_group, record.api_version, record.resource)
        self.clusters[cluster_id].apis[key] = record

    def remove_api(self, cluster_id: str, group: str, ver: str, resource: str) -> None:
        del self.clusters[cluster_id].apis[(group, ver, resource)]
