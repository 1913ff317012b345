"""Scenario files: a TOML description of a simulated fleet.

seed = 1
layout = "single"            # single | per-cluster | kubeadm

[defaults]                   # any cluster key; applies to every [[cluster]]
nodes = 5

[[cluster]]
name = "prod-eks"            # with count > 1: prod-eks-1, prod-eks-2, ...
count = 1
flavour = "eks"              # kubeadm | kind | eks | gke | aks | k3s | openshift
version = "v1.29.8"
nodes = 20
virtual_nodes = 0
users = ["cert-data", "token"]   # first = main context; others = more contexts, same cluster
server = "normal"            # normal | closed-port | no-answer | foreign-ca

[cluster.faults]
latency = 0.2                # seconds per request
unavailable = ["metrics.k8s.io"]
malformed = { "/api/v1/nodes" = "truncated" }
expire_continue = 1
hang = false
status = [ { path = "/api/v1/nodes", status = 429, times = 2, retry_after = 1 } ]
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collector.sim.cluster import Faults
from collector.sim.fleet import ClusterSpec, FleetSpec

_CLUSTER_KEYS = {
    "name", "count", "flavour", "version", "nodes", "virtual_nodes", "users", "server",
    "variant", "latency", "alpha_apis", "faults", "host", "path_prefix", "grants",
}  # fmt: skip


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the entry."""


def load_scenario(path: Path, *, out_dir: Path | None = None) -> FleetSpec:
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    return scenario_from_dict(doc, source=str(path), out_dir=out_dir)


def scenario_from_dict(
    doc: Mapping[str, Any], *, source: str = "<scenario>", out_dir: Path | None = None
) -> FleetSpec:
    unknown = set(doc) - {"seed", "layout", "defaults", "cluster"}
    if unknown:
        raise ScenarioError(f"{source}: unknown top-level keys: {', '.join(sorted(unknown))}")
    defaults = dict(doc.get("defaults", {}))
    clusters: list[ClusterSpec] = []
    for index, entry in enumerate(doc.get("cluster", [])):
        where = f"{source}: cluster #{index + 1}"
        merged = {**defaults, **entry}
        unknown = set(merged) - _CLUSTER_KEYS
        if unknown:
            raise ScenarioError(f"{where}: unknown keys: {', '.join(sorted(unknown))}")
        count = int(merged.pop("count", 1))
        base = merged.pop("name", None)
        faults = merged.pop("faults", None)
        if faults is not None:
            try:
                Faults().configure(faults)  # validate now, apply per cluster at start
            except (ValueError, TypeError, KeyError) as exc:
                raise ScenarioError(f"{where}: faults: {exc}") from exc
        for n in range(count):
            name = base if count == 1 else f"{base or 'sim'}-{n + 1}"
            if name is None:
                name = f"sim-{len(clusters):03d}"
            if "users" in merged:
                merged["users"] = tuple(merged["users"])
            if "grants" in merged:
                merged["grants"] = {k: tuple(v) for k, v in dict(merged["grants"]).items()}
            try:
                spec = ClusterSpec(name=name, faults=faults, **merged)
                spec.validate()
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"{where} ({name}): {exc}") from exc
            clusters.append(spec)
    fleet = FleetSpec(
        clusters=clusters,
        seed=int(doc.get("seed", 0)),
        layout=str(doc.get("layout", "single")),
        out_dir=out_dir,
    )
    names = [c.name for c in clusters]
    duplicates = sorted({n for n in names if names.count(n) > 1 and n})
    if duplicates:
        raise ScenarioError(f"{source}: duplicate cluster names: {', '.join(duplicates)}")
    return fleet
