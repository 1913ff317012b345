"""Pure normalization: raw Kubernetes API JSON -> kubeinv records.

No I/O, no asyncio, no Kubernetes client: bytes in, records out. See ``nodes``, ``discovery``,
``cluster`` and ``quantity``; ``wire`` holds the typed msgspec Structs of the raw API JSON.
"""

from collector.normalize.cluster import (
    decode_cluster_services,
    decode_namespace_uid,
    decode_version,
    detect_provider,
    fallback_cluster_id,
)
from collector.normalize.discovery import (
    AggregatedResult,
    GroupVersions,
    decode_aggregated_discovery,
    decode_core_versions,
    decode_group_list,
    decode_resource_list,
    select_like_kubectl,
)
from collector.normalize.nodes import NodePage, decode_node_page
from collector.normalize.quantity import parse_quantity, to_integer, to_millicores

__all__ = [
    "AggregatedResult",
    "GroupVersions",
    "NodePage",
    "decode_aggregated_discovery",
    "decode_cluster_services",
    "decode_core_versions",
    "decode_group_list",
    "decode_namespace_uid",
    "decode_node_page",
    "decode_resource_list",
    "decode_version",
    "detect_provider",
    "fallback_cluster_id",
    "parse_quantity",
    "select_like_kubectl",
    "to_integer",
    "to_millicores",
]
