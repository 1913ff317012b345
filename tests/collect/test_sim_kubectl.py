"""What kubeinv collects from the simulator agrees with what the real kubectl shows.

kubectl is the oracle: these tests skip where it is absent.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from collector.gathering import GatherOptions, gather
from collector.normalize import select_like_kubectl
from collector.records import ClusterInventory
from collector.settings import CollectionSettings
from collector.sim.fleet import ClusterSpec, Fleet, FleetSpec
from collector.targets import load_targets

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH"),
]

CASES = [
    ClusterSpec(name="kubeadm-131", version="v1.31.2", flavour="kubeadm", nodes=7),
    ClusterSpec(name="eks-128", version="v1.28.15", flavour="eks", nodes=4),
    ClusterSpec(name="aks-127", version="v1.27.16", flavour="aks", nodes=3, virtual_nodes=1),
    ClusterSpec(
        name="openshift-126", version="v1.26.15", flavour="openshift", nodes=3, alpha_apis=True
    ),
    ClusterSpec(name="k3s-132", version="v1.32.1", flavour="k3s", nodes=2),
]


async def kubectl(kubeconfig: Path, context: str, cache: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(kubeconfig),
        "--context",
        context,
        "--cache-dir",
        str(cache),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture
async def collected(tmp_path):
    async with Fleet(FleetSpec(clusters=CASES, seed=7)) as fleet:
        targets = load_targets([str(fleet.kubeconfig)]).targets
        result = await gather(
            targets, GatherOptions(CollectionSettings(page_size=2))
        )  # several pages per cluster
        by_context = {}
        for inventory in result.inventories:
            for name in inventory.context_names:
                by_context[name] = inventory
        assert [o.status for o in result.outcomes] == ["ok"] * len(CASES)
        modes = {o.context_name: o.discovery_mode for o in result.outcomes}
        assert modes == {
            "kubeadm-131": "aggregated-v2",
            "eks-128": "aggregated-v2beta1",
            "aks-127": "aggregated-v2beta1",
            "openshift-126": "legacy",
            "k3s-132": "aggregated-v2",
        }
        yield fleet, by_context, tmp_path / "kubectl-cache"


def kubectl_roles(labels: dict[str, str]) -> list[str]:
    # kubectl get nodes: node-role.kubernetes.io/<role> labels, and kubernetes.io/role=<role>
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key.removeprefix("node-role.kubernetes.io/")
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


async def test_nodes_agree_with_kubectl(collected):
    fleet, by_context, cache = collected
    for spec in CASES:
        inventory: ClusterInventory = by_context[spec.name]
        doc = json.loads(
            await kubectl(fleet.kubeconfig, spec.name, cache, "get", "nodes", "-o", "json")
        )
        expected = {}
        for item in doc["items"]:
            status = item["status"]
            info = status["nodeInfo"]
            ready = next(
                (
                    c["status"] == "True"
                    for c in status.get("conditions", [])
                    if c["type"] == "Ready"
                ),
                None,
            )
            internal = next(
                (a["address"] for a in status.get("addresses", []) if a["type"] == "InternalIP"),
                None,
            )
            expected[item["metadata"]["name"]] = (
                # an empty string (virtual kubelets) is stored as unknown (null)
                item["metadata"]["uid"],
                info["kubeletVersion"] or None,
                info["osImage"] or None,
                info["kernelVersion"] or None,
                info["containerRuntimeVersion"] or None,
                internal,
                kubectl_roles(item["metadata"].get("labels", {})),
                ready,
            )
        ours = {
            n.name: (
                n.node_uid,
                n.kubelet_version,
                n.os_image,
                n.kernel_version,
                n.container_runtime_version,
                n.internal_ip,
                sorted(n.roles),
                n.ready,
            )
            for n in inventory.nodes or ()
        }
        assert len(expected) == spec.nodes + spec.virtual_nodes
        assert ours == expected, spec.name


def parse_api_resources(text: str) -> set[tuple[str, str, str, bool, str, str]]:
    """Rows of ``kubectl api-resources -o wide``, split by the header's column positions."""
    lines = text.splitlines()
    header = lines[0]
    names = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"]
    starts = [header.index(n) for n in names]
    rows = set()
    for line in lines[1:]:
        cells = [
            line[start : starts[i + 1] if i + 1 < len(starts) else None].strip()
            for i, start in enumerate(starts)
        ]
        name, short, api_version, namespaced, kind, verbs, _categories = cells
        rows.add((name, short, api_version, namespaced == "true", kind, verbs.strip("[]")))
    return rows


async def test_api_resources_agree_with_kubectl(collected):
    fleet, by_context, cache = collected
    for spec in CASES:
        inventory = by_context[spec.name]
        text = await kubectl(
            fleet.kubeconfig, spec.name, cache / spec.name, "api-resources", "-o", "wide"
        )
        ours = {
            (
                r.resource,
                ",".join(r.short_names),
                f"{r.api_group}/{r.api_version}" if r.api_group else r.api_version,
                r.namespaced,
                r.kind,
                ",".join(r.verbs),
            )
            for r in select_like_kubectl(inventory.api_resources or ())
        }
        assert ours == parse_api_resources(text), spec.name


async def test_version_agrees_with_kubectl(collected):
    fleet, by_context, cache = collected
    for spec in CASES:
        version = by_context[spec.name].version
        doc = json.loads(await kubectl(fleet.kubeconfig, spec.name, cache, "version", "-o", "json"))
        server = doc["serverVersion"]
        ours = {
            "major": version.major,
            "minor": version.minor,
            "gitVersion": version.git_version,
            "gitCommit": version.git_commit,
            "gitTreeState": version.git_tree_state,
            "goVersion": version.go_version,
            "compiler": version.compiler,
            "platform": version.platform,
            "buildDate": version.build_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if version.emulation_major is not None:
            ours["emulationMajor"] = version.emulation_major
            ours["emulationMinor"] = version.emulation_minor
        server_fields = {
            k: v
            for k, v in server.items()
            if k not in ("minCompatibilityMajor", "minCompatibilityMinor")
        }
        assert ours == server_fields, spec.name
