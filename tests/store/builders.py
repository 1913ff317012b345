"""Hand-built inventories for store tests (no simulator needed)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from collector.records import (
    ApiResourceRecord,
    ClusterInventory,
    ClusterServiceRecord,
    NodeCondition,
    NodeRecord,
    Taint,
    VersionRecord,
    content_hash,
)
from collector.store import Store

CREATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def hashed(record: Any) -> Any:
    return msgspec.structs.replace(record, content_hash=content_hash(record))


def version(git_version: str = "v1.30.2") -> VersionRecord:
    minor = int(git_version.split(".")[1])
    return hashed(
        VersionRecord(
            major="1",
            minor=str(minor),
            minor_version=minor,
            git_version=git_version,
            git_commit="abc123",
            build_date=CREATED,
            go_version="go1.22.5",
            platform="linux/amd64",
        )
    )


def node(i: int, *, cluster: str = "c", kubelet: str = "v1.30.2", **changes: Any) -> NodeRecord:
    base = NodeRecord(
        node_uid=f"{cluster}-uid-{i}",
        name=f"node-{i}",
        created_at=CREATED,
        roles=("worker",),
        ready=True,
        kubelet_version=kubelet,
        container_runtime_version="containerd://1.7.13",
        os_image="Ubuntu 22.04.4 LTS",
        kernel_version="5.15.0-105-generic",
        architecture="amd64",
        operating_system="linux",
        internal_ip=f"10.0.{i // 250}.{i % 250 + 1}",
        provider_id=f"aws:///eu-west-1a/i-{i:08x}",
        region="eu-west-1",
        zone="eu-west-1a",
        instance_type="m5.xlarge",
        cpu_capacity_millicores=4000,
        memory_capacity_bytes=16 * 2**30,
        pods_capacity=110,
        ephemeral_storage_capacity_bytes=100 * 2**30,
        gpu_capacity=0,
        cpu_allocatable_millicores=3920,
        memory_allocatable_bytes=15 * 2**30,
        pods_allocatable=110,
        capacity={"cpu": 4, "memory": 16 * 2**30, "pods": 110},
        allocatable={"cpu": 3.92, "memory": 15 * 2**30, "pods": 110},
        labels={"kubernetes.io/hostname": f"node-{i}", "topology.kubernetes.io/zone": "a"},
        taints=(),
        conditions=(
            NodeCondition(type="Ready", status="True", reason="KubeletReady",
                          last_transition_time=CREATED),
        ),
    )  # fmt: skip
    return hashed(msgspec.structs.replace(base, **changes))


def cordoned(record: NodeRecord) -> NodeRecord:
    return hashed(
        msgspec.structs.replace(
            record,
            unschedulable=True,
            taints=(Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule"),),
        )
    )


def relabelled(record: NodeRecord, **labels: str) -> NodeRecord:
    return hashed(msgspec.structs.replace(record, labels={**record.labels, **labels}))


def api(
    group: str, ver: str, resource: str, kind: str, *, preferred: bool = True
) -> ApiResourceRecord:
    return hashed(
        ApiResourceRecord(
            api_group=group,
            api_version=ver,
            resource=resource,
            kind=kind,
            namespaced=True,
            verbs=("get", "list", "watch"),
            preferred=preferred,
        )
    )


def api_resources() -> tuple[ApiResourceRecord, ...]:
    return (
        api("", "v1", "pods", "Pod"),
        api("", "v1", "nodes", "Node"),
        api("apps", "v1", "deployments", "Deployment"),
        api("batch", "v1", "cronjobs", "CronJob"),
        api("example.com", "v1", "widgets", "Widget"),
        api("example.com", "v1alpha1", "widgets", "Widget", preferred=False),
        api("example.com", "v1", "gadgets", "Gadget"),
        api("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics"),
    )


def services() -> tuple[ClusterServiceRecord, ...]:
    return (
        ClusterServiceRecord(namespace="kube-system", name="kube-dns",
                             proxy_url="https://k/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"),
    )  # fmt: skip


def inventory(
    cluster_id: str = "c",
    *,
    nodes: int | tuple[NodeRecord, ...] | None = 3,
    contexts: tuple[str, ...] = ("ctx-a",),
    **changes: Any,
) -> ClusterInventory:
    node_records = (
        tuple(node(i, cluster=cluster_id) for i in range(nodes))
        if isinstance(nodes, int)
        else nodes
    )
    inv = ClusterInventory(
        cluster_id=cluster_id,
        cluster_id_source="kube-system-uid",
        server_url=f"https://{cluster_id}.example:6443",
        context_names=contexts,
        provider="eks",
        version=version(),
        services=services(),
        nodes=node_records,
        api_resources=api_resources(),
        discovery_mode="aggregated-v2",
    )
    for key, value in changes.items():
        setattr(inv, key, value)
    return inv


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


async def fetch_view(
    store: Store, name: str, *args: Any, order_by: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Rows of view ``inventory.<name>``, or of function ``inventory.<name>(*args)``: for tests,
    which read any view; kubeinv itself runs only the named queries of sql/queries/."""
    if not _IDENTIFIER.match(name) or any(not _IDENTIFIER.match(c) for c in order_by):
        raise ValueError(f"not a view name: {name!r}")
    source = f"inventory.{name}"
    if args:
        source += "(" + ", ".join(f"${i + 1}" for i in range(len(args))) + ")"
    sql = f"SELECT * FROM {source}"
    if order_by:
        sql += " ORDER BY " + ", ".join(order_by)
    async with store.connection() as conn:
        return [dict(row) for row in await conn.fetch(sql, *args)]
