"""Discovery documents of a simulated cluster, built from real upstream snapshots.

The model is the aggregated-discovery (apidiscovery.k8s.io/v2) form: groups, each with its versions
in preference order, each with its resources. The legacy documents (/api, /apis, /apis/{g}/{v})
and the v2beta1 form are rendered from it, so every form a client may ask for tells the same story.

The snapshots come from a v1.31 kube-apiserver started with every alpha/beta API enabled
(see data/README.md). For a given Kubernetes minor the model keeps what a default cluster of that
minor serves: alpha versions off, beta versions that are off by default dropped, versions added
or removed upstream kept within their range, and older versions that the snapshot no longer
has rebuilt from their successor.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import msgspec

Json = dict[str, Any]

_VERBS_ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# (group, version) -> (first minor, last minor) that a default cluster serves. None: open ended.
_GROUP_VERSION_RANGES: dict[tuple[str, str], tuple[int | None, int | None]] = {
    ("flowcontrol.apiserver.k8s.io", "v1"): (29, None),
    ("flowcontrol.apiserver.k8s.io", "v1beta3"): (26, 31),
    ("flowcontrol.apiserver.k8s.io", "v1beta2"): (23, 28),
    ("flowcontrol.apiserver.k8s.io", "v1beta1"): (20, 25),
    ("autoscaling", "v2"): (23, None),
    ("autoscaling", "v2beta2"): (None, 25),
    ("autoscaling", "v2beta1"): (None, 24),
    ("batch", "v1beta1"): (None, 24),
    ("policy", "v1"): (21, None),
    ("policy", "v1beta1"): (None, 24),
    ("discovery.k8s.io", "v1"): (21, None),
    ("discovery.k8s.io", "v1beta1"): (None, 24),
    ("events.k8s.io", "v1beta1"): (None, 24),
    ("node.k8s.io", "v1"): (20, None),
    ("node.k8s.io", "v1beta1"): (None, 24),
    ("storage.k8s.io", "v1beta1"): (None, 26),
    ("networking.k8s.io", "v1beta1"): (None, 21),
    ("admissionregistration.k8s.io", "v1beta1"): (None, 21),
    ("authentication.k8s.io", "v1beta1"): (27, None),
}

# (group, version, resource) -> range, for resources added to an existing group-version.
_RESOURCE_RANGES: dict[tuple[str, str, str], tuple[int | None, int | None]] = {
    ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies"): (30, None),
    ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings"): (30, None),
    ("authentication.k8s.io", "v1", "selfsubjectreviews"): (28, None),
    ("batch", "v1", "cronjobs"): (21, None),
    ("storage.k8s.io", "v1", "csistoragecapacities"): (24, None),
    ("", "v1", "pods/ephemeralcontainers"): (23, None),
}

# Versions the snapshot no longer has: (group, version) -> (copied from version, resources).
_REBUILT: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("flowcontrol.apiserver.k8s.io", "v1beta2"): (
        "v1",
        ("flowschemas", "prioritylevelconfigurations"),
    ),
    ("flowcontrol.apiserver.k8s.io", "v1beta1"): (
        "v1",
        ("flowschemas", "prioritylevelconfigurations"),
    ),
    ("autoscaling", "v2beta2"): ("v2", ("horizontalpodautoscalers",)),
    ("autoscaling", "v2beta1"): ("v2", ("horizontalpodautoscalers",)),
    ("batch", "v1beta1"): ("v1", ("cronjobs",)),
    ("policy", "v1beta1"): ("v1", ("poddisruptionbudgets",)),
    ("discovery.k8s.io", "v1beta1"): ("v1", ("endpointslices",)),
    ("events.k8s.io", "v1beta1"): ("v1", ("events",)),
    ("node.k8s.io", "v1beta1"): ("v1", ("runtimeclasses",)),
    ("storage.k8s.io", "v1beta1"): ("v1", ("csistoragecapacities",)),
    ("networking.k8s.io", "v1beta1"): ("v1", ("ingressclasses", "ingresses")),
    (
        "admissionregistration.k8s.io",
        "v1beta1",
    ): ("v1", ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")),
}

_PODSECURITYPOLICY: Json = {
    "resource": "podsecuritypolicies",
    "responseKind": {"group": "", "kind": "PodSecurityPolicy", "version": ""},
    "scope": "Cluster",
    "shortNames": ["psp"],
    "singularResource": "podsecuritypolicy",
    "verbs": _VERBS_ALL,
}


@dataclass
class ApiGroup:
    """One API group: its versions in preference order (the first is preferred)."""

    name: str
    versions: list[ApiVersion]
    aggregated: bool = False  # served by an APIService (e.g. metrics.k8s.io), not by kube-apiserver

    @classmethod
    def single(cls, name: str, version: str, resources: list[Json]) -> ApiGroup:
        """A group that serves one version."""
        return cls(name, [ApiVersion(version, resources)])


@dataclass
class ApiVersion:
    version: str
    resources: list[Json]  # aggregated-discovery resource entries (apidiscovery.k8s.io/v2 shape)
    storage_hashes: dict[str, str] = field(default_factory=dict)


def _data(name: str) -> bytes:
    return resources.files("collector.sim").joinpath("data", name).read_bytes()


@cache
def _snapshot() -> tuple[list[ApiGroup], dict[tuple[str, str, str], str]]:
    """Groups from the snapshots, and storageVersionHash by (group, version, resource)."""
    aggregated = json.loads(_data("discovery/aggregated_v2.json"))
    core_legacy = json.loads(_data("discovery/api__v1.json"))
    hashes: dict[tuple[str, str, str], str] = {}
    for name in resources.files("collector.sim").joinpath("data", "discovery").iterdir():
        if not name.name.endswith(".json"):
            continue
        doc = json.loads(name.read_bytes())
        if doc.get("kind") != "APIResourceList":
            continue
        group, _, version = doc["groupVersion"].rpartition("/")
        for res in doc["resources"]:
            if "storageVersionHash" in res:
                hashes[(group, version, res["name"])] = res["storageVersionHash"]
    groups = [ApiGroup("", [ApiVersion("v1", legacy_to_aggregated(core_legacy["resources"]))])]
    for item in aggregated["items"]:
        groups.append(
            ApiGroup(
                item["metadata"]["name"],
                [ApiVersion(v["version"], v["resources"]) for v in item["versions"]],
            )
        )
    return groups, hashes


def legacy_to_aggregated(entries: list[Json]) -> list[Json]:
    """APIResourceList entries (subresources as 'pods/log') -> aggregated resource entries."""
    out: dict[str, Json] = {}
    for e in entries:
        name: str = e["name"]
        if "/" in name:
            continue
        res: Json = {"resource": name}
        if e.get("categories"):
            res["categories"] = e["categories"]
        res["responseKind"] = {"group": "", "kind": e["kind"], "version": ""}
        res["scope"] = "Namespaced" if e["namespaced"] else "Cluster"
        if e.get("shortNames"):
            res["shortNames"] = e["shortNames"]
        res["singularResource"] = e.get("singularName") or name
        res["verbs"] = e["verbs"]
        out[name] = res
    for e in entries:
        parent, sep, sub = e["name"].partition("/")
        if not sep or parent not in out:
            continue
        out[parent].setdefault("subresources", []).append(
            {
                "responseKind": {
                    "group": e.get("group", ""),
                    "kind": e["kind"],
                    "version": e.get("version", ""),
                },
                "subresource": sub,
                "verbs": e["verbs"],
            }
        )
    for res in out.values():  # keep the key order of the real documents
        if "subresources" in res:
            verbs = res.pop("verbs")
            res["verbs"] = verbs
    return list(out.values())


def aggregated_to_legacy(version: ApiVersion) -> list[Json]:
    """Aggregated resource entries -> APIResourceList entries, subresources as their own entries."""
    out: list[Json] = []
    for r in version.resources:
        namespaced = r.get("scope") == "Namespaced"
        entry: Json = {}
        if r.get("categories"):
            entry["categories"] = r["categories"]
        entry["kind"] = r["responseKind"]["kind"]
        entry["name"] = r["resource"]
        entry["namespaced"] = namespaced
        if r.get("shortNames"):
            entry["shortNames"] = r["shortNames"]
        entry["singularName"] = r.get("singularResource", "")
        if r["resource"] in version.storage_hashes:
            entry["storageVersionHash"] = version.storage_hashes[r["resource"]]
        entry["verbs"] = r.get("verbs", [])
        out.append(entry)
        for s in r.get("subresources", []):
            sub: Json = {}
            kind = s.get("responseKind") or {}
            if kind.get("group"):
                sub["group"] = kind["group"]
            sub["kind"] = kind.get("kind", entry["kind"])
            sub["name"] = f"{r['resource']}/{s['subresource']}"
            sub["namespaced"] = namespaced
            sub["singularName"] = ""
            sub["verbs"] = s.get("verbs", [])
            if kind.get("version"):
                sub["version"] = kind["version"]
            out.append(sub)
    return out


def _within(rng: tuple[int | None, int | None] | None, minor: int) -> bool:
    if rng is None:
        return True
    low, high = rng
    return (low is None or minor >= low) and (high is None or minor <= high)


def builtin_groups(minor: int, *, alpha: bool = False) -> list[ApiGroup]:
    """The built-in groups a default kube-apiserver of this minor serves.

    The groups are shared between clusters of the same minor: treat them as read-only.
    """
    return list(_builtin_groups(minor, alpha))


@cache
def _builtin_groups(minor: int, alpha: bool) -> tuple[ApiGroup, ...]:
    groups, hashes = _snapshot()
    result: list[ApiGroup] = []
    for g in groups:
        by_version = {v.version: v for v in g.versions}
        order = [v.version for v in g.versions]
        for gname, vname in _REBUILT:
            if gname == g.name and vname not in by_version:
                order.append(vname)
        versions: list[ApiVersion] = []
        for vname in order:
            rng = _GROUP_VERSION_RANGES.get((g.name, vname))
            if rng is None and "alpha" in vname and not alpha:
                continue
            if not _within(rng, minor):
                continue
            if vname in by_version:
                base = by_version[vname]
                kept = [
                    copy.deepcopy(r)
                    for r in base.resources
                    if _within(_RESOURCE_RANGES.get((g.name, vname, r["resource"])), minor)
                ]
                for r in kept:
                    r["subresources"] = [
                        s
                        for s in r.get("subresources", [])
                        if _within(
                            _RESOURCE_RANGES.get(
                                (g.name, vname, f"{r['resource']}/{s['subresource']}")
                            ),
                            minor,
                        )
                    ]
                    if not r["subresources"]:
                        del r["subresources"]
            else:
                source, names = _REBUILT[(g.name, vname)]
                kept = [
                    copy.deepcopy(r) for r in by_version[source].resources if r["resource"] in names
                ]
                if (g.name, vname) == ("policy", "v1beta1"):
                    kept.append(copy.deepcopy(_PODSECURITYPOLICY))
            if not kept:
                continue
            hashes_here = {
                r: h for (gg, vv, r), h in hashes.items() if gg == g.name and vv == vname
            }
            versions.append(ApiVersion(vname, kept, hashes_here))
        if versions:
            versions.sort(key=lambda v: _version_priority(v.version), reverse=True)
            result.append(ApiGroup(g.name, versions))
    return tuple(result)


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, then by major, then by minor."""
    rest = version[1:]
    for stage, level in (("alpha", 0), ("beta", 1)):
        if stage in rest:
            major, _, minor = rest.partition(stage)
            return (level, int(major), int(minor or 0))
    return (2, int(rest), 0)


# --- custom resources ------------------------------------------------------------------------


class _Crd(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """One CustomResourceDefinition, as data/model/crd_groups.json declares it."""

    plural: str
    kind: str
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Literal["scale", "status"], ...] = ()

    def resource(self) -> Json:
        """The aggregated-discovery entry apiextensions-apiserver serves for it."""
        res: Json = {"resource": self.plural}
        if self.categories:
            res["categories"] = list(self.categories)
        res["responseKind"] = self._response_kind("")
        res["scope"] = self.scope
        if self.short_names:
            res["shortNames"] = list(self.short_names)
        res["singularResource"] = self.kind.lower()
        if self.subresources:
            res["subresources"] = [
                {
                    "responseKind": self._response_kind(name),
                    "subresource": name,
                    "verbs": ["get", "patch", "update"],
                }
                for name in self.subresources
            ]
        res["verbs"] = _VERBS_ALL
        return res

    def _response_kind(self, subresource: str) -> Json:
        if subresource == "scale":
            return {"group": "autoscaling", "kind": "Scale", "version": "v1"}
        return {"group": "", "kind": self.kind, "version": ""}


class _CrdVersion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: str
    crds: tuple[_Crd, ...]


class _CrdGroup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    versions: tuple[_CrdVersion, ...]  # in preference order


class _CrdTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    groups: tuple[_CrdGroup, ...]
    flavours: dict[str, tuple[str, ...]]  # flavour -> the CRD groups its clusters install


@cache
def _crd_table() -> tuple[dict[str, _CrdGroup], dict[str, tuple[str, ...]]]:
    table = msgspec.json.decode(_data("model/crd_groups.json"), type=_CrdTable)
    return {g.name: g for g in table.groups}, table.flavours


def _crd_group(name: str) -> ApiGroup:
    group = _crd_table()[0][name]
    return ApiGroup(
        name, [ApiVersion(v.version, [crd.resource() for crd in v.crds]) for v in group.versions]
    )


def metrics_group() -> ApiGroup:
    """metrics.k8s.io, served by metrics-server through an APIService (an aggregated group)."""
    entries = [
        {
            "resource": "nodes",
            "responseKind": {"group": "", "kind": "NodeMetrics", "version": ""},
            "scope": "Cluster",
            "singularResource": "",
            "verbs": ["get", "list"],
        },
        {
            "resource": "pods",
            "responseKind": {"group": "", "kind": "PodMetrics", "version": ""},
            "scope": "Namespaced",
            "singularResource": "",
            "verbs": ["get", "list"],
        },
    ]
    return ApiGroup("metrics.k8s.io", [ApiVersion("v1beta1", entries)], aggregated=True)


# CRD groups a cluster adds by its variant: (modulus, remainder, groups), unless its flavour
# already installs them.
_VARIANT_GROUPS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (2, 0, ("cert-manager.io", "acme.cert-manager.io")),
    (3, 0, ("argoproj.io",)),
    (4, 1, ("snapshot.storage.k8s.io",)),
)


def custom_groups(flavour: str, variant: int) -> list[ApiGroup]:
    """The CRD and aggregated groups of one cluster; `variant` picks a per-cluster mix.

    Every cluster has monitoring.coreos.com (v1 preferred, v1alpha1 serving only
    alertmanagerconfigs) and metrics.k8s.io; then the CRD groups of its flavour and of its
    variant (data/model/crd_groups.json declares them).
    """
    names = list(_crd_table()[1].get(flavour, ()))
    for modulus, remainder, extras in _VARIANT_GROUPS:
        if variant % modulus == remainder:
            names += [name for name in extras if name not in names]
    return [_crd_group("monitoring.coreos.com"), metrics_group(), *map(_crd_group, names)]


# --- rendering -------------------------------------------------------------------------------

_encode = msgspec.json.Encoder().encode

AGGREGATED_V2 = "apidiscovery.k8s.io/v2"
AGGREGATED_V2BETA1 = "apidiscovery.k8s.io/v2beta1"


@dataclass
class RenderedDiscovery:
    """Every discovery body of one cluster, pre-encoded."""

    api_versions: bytes
    api_group_list: bytes
    groups: dict[str, bytes]  # /apis/{group} -> APIGroup
    resource_lists: dict[str, bytes]  # "v1" or "group/version" -> APIResourceList
    aggregated_api: dict[str, bytes]  # apidiscovery version -> /api body
    aggregated_apis: dict[str, bytes]  # apidiscovery version -> /apis body
    served: set[tuple[str, str]]  # (group, version)
    resources_by_path: dict[tuple[str, str, str], Json]  # (group, version, plural) -> entry


def render(groups: list[ApiGroup], stale_groups: frozenset[str] = frozenset()) -> RenderedDiscovery:
    core = [g for g in groups if g.name == ""]
    named = [g for g in groups if g.name != ""]
    address = [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]
    api_versions = _encode(
        {
            "kind": "APIVersions",
            "versions": [v.version for g in core for v in g.versions],
            "serverAddressByClientCIDRs": address,
        }
    )
    group_docs: dict[str, bytes] = {}
    group_entries: list[Json] = []
    for g in named:
        versions = [
            {"groupVersion": f"{g.name}/{v.version}", "version": v.version} for v in g.versions
        ]
        entry = {"name": g.name, "versions": versions, "preferredVersion": versions[0]}
        group_entries.append(entry)
        group_docs[g.name] = _encode({"kind": "APIGroup", "apiVersion": "v1", **entry})
    api_group_list = _encode({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_entries})
    resource_lists: dict[str, bytes] = {}
    served: set[tuple[str, str]] = set()
    by_path: dict[tuple[str, str, str], Json] = {}
    for g in groups:
        for v in g.versions:
            gv = f"{g.name}/{v.version}" if g.name else v.version
            served.add((g.name, v.version))
            for r in v.resources:
                by_path[(g.name, v.version, r["resource"])] = r
            resource_lists[gv] = _encode(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": gv,
                    "resources": aggregated_to_legacy(v),
                }
            )
    aggregated_api: dict[str, bytes] = {}
    aggregated_apis: dict[str, bytes] = {}
    for api_version in (AGGREGATED_V2, AGGREGATED_V2BETA1):
        aggregated_api[api_version] = _aggregated_list(api_version, core, stale_groups)
        aggregated_apis[api_version] = _aggregated_list(api_version, named, stale_groups)
    return RenderedDiscovery(
        api_versions,
        api_group_list,
        group_docs,
        resource_lists,
        aggregated_api,
        aggregated_apis,
        served,
        by_path,
    )


def _aggregated_list(api_version: str, groups: list[ApiGroup], stale: frozenset[str]) -> bytes:
    items: list[Json] = []
    for g in groups:
        metadata: Json = {"creationTimestamp": None}
        if g.name:
            metadata["name"] = g.name
        items.append(
            {
                "metadata": metadata,
                "versions": [
                    {
                        "version": v.version,
                        "resources": v.resources,
                        "freshness": "Stale" if g.name in stale else "Current",
                    }
                    for v in g.versions
                ],
            }
        )
    return _encode(
        {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}
    )
