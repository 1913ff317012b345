"""Node pages: raw JSON bytes -> typed wire Structs -> :class:`NodeRecord`.

Accepted inputs: a ``NodeList`` page (what ``GET /api/v1/nodes?limit=N`` returns), a single
``Node`` object, or a JSON array of Node objects (the support-bundle format of some tools).

Nothing here raises on bad content. A field that is wrong is recorded in
``NodeRecord.problems`` and the rest of the node is kept; a node that cannot be identified (not
an object, no name or no uid) is skipped and recorded in ``NodePage.problems``. Only bytes that
are not JSON at all, or JSON that is not a node list, raise :class:`MalformedResponseError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC
from functools import lru_cache
from typing import Any

import msgspec
from msgspec.structs import force_setattr

from collector.errors import MalformedResponseError
from collector.normalize import wire
from collector.normalize.quantity import to_base_number, to_integer, to_millicores
from collector.normalize.salvage import salvage
from collector.records import NodeCondition, NodeRecord, Taint, hash_blank_record

__all__ = [
    "NodePage",
    "ProviderInfo",
    "decode_node_page",
    "node_roles",
    "normalize_node",
    "parse_provider_id",
]

_INT64_MAX = 2**63 - 1

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
LEGACY_ROLE_LABEL = "kubernetes.io/role"
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")

_node_list_decoder = msgspec.json.Decoder(wire.NodeList)
_node_decoder = msgspec.json.Decoder(wire.Node)
_node_array_decoder = msgspec.json.Decoder(list[wire.Node])
_raw_list_decoder = msgspec.json.Decoder(wire.RawNodeList)
_any_decoder = msgspec.json.Decoder()


class NodePage(msgspec.Struct, kw_only=True):
    nodes: list[NodeRecord]
    continue_token: str | None = None
    resource_version: str | None = None
    remaining_item_count: int | None = None
    # Nodes that were skipped because they could not be identified, and page-level oddities.
    problems: list[str] = []


# --- decoding ------------------------------------------------------------------------------


def decode_node_page(raw: bytes) -> NodePage:
    """Decode one page of nodes and normalize every node in it."""
    stripped = raw.lstrip()[:1]
    if stripped == b"[":
        return _decode_array(raw)
    try:
        page = _node_list_decoder.decode(raw)
    except msgspec.ValidationError:
        return _decode_salvaging(raw)
    except msgspec.DecodeError as exc:
        raise MalformedResponseError(f"node list is not valid JSON: {exc}") from exc
    if page.kind == "Node" and page.items is None:
        return _decode_single(raw)
    problems: list[str] = []
    if page.kind not in ("NodeList", ""):
        raise MalformedResponseError(f"expected a NodeList, got kind {page.kind!r}")
    meta = page.metadata or wire.ListMeta()
    return NodePage(
        nodes=_normalize_all(page.items or (), problems),
        continue_token=meta.continue_ or None,
        resource_version=meta.resource_version,
        remaining_item_count=meta.remaining_item_count,
        problems=problems,
    )


def _decode_single(raw: bytes) -> NodePage:
    try:
        node = _node_decoder.decode(raw)
    except msgspec.ValidationError:
        return _salvage_items([_any_decoder.decode(raw)])
    problems: list[str] = []
    return NodePage(nodes=_normalize_all((node,), problems), problems=problems)


def _decode_array(raw: bytes) -> NodePage:
    try:
        nodes = _node_array_decoder.decode(raw)
    except msgspec.ValidationError:
        return _salvage_items(_any_decoder.decode(raw))
    except msgspec.DecodeError as exc:
        raise MalformedResponseError(f"node array is not valid JSON: {exc}") from exc
    problems: list[str] = []
    return NodePage(nodes=_normalize_all(nodes, problems), problems=problems)


def _decode_salvaging(raw: bytes) -> NodePage:
    try:
        page = _raw_list_decoder.decode(raw)
    except msgspec.ValidationError as exc:  # top level is not an object
        raise MalformedResponseError(f"expected a NodeList object: {exc}") from exc
    if page.kind == "Node" and page.items is None:
        return _salvage_items([_any_decoder.decode(raw)])
    if page.kind not in ("NodeList", "", None):
        raise MalformedResponseError(f"expected a NodeList, got kind {page.kind!r}")
    problems: list[str] = []
    meta = wire.ListMeta()
    if page.metadata is not None:
        if isinstance(page.metadata, dict):
            meta = salvage(page.metadata, wire.ListMeta, "metadata", problems)
        else:
            problems.append("metadata: expected object")
    items = page.items
    if items is None:
        items = []
    elif not isinstance(items, list):
        raise MalformedResponseError("NodeList items is not an array")
    result = _salvage_items(items)
    return NodePage(
        nodes=result.nodes,
        continue_token=meta.continue_ or None,
        resource_version=meta.resource_version,
        remaining_item_count=meta.remaining_item_count,
        problems=problems + result.problems,
    )


def _salvage_items(items: Any) -> NodePage:
    if not isinstance(items, list):
        raise MalformedResponseError("expected an array of nodes")
    page_problems: list[str] = []
    nodes: list[NodeRecord] = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            page_problems.append(f"{where}: skipped, not an object")
            continue
        problems: list[str] = []
        try:
            node = msgspec.convert(item, wire.Node)
        except msgspec.ValidationError:
            node = salvage(item, wire.Node, where, problems)
        record = normalize_node(node, problems)
        if record is None:
            page_problems.append(f"{where}: skipped, {problems[-1]}")
        else:
            nodes.append(record)
    return NodePage(nodes=nodes, problems=page_problems)


def _normalize_all(items: Iterable[wire.Node], page_problems: list[str]) -> list[NodeRecord]:
    nodes: list[NodeRecord] = []
    for index, node in enumerate(items):
        problems: list[str] = []
        record = normalize_node(node, problems)
        if record is None:
            page_problems.append(f"items[{index}]: skipped, {problems[-1]}")
        else:
            nodes.append(record)
    return nodes


# --- normalizing ---------------------------------------------------------------------------


def normalize_node(node: wire.Node, problems: list[str]) -> NodeRecord | None:
    """One decoded node -> a NodeRecord with its content hash; None if it has no name or uid.

    ``problems`` holds what was already found while decoding; what normalizing finds is added.
    When the node is skipped, the last problem says why.
    """
    meta = node.metadata
    if meta is None or not meta.name or not meta.uid:
        what = "metadata.name" if meta is None or not meta.name else "metadata.uid"
        name = f" (node {meta.name!r})" if meta is not None and meta.name else ""
        problems.append(f"no {what}{name}")
        return None
    labels = meta.labels or _EMPTY_LABELS
    spec = node.spec or _EMPTY_SPEC
    status = node.status or _EMPTY_STATUS
    info = status.node_info or _EMPTY_INFO

    resources, more = _resource_block(
        tuple(status.capacity.items()) if status.capacity is not None else None,
        tuple(status.allocatable.items()) if status.allocatable is not None else None,
    )
    problems.extend(more)

    provider_id = spec.provider_id or None
    provider = _provider_location(provider_id) if provider_id else None
    get = labels.get
    region = get("topology.kubernetes.io/region") or get("failure-domain.beta.kubernetes.io/region")
    zone = get("topology.kubernetes.io/zone") or get("failure-domain.beta.kubernetes.io/zone")
    instance_type = get("node.kubernetes.io/instance-type") or get(
        "beta.kubernetes.io/instance-type"
    )
    if provider is not None:
        cloud = provider.cloud
        region = region or provider.region
        zone = zone or provider.zone
    else:
        cloud = _cloud_from_labels(labels)

    ready: bool | None = None
    conditions: list[NodeCondition] = []
    for cond in status.conditions or ():
        if cond.type == "Ready":
            ready = cond.status == "True"
        ltt = cond.last_transition_time
        conditions.append(
            NodeCondition(
                type=cond.type,
                status=cond.status,
                reason=cond.reason or None,
                message=cond.message or None,
                last_transition_time=ltt if ltt is None or ltt.tzinfo else ltt.replace(tzinfo=UTC),
            )
        )

    internal_ip = external_ip = None
    for address in status.addresses or ():
        if address.type == "InternalIP":
            if internal_ip is None:
                internal_ip = address.address or None
        elif address.type == "ExternalIP" and external_ip is None:
            external_ip = address.address or None

    created = meta.creation_timestamp
    record = NodeRecord(
        node_uid=meta.uid,
        name=meta.name,
        created_at=created if created is None or created.tzinfo else created.replace(tzinfo=UTC),
        roles=node_roles(labels),
        ready=ready,
        unschedulable=bool(spec.unschedulable),
        kubelet_version=info.kubelet_version or None,
        container_runtime_version=info.container_runtime_version or None,
        os_image=info.os_image or None,
        kernel_version=info.kernel_version or None,
        architecture=info.architecture or None,
        operating_system=info.operating_system or None,
        internal_ip=internal_ip,
        external_ip=external_ip,
        provider_id=provider_id,
        cloud_provider=cloud,
        region=region or None,
        zone=zone or None,
        instance_type=instance_type or None,
        **resources,
        labels=labels,
        taints=tuple(Taint(key=t.key, effect=t.effect, value=t.value or None) for t in spec.taints)
        if spec.taints
        else (),
        conditions=tuple(conditions),
    )
    # Hashed before its problems (which are not content) and its hash are set, as
    # records.content_hash defines it; then both are set in place (the record is new).
    force_setattr(record, "content_hash", hash_blank_record(record))
    if problems:
        force_setattr(record, "problems", tuple(problems))
    return record


_EMPTY_LABELS: dict[str, str] = {}
_EMPTY_SPEC = wire.NodeSpec()
_EMPTY_STATUS = wire.NodeStatus()
_EMPTY_INFO = wire.NodeSystemInfo()


def node_roles(labels: Mapping[str, str]) -> tuple[str, ...]:
    """Roles as ``kubectl get nodes`` shows them: sorted, from the node-role labels."""
    # The node-role labels depend only on the label keys, which the nodes of a node group
    # share: they are found once per distinct key set.
    roles = _key_roles(tuple(labels))
    legacy = labels.get(LEGACY_ROLE_LABEL)
    if legacy and legacy not in roles:
        return tuple(sorted((*roles, legacy)))
    return roles


@lru_cache(maxsize=1024)
def _key_roles(keys: tuple[str, ...]) -> tuple[str, ...]:
    roles = {key[_ROLE_PREFIX_LEN:] for key in keys if key.startswith(ROLE_LABEL_PREFIX)}
    roles.discard("")
    return tuple(sorted(roles))


_ROLE_PREFIX_LEN = len(ROLE_LABEL_PREFIX)


class _Resources(msgspec.Struct, frozen=True):
    """The fields of a NodeRecord that its capacity and allocatable give, by the record's names
    (tests/unit/test_nodes.py checks them against NodeRecord's)."""

    capacity: dict[str, int | float]
    allocatable: dict[str, int | float]
    cpu_capacity_millicores: int | None
    memory_capacity_bytes: int | None
    pods_capacity: int | None
    ephemeral_storage_capacity_bytes: int | None
    gpu_capacity: int | None
    cpu_allocatable_millicores: int | None
    memory_allocatable_bytes: int | None
    pods_allocatable: int | None


_Items = tuple[tuple[str, str | int | float], ...]


@lru_cache(maxsize=4096)
def _resource_block(
    cap_items: _Items | None, alloc_items: _Items | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Everything derived from capacity and allocatable, as NodeRecord's keyword arguments
    (``_Resources`` declares them), and the problems found. Nodes of one node group share these
    maps exactly, so this is cached on their content; nothing returned may be mutated."""
    problems: list[str] = []
    capacity = _resources(cap_items or (), "status.capacity", problems)
    allocatable = _resources(alloc_items or (), "status.allocatable", problems)
    cap_raw = dict(cap_items or ())
    alloc_raw = dict(alloc_items or ())
    gpu: int | None = None
    if cap_items is not None:
        gpu = 0
        for resource in GPU_RESOURCES:
            if resource in cap_raw:
                gpu += _derived(cap_raw, resource, to_integer) or 0
        if gpu > _INT64_MAX:
            problems.append("status.capacity: the GPUs add up to more than a bigint holds")
            gpu = None
    resources = _Resources(
        capacity=capacity,
        allocatable=allocatable,
        cpu_capacity_millicores=_derived(
            cap_raw, "cpu", to_millicores, problems, "status.capacity"
        ),
        memory_capacity_bytes=_derived(cap_raw, "memory", to_integer),
        pods_capacity=_derived(cap_raw, "pods", to_integer),
        ephemeral_storage_capacity_bytes=_derived(cap_raw, "ephemeral-storage", to_integer),
        gpu_capacity=gpu,
        cpu_allocatable_millicores=_derived(
            alloc_raw, "cpu", to_millicores, problems, "status.allocatable"
        ),
        memory_allocatable_bytes=_derived(alloc_raw, "memory", to_integer),
        pods_allocatable=_derived(alloc_raw, "pods", to_integer),
    )
    return msgspec.structs.asdict(resources), tuple(problems)


def _quantity_text(value: str | int | float) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError("a boolean is not a quantity")
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"quantity out of range ({text})")
    return text


def _resources(
    items: Iterable[tuple[str, str | int | float]], where: str, problems: list[str]
) -> dict[str, int | float]:
    out: dict[str, int | float] = {}
    for name, value in items:
        try:
            number = to_base_number(_quantity_text(value))
            if abs(number) > _INT64_MAX:
                raise ValueError("quantity out of range")
        except ValueError as exc:
            problems.append(f"{where}[{name}]: {exc}")
            continue
        out[name] = number
    return out


def _derived(
    raw: Mapping[str, str | int | float],
    name: str,
    convert: Any,
    problems: list[str] | None = None,
    where: str = "",
) -> int | None:
    """A quantity in the unit ``convert`` gives; None when absent, invalid (already reported
    by _resources) or beyond int64 (reported here when ``problems`` is given: CPU in
    millicores can overflow where cores did not)."""
    value = raw.get(name)
    if value is None:
        return None
    try:
        number: int = convert(_quantity_text(value))
    except ValueError:
        return None
    if abs(number) > _INT64_MAX:
        if problems is not None and abs(to_base_number(_quantity_text(value))) <= _INT64_MAX:
            problems.append(f"{where}[{name}]: quantity out of range in millicores")
        return None
    return number


# --- provider ------------------------------------------------------------------------------


class ProviderInfo(msgspec.Struct, frozen=True, kw_only=True):
    cloud: str | None
    region: str | None = None
    zone: str | None = None
    instance_id: str | None = None


def _provider_location(provider_id: str) -> ProviderInfo:
    """:func:`parse_provider_id`'s cloud, region and zone (its instance may differ).

    These depend only on what precedes the last ``/`` when a scheme is there and the last
    segment is not empty (every parse rule reads the instance from that segment alone), so
    they are parsed once per such prefix: once per zone rather than once per node; likewise
    ``<cloud>://<instance>`` once per cloud.
    """
    prefix, _, last = provider_id.rpartition("/")
    if last and "://" in prefix:
        return _prefix_location(prefix)
    scheme, sep, rest = provider_id.partition("://")
    if sep and rest and "/" not in rest and scheme.lower() != "openstack":
        # <cloud>://<instance> (k3s, vsphere...): the cloud alone (OpenStack's is its region).
        return _prefix_location(scheme + ":/")
    return parse_provider_id(provider_id)


@lru_cache(maxsize=4096)
def _prefix_location(prefix: str) -> ProviderInfo:
    return parse_provider_id(prefix + "/i")


_AWS_ZONE_REGION = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+)")
_ALIBABA = re.compile(r"^([a-z]{2}-[a-z0-9-]+)\.(i-[0-9a-z]+)$")


def parse_provider_id(provider_id: str) -> ProviderInfo:
    """Cloud, region, zone and instance from ``spec.providerID``.

    ``aws:///us-east-1a/i-0abc`` (zone and instance), ``gce://project/us-central1-a/name``,
    ``azure:///subscriptions/.../virtualMachines/name``, ``openstack://region/uuid``, and any
    other ``<cloud>://...`` (kind, k3s, vsphere, digitalocean, hcloud, linode...). Alibaba and
    Oracle use ids without a scheme.
    """
    scheme, sep, rest = provider_id.partition("://")
    if not sep:
        if provider_id.startswith("ocid1."):
            return ProviderInfo(cloud="oci", instance_id=provider_id)
        if match := _ALIBABA.match(provider_id):
            return ProviderInfo(cloud="alicloud", region=match[1], instance_id=match[2])
        return ProviderInfo(cloud=None)
    cloud = scheme.lower() or None
    host, _, path = rest.partition("/")
    segments = [s for s in path.split("/") if s]
    if cloud == "aws":
        zone = segments[0] if len(segments) >= 2 else None
        region = None
        if zone and (match := _AWS_ZONE_REGION.match(zone)):
            region = match[1]
        else:
            zone = None
        return ProviderInfo(
            cloud=cloud, region=region, zone=zone, instance_id=segments[-1] if segments else None
        )
    if cloud == "gce":
        if len(segments) >= 2:
            zone = segments[0]
            region = zone.rsplit("-", 1)[0] if zone.count("-") >= 2 else None
            return ProviderInfo(cloud=cloud, region=region, zone=zone, instance_id=segments[-1])
        return ProviderInfo(cloud=cloud)
    if cloud == "azure":
        return ProviderInfo(cloud=cloud, instance_id=segments[-1] if segments else None)
    if cloud == "openstack":
        return ProviderInfo(
            cloud=cloud, region=host or None, instance_id=segments[-1] if segments else None
        )
    instance = segments[-1] if segments else (host or None)
    return ProviderInfo(cloud=cloud, instance_id=instance)


def _cloud_from_labels(labels: Mapping[str, str]) -> str | None:
    """The cloud when providerID is absent: from labels that only one cloud sets."""
    for key in labels:
        if key.startswith(("eks.amazonaws.com/", "k8s.io/cloud-provider-aws")):
            return "aws"
        if key.startswith("kubernetes.azure.com/"):
            return "azure"
        if key.startswith("cloud.google.com/gke-"):
            return "gce"
    return None
