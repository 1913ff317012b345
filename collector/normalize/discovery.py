"""API discovery documents -> :class:`ApiResourceRecord` rows.

Three shapes are decoded:

* aggregated discovery, ``apidiscovery.k8s.io`` ``v2`` and ``v2beta1`` (an
  ``APIGroupDiscoveryList``: ``GET /api`` or ``GET /apis`` with the aggregated Accept header).
  Each group lists its versions in preference order: the first one is the preferred version.
  A version whose ``freshness`` is ``Stale`` makes its whole group stale: the group is named in
  ``stale_groups`` and its resources are left out, so the store keeps the last known ones.
* legacy ``APIVersions`` (``GET /api``) and ``APIGroupList`` (``GET /apis``);
* legacy ``APIResourceList`` (``GET /api/v1``, ``GET /apis/<group>/<version>``).

Every served version is kept; subresources (``pods/log``) are dropped, as ``kubectl
api-resources`` drops them. ``api_version`` is the version alone, the group is in ``api_group``
('' for the core group).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TypeVar

import msgspec
from msgspec.structs import force_setattr

from collector.errors import MalformedResponseError
from collector.normalize import wire
from collector.records import ApiResourceRecord, hash_blank_record

__all__ = [
    "AggregatedResult",
    "GroupVersions",
    "decode_aggregated_discovery",
    "decode_core_versions",
    "decode_group_list",
    "decode_resource_list",
    "select_like_kubectl",
    "version_priority_key",
]

T = TypeVar("T")

_aggregated_decoder = msgspec.json.Decoder(wire.APIGroupDiscoveryList)
_group_list_decoder = msgspec.json.Decoder(wire.APIGroupList)
_versions_decoder = msgspec.json.Decoder(wire.APIVersions)
_resource_list_decoder = msgspec.json.Decoder(wire.APIResourceList)


class AggregatedResult(msgspec.Struct, kw_only=True):
    resources: list[ApiResourceRecord]
    stale_groups: list[str] = []
    # (group, version) pairs the document lists, in preference order, stale ones included.
    group_versions: list[tuple[str, str]] = []


class GroupVersions(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # '' for the core group
    versions: tuple[str, ...]  # in the server's preference order
    preferred: str | None


def _decode(decoder: msgspec.json.Decoder[T], raw: bytes, what: str) -> T:
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedResponseError(f"{what} could not be decoded: {exc}") from exc


def _record(
    res: wire.APIResource | wire.APIResourceDiscovery, *, group: str, version: str, preferred: bool
) -> ApiResourceRecord:
    record = ApiResourceRecord(
        api_group=group,
        api_version=version,
        resource=res.resource,
        kind=res.kind,
        namespaced=res.namespaced,
        verbs=tuple(res.verbs or ()),
        short_names=tuple(res.short_names or ()),
        categories=tuple(res.categories or ()),
        singular_name=res.singular_name or None,
        preferred=preferred,
    )
    force_setattr(record, "content_hash", hash_blank_record(record))  # a new record
    return record


def decode_aggregated_discovery(raw: bytes) -> AggregatedResult:
    """Decode an aggregated discovery document (v2 or v2beta1).

    Clusters of one Kubernetes version serve byte-identical documents (always ``/api``, and
    ``/apis`` when they also share their CRDs and aggregated APIs), so the last few decoded
    documents are kept, keyed on their exact bytes: a fleet decodes each distinct document
    once. The records are frozen and shared; the lists are copied for each caller.
    """
    cached = _decode_aggregated_cached(raw)
    return AggregatedResult(
        resources=list(cached.resources),
        stale_groups=list(cached.stale_groups),
        group_versions=list(cached.group_versions),
    )


@lru_cache(maxsize=8)
def _decode_aggregated_cached(raw: bytes) -> AggregatedResult:
    doc = _decode(_aggregated_decoder, raw, "aggregated discovery")
    if doc.kind and doc.kind != "APIGroupDiscoveryList":
        raise MalformedResponseError(f"expected an APIGroupDiscoveryList, got kind {doc.kind!r}")
    resources: list[ApiResourceRecord] = []
    stale: list[str] = []
    group_versions: list[tuple[str, str]] = []
    for group_doc in doc.items or ():
        group = group_doc.metadata.name if group_doc.metadata else ""
        versions = group_doc.versions or []
        group_versions.extend((group, v.version) for v in versions)
        if any(v.freshness == "Stale" for v in versions):
            stale.append(group)
            continue
        for index, version_doc in enumerate(versions):
            for res in version_doc.resources or ():
                if not res.resource or "/" in res.resource:
                    continue
                resources.append(
                    _record(res, group=group, version=version_doc.version, preferred=index == 0)
                )
    return AggregatedResult(resources=resources, stale_groups=stale, group_versions=group_versions)


def decode_group_list(raw: bytes) -> list[GroupVersions]:
    """Decode a legacy ``APIGroupList`` (``GET /apis``)."""
    doc = _decode(_group_list_decoder, raw, "API group list")
    groups = []
    for group in doc.groups:
        versions = tuple(v.version for v in group.versions if v.version)
        preferred = group.preferred_version.version if group.preferred_version else None
        groups.append(
            GroupVersions(
                name=group.name,
                versions=versions,
                preferred=preferred or (versions[0] if versions else None),
            )
        )
    return groups


def decode_core_versions(raw: bytes) -> list[str]:
    """Decode a legacy ``APIVersions`` (``GET /api``): the core group's versions."""
    return [v for v in _decode(_versions_decoder, raw, "API versions").versions if v]


def decode_resource_list(
    raw: bytes, *, group: str, version: str, preferred: bool
) -> list[ApiResourceRecord]:
    """Decode a legacy ``APIResourceList`` of one group version, subresources dropped."""
    doc = _decode(_resource_list_decoder, raw, f"resource list of {group or 'core'}/{version}")
    return [
        _record(res, group=group, version=version, preferred=preferred)
        for res in doc.resources or ()
        if res.name and "/" not in res.name
    ]


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {None: 2, "beta": 1, "alpha": 0}


def version_priority_key(version: str) -> tuple[int, int, int, int, str]:
    """Sort key giving Kubernetes' version priority (apimachinery CompareKubeAwareVersionStrings).

    GA before beta before alpha, higher numbers first (``v2, v1, v2beta1, v1beta2, v1beta1,
    v1alpha1``); versions that do not look like Kubernetes versions come last, alphabetically.
    Sort ascending with this key.
    """
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (1, 0, 0, 0, version)
    minor = int(match[3]) if match[3] else 0
    return (0, -_STABILITY[match[2]], -int(match[1]), -minor, "")


def select_like_kubectl(resources: Iterable[ApiResourceRecord]) -> list[ApiResourceRecord]:
    """Reproduce the selection of ``kubectl api-resources`` (client-go ServerPreferredResources).

    Per group, each resource appears once: from the preferred version when that version serves
    it, otherwise from the first version, in the server's preference order, that serves it. The
    preference order is the Kubernetes version priority, which is how apiservers order versions.
    Output is ordered by group, then resource name.
    """
    chosen: dict[tuple[str, str], ApiResourceRecord] = {}
    rows = sorted(resources, key=lambda r: (r.api_group, version_priority_key(r.api_version)))
    for row in rows:
        if "/" in row.resource:
            continue
        key = (row.api_group, row.resource)
        current = chosen.get(key)
        if current is None or (row.preferred and not current.preferred):
            chosen[key] = row
    return sorted(chosen.values(), key=lambda r: (r.api_group, r.resource))
