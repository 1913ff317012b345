"""Typed msgspec Structs for the raw Kubernetes API JSON that kubeinv reads.

They keep only the fields the inventory needs; msgspec skips everything else (images,
annotations, managedFields, heartbeat times) without building Python objects for it, which is
what makes decoding ~40x faster than the generated model classes.

Field names are the API's JSON names (``rename="camel"`` plus explicit names where the API is
not camelCase, e.g. ``providerID``). Every field has a default: the API omits empty fields.
Timestamps are decoded as RFC 3339 datetimes by msgspec itself (in C, as cheap as a string); a
bad timestamp fails the strict decode of its page, which is then decoded again leniently
(``salvage``): the bad timestamp becomes a problem on one field, not a failure of the node.
Timestamps without an offset are naive here; the normalizers read them as UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

# --- nodes ---------------------------------------------------------------------------------


class ObjectMeta(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    name: str = ""
    uid: str = ""
    namespace: str = ""
    creation_timestamp: datetime | None = None
    labels: dict[str, str] | None = None


class Taint(msgspec.Struct, kw_only=True, gc=False):
    key: str = ""
    effect: str = ""
    value: str | None = None


class NodeSpec(msgspec.Struct, kw_only=True, gc=False):
    provider_id: str | None = msgspec.field(default=None, name="providerID")
    unschedulable: bool | None = None
    taints: list[Taint] | None = None


class NodeCondition(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    type: str = ""
    status: str = ""
    reason: str | None = None
    message: str | None = None
    last_transition_time: datetime | None = None


class NodeAddress(msgspec.Struct, kw_only=True, gc=False):
    type: str = ""
    address: str = ""


class NodeSystemInfo(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    kubelet_version: str | None = None
    kube_proxy_version: str | None = None
    container_runtime_version: str | None = None
    os_image: str | None = None
    kernel_version: str | None = None
    architecture: str | None = None
    operating_system: str | None = None


class NodeStatus(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    # Quantities are strings on the wire; Go also accepts bare JSON numbers, so do we.
    capacity: dict[str, str | int | float] | None = None
    allocatable: dict[str, str | int | float] | None = None
    conditions: list[NodeCondition] | None = None
    addresses: list[NodeAddress] | None = None
    node_info: NodeSystemInfo | None = None


class Node(msgspec.Struct, kw_only=True, gc=False):
    kind: str = ""
    metadata: ObjectMeta | None = None
    spec: NodeSpec | None = None
    status: NodeStatus | None = None


class ListMeta(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    resource_version: str | None = None
    continue_: str | None = msgspec.field(default=None, name="continue")
    remaining_item_count: int | None = None


class NodeList(msgspec.Struct, kw_only=True, gc=False):
    kind: str = ""
    metadata: ListMeta | None = None
    items: list[Node] | None = None


class RawNodeList(msgspec.Struct, kw_only=True, gc=False):
    """A node list whose items are kept raw, to salvage what a strict decode rejected."""

    kind: Any = None
    metadata: Any = None
    items: Any = None


# --- discovery -----------------------------------------------------------------------------


class GroupVersionForDiscovery(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    group_version: str = ""
    version: str = ""


class APIGroup(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    name: str = ""
    versions: list[GroupVersionForDiscovery] = []
    preferred_version: GroupVersionForDiscovery | None = None


class APIGroupList(msgspec.Struct, kw_only=True, gc=False):
    kind: str = ""
    groups: list[APIGroup] = []


class APIVersions(msgspec.Struct, kw_only=True, gc=False):
    kind: str = ""
    versions: list[str] = []


# Both forms of a resource entry (legacy APIResource, aggregated APIResourceDiscovery) also
# answer to one set of names, as properties: resource, kind, namespaced, singular_name (with
# verbs, short_names and categories, which they share).


class APIResource(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    name: str = ""
    singular_name: str | None = None
    namespaced: bool = False
    group: str | None = None
    version: str | None = None
    kind: str = ""
    verbs: list[str] | None = None
    short_names: list[str] | None = None
    categories: list[str] | None = None

    @property
    def resource(self) -> str:
        return self.name


class APIResourceList(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    kind: str = ""
    group_version: str = ""
    resources: list[APIResource] | None = None


class GroupVersionKind(msgspec.Struct, kw_only=True, gc=False):
    group: str = ""
    version: str = ""
    kind: str = ""


class APIResourceDiscovery(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    resource: str = ""
    response_kind: GroupVersionKind | None = None
    scope: str = ""
    singular_resource: str | None = None
    verbs: list[str] | None = None
    short_names: list[str] | None = None
    categories: list[str] | None = None

    @property
    def kind(self) -> str:
        return self.response_kind.kind if self.response_kind else ""

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def singular_name(self) -> str | None:
        return self.singular_resource


class APIVersionDiscovery(msgspec.Struct, kw_only=True, gc=False):
    version: str = ""
    resources: list[APIResourceDiscovery] | None = None
    freshness: str | None = None


class DiscoveryMeta(msgspec.Struct, kw_only=True, gc=False):
    name: str = ""


class APIGroupDiscovery(msgspec.Struct, kw_only=True, gc=False):
    metadata: DiscoveryMeta | None = None
    versions: list[APIVersionDiscovery] | None = None


class APIGroupDiscoveryList(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    kind: str = ""
    api_version: str = ""
    items: list[APIGroupDiscovery] | None = None


# --- cluster info --------------------------------------------------------------------------


class Version(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    major: str = ""
    minor: str = ""
    git_version: str = ""
    git_commit: str | None = None
    git_tree_state: str | None = None
    build_date: str | None = None
    go_version: str | None = None
    compiler: str | None = None
    platform: str | None = None
    emulation_major: str | None = None
    emulation_minor: str | None = None


class Namespace(msgspec.Struct, kw_only=True, gc=False):
    metadata: ObjectMeta | None = None


class ServicePort(msgspec.Struct, kw_only=True, gc=False):
    name: str = ""
    port: int = 0


class ServiceSpec(msgspec.Struct, kw_only=True, gc=False):
    ports: list[ServicePort] | None = None


class LoadBalancerIngress(msgspec.Struct, kw_only=True, gc=False):
    ip: str = ""
    hostname: str = ""


class LoadBalancerStatus(msgspec.Struct, kw_only=True, gc=False):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    load_balancer: LoadBalancerStatus | None = None


class Service(msgspec.Struct, kw_only=True, gc=False):
    metadata: ObjectMeta | None = None
    spec: ServiceSpec | None = None
    status: ServiceStatus | None = None


class ServiceList(msgspec.Struct, kw_only=True, gc=False):
    kind: str = ""
    items: list[Service] | None = None
