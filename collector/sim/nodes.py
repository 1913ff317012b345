"""Node objects of a simulated cluster, modelled on the real nodes in data/nodes.

Generation is deterministic: every random choice comes from a `random.Random` seeded with the
fleet seed, the cluster name and the node index. Each node is encoded to JSON once; only the
condition heartbeat times change per request, and they are spliced in with one bytes.replace
over the joined page (see HEARTBEAT_PLACEHOLDER).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import msgspec

Json = dict[str, Any]

FLAVOURS = ("kubeadm", "kind", "eks", "gke", "aks", "k3s", "openshift")

# Same length as an RFC 3339 time ("2026-01-02T20:07:55Z") so byte offsets do not matter.
HEARTBEAT_PLACEHOLDER = b"@@SIM-HEARTBEAT-TS@@"
assert len(HEARTBEAT_PLACEHOLDER) == 20

_encode = msgspec.json.Encoder().encode
_EPOCH = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def rfc3339(t: dt.datetime) -> str:
    return t.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


@cache
def _fixture_images(name: str) -> list[Json]:
    data = json.loads(resources.files("collector.sim").joinpath("data", "nodes", name).read_bytes())
    items = data.get("items", [data])
    return list(items[0]["status"].get("images", []))


def _images(flavour: str, minor: int) -> list[Json]:
    if flavour in ("kubeadm", "kind"):
        base = _fixture_images("kind-v1.20.0-nodelist.json")
    elif flavour == "eks":
        base = _fixture_images("eks-v1.31.13-nodelist.json")
    elif flavour == "k3s":
        base = _fixture_images("k3s-v1.28.5-nodelist.json")
    elif flavour == "gke":
        base = [
            {
                "names": [f"gke.gcr.io/kube-proxy-amd64:v1.{minor}.5-gke.1014001"],
                "sizeBytes": 98324331,
            },
            {"names": ["gke.gcr.io/gke-metrics-agent:1.12.3-gke.11"], "sizeBytes": 65911458},
            {"names": ["gke.gcr.io/fluent-bit:v1.8.12-gke.36"], "sizeBytes": 28510234},
            {"names": ["registry.k8s.io/pause:3.9"], "sizeBytes": 321520},
        ]
    elif flavour == "aks":
        base = [
            {
                "names": ["mcr.microsoft.com/oss/kubernetes/kube-proxy:v1.29.7-hotfix.20240724"],
                "sizeBytes": 31283112,
            },
            {
                "names": ["mcr.microsoft.com/containernetworking/azure-cns:v1.5.32"],
                "sizeBytes": 74182013,
            },
            {"names": ["mcr.microsoft.com/oss/kubernetes/pause:3.6"], "sizeBytes": 299513},
        ]
    else:
        base = [
            {
                "names": [
                    "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:"
                    "0a5fd6b9e8d6f7a9a8c4e0b0c1e5e43dd1f2f4bd0bde22cdbd39e8d3d8e5b6f1"
                ],
                "sizeBytes": 1183446720,
            },
            {
                "names": [
                    "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:"
                    "2f0b3b1a1d3e0f5f2c9e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8"
                ],
                "sizeBytes": 537810102,
            },
        ]
    return base


class _Shape(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """A node size: its instance type, capacity and allocatable (Kubernetes quantities)."""

    instance_type: str
    cpu: str
    cpu_allocatable: str
    memory: str
    memory_allocatable: str
    pods: str
    gpu: str | None = None


# Each flavour's node sizes; its control planes take the first.
_SHAPES = msgspec.json.decode(
    resources.files("collector.sim").joinpath("data", "model", "node_shapes.json").read_bytes(),
    type=dict[str, list[_Shape]],
)

_REGIONS: dict[str, list[tuple[str, list[str]]]] = {
    "eks": [
        ("us-east-1", ["us-east-1a", "us-east-1b", "us-east-1c"]),
        ("eu-west-1", ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ],
    "gke": [
        ("europe-west1", ["europe-west1-b", "europe-west1-c", "europe-west1-d"]),
        ("us-central1", ["us-central1-a", "us-central1-b", "us-central1-f"]),
    ],
    "aks": [
        ("westeurope", ["westeurope-1", "westeurope-2", "westeurope-3"]),
        ("southcentralus", ["0"]),
    ],
    "openshift": [("us-east1", ["us-east1-b", "us-east1-c", "us-east1-d"])],
}


class SimNode:
    """One node, kept as its JSON (list-item form, heartbeat placeholders) to stay small.

    `obj` decodes the JSON for a mutation and keeps the dict until `render()` encodes it again
    and drops it, so a 20,000-node cluster holds bytes, not 20,000 trees of dicts.
    """

    __slots__ = ("_obj", "body", "created", "name")

    def __init__(self, name: str, obj: Json, *, created: dt.datetime = _EPOCH) -> None:
        self.name = name
        self.created = created
        self._obj: Json | None = obj
        self.body = b""

    @property
    def obj(self) -> Json:
        """The node object for changing it; call render() afterwards."""
        if self._obj is None:
            self._obj = msgspec.json.decode(self.body)
        return self._obj

    def decoded(self) -> Json:
        """A fresh copy of the node object (heartbeats still placeholders), for reading."""
        result: Json = msgspec.json.decode(self.body)
        return result

    def render(self) -> None:
        obj = self.obj
        self.body = _encode(obj)
        self._obj = None

    @property
    def labels(self) -> dict[str, str]:
        """The labels, for changing them; call render() afterwards."""
        labels: dict[str, str] = self.obj["metadata"].setdefault("labels", {})
        return labels

    def current_labels(self) -> dict[str, str]:
        if self._obj is not None:
            return dict(self._obj["metadata"].get("labels", {}))
        labels: dict[str, str] = self.decoded()["metadata"].get("labels", {})
        return labels


@dataclass(frozen=True)
class NodeContext:
    """What node generation needs to know about its cluster."""

    cluster: str
    flavour: str
    minor: int
    patch: int
    seed: int


def uuid4_from(rng: random.Random) -> str:
    """A version-4 UUID string drawn from `rng` (deterministic, unlike uuid.uuid4)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


@cache
def _cluster_choices(seed: int, cluster: str, flavour: str) -> tuple[str, list[str], str]:
    """Cluster-wide choices: region, zones, and a hex id used in pool and infra names."""
    crng = random.Random(f"{seed}/{cluster}")
    regions = _REGIONS.get(flavour, [("", [""])])
    region, zones = regions[crng.randrange(len(regions))]
    return region, zones, f"{crng.getrandbits(32):08x}"


@cache
def kubelet_version(flavour: str, minor: int, patch: int) -> str:
    """The kubelet's version string; one build (same suffix) per flavour and version."""
    rng = random.Random(f"{flavour}/{minor}.{patch}")
    if flavour == "eks":
        return f"v1.{minor}.{patch}-eks-{rng.getrandbits(28):07x}"
    if flavour == "gke":
        return f"v1.{minor}.{patch}-gke.{1000000 + rng.randrange(90000)}"
    if flavour == "k3s":
        return f"v1.{minor}.{patch}+k3s1"
    if flavour == "openshift":
        return f"v1.{minor}.{patch}+{rng.getrandbits(28):07x}"
    return f"v1.{minor}.{patch}"


class _Draft:
    """A node being made: the choices every flavour shares, then what its flavour adds
    (name, provider ID, OS and runtime, set by one of _FLAVOUR_HOSTS)."""

    __slots__ = (
        "annotations",
        "arch",
        "cluster_hex",
        "ctx",
        "external_ip",
        "host_hex",
        "index",
        "ip",
        "is_cp",
        "kernel",
        "labels",
        "name",
        "os_image",
        "provider_id",
        "region",
        "rng",
        "runtime",
        "shape",
        "taints",
        "zone",
    )

    def __init__(self, ctx: NodeContext, index: int, total: int, rng: random.Random) -> None:
        f = ctx.flavour
        # At least one worker where there are two nodes or more.
        control_planes = min(
            {"kubeadm": 3, "kind": 1, "k3s": 1, "openshift": 3}.get(f, 0), max(total - 1, 1)
        )
        self.ctx, self.index, self.rng = ctx, index, rng
        self.is_cp = is_cp = index < control_planes
        shapes = _SHAPES[f]
        self.shape: _Shape = shapes[0] if is_cp else shapes[rng.randrange(len(shapes))]
        self.region, zones, self.cluster_hex = _cluster_choices(ctx.seed, ctx.cluster, f)
        self.zone = zones[index % len(zones)]
        ip = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
        self.ip = ip[:-2] + ".254" if ip.endswith(".0") else ip
        self.host_hex = f"{rng.getrandbits(32):08x}"
        arch = "arm64" if (f in ("k3s", "eks") and not is_cp and rng.random() < 0.2) else "amd64"
        self.arch = arch
        self.labels = {"beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux"}
        self.annotations = {
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        }
        self.taints: list[Json] = []
        self.name = self.provider_id = self.kernel = self.os_image = self.runtime = ""
        self.external_ip: str | None = None


def _eks_host(d: _Draft) -> None:
    rng, ip = d.rng, d.ip
    domain = "ec2.internal" if d.region == "us-east-1" else f"{d.region}.compute.internal"
    d.name = f"ip-{ip.replace('.', '-')}.{domain}"
    d.provider_id = f"aws:///{d.zone}/i-0{rng.getrandbits(64):016x}"
    d.labels.update(
        {
            "eks.amazonaws.com/capacityType": "SPOT" if rng.random() < 0.2 else "ON_DEMAND",
            "eks.amazonaws.com/nodegroup": "gpu" if d.shape.gpu else "main",
            "eks.amazonaws.com/nodegroup-image": f"ami-0{rng.getrandbits(64):016x}",
            "k8s.io/cloud-provider-aws": f"{rng.getrandbits(128):032x}",
            "topology.k8s.aws/zone-id": f"use1-az{1 + d.index % 3}",
        }
    )
    d.annotations["alpha.kubernetes.io/provided-node-ip"] = ip
    d.kernel, d.os_image = "6.1.102-111.182.amzn2023.x86_64", "Amazon Linux 2023.5.20240805"
    d.runtime = "containerd://1.7.20"
    if d.arch == "arm64":
        d.kernel = d.kernel.replace("x86_64", "aarch64")


def _gke_host(d: _Draft) -> None:
    index, shape = d.index, d.shape
    pool = "gpu-pool" if shape.gpu else "default-pool"
    d.name = f"gke-{d.ctx.cluster}-{pool}-{d.host_hex}-{d.rng.getrandbits(16):04x}"
    d.provider_id = f"gce://sim-project-{d.ctx.seed}/{d.zone}/{d.name}"
    d.labels.update(
        {
            "cloud.google.com/gke-boot-disk": "pd-balanced",
            "cloud.google.com/gke-container-runtime": "containerd",
            "cloud.google.com/gke-nodepool": pool,
            "cloud.google.com/gke-os-distribution": "cos",
            "cloud.google.com/machine-family": shape.instance_type.split("-")[0],
        }
    )
    if shape.gpu:
        d.labels["cloud.google.com/gke-accelerator"] = "nvidia-tesla-a100"
    d.external_ip = f"34.{76 + index % 20}.{(index >> 8) & 255}.{index & 255}"
    d.kernel, d.os_image = "6.1.100+", "Container-Optimized OS from Google"
    d.runtime = "containerd://1.7.22"


def _aks_host(d: _Draft) -> None:
    ctx, index, region = d.ctx, d.index, d.region
    pool = "gpupool" if d.shape.gpu else "nodepool1"
    vmss = f"aks-{pool}-{int(d.cluster_hex, 16) % 90000000 + 10000000}-vmss"
    d.name = f"{vmss}{index:06x}"
    d.provider_id = (
        f"azure:///subscriptions/{uuid.uuid5(uuid.NAMESPACE_OID, f'{ctx.seed}/{ctx.cluster}')}"
        f"/resourceGroups/mc_sim_{ctx.cluster}_{region}/providers/Microsoft.Compute"
        f"/virtualMachineScaleSets/{vmss}/virtualMachines/{index}"
    )
    d.labels.update(
        {
            "agentpool": pool,
            "kubernetes.azure.com/agentpool": pool,
            "kubernetes.azure.com/cluster": f"MC_sim_{ctx.cluster}_{region}",
            "kubernetes.azure.com/mode": "system" if index == 0 else "user",
            "kubernetes.azure.com/node-image-version": "AKSUbuntu-2204gen2-2024.07.29",
            "kubernetes.azure.com/os-sku": "Ubuntu",
            "kubernetes.azure.com/role": "agent",
            "kubernetes.io/role": "agent",
            "node-role.kubernetes.io/agent": "",
            "storageprofile": "managed",
            "storagetier": "Premium_LRS",
        }
    )
    d.kernel, d.os_image = "5.15.0-1068-azure", "Ubuntu 22.04.4 LTS"
    d.runtime = "containerd://1.7.15-1"


def _k3s_host(d: _Draft) -> None:
    ip = d.ip
    d.name = name = f"k3s-server-{d.index}" if d.is_cp else f"k3s-agent-{d.index:03d}"
    d.provider_id = f"k3s://{name}"
    d.annotations.update(
        {
            "alpha.kubernetes.io/provided-node-ip": ip,
            "flannel.alpha.coreos.com/backend-type": "vxlan",
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            "flannel.alpha.coreos.com/public-ip": ip,
            "k3s.io/hostname": name,
            "k3s.io/internal-ip": ip,
        }
    )
    if d.is_cp:
        for role in ("control-plane", "master", "etcd"):
            d.labels[f"node-role.kubernetes.io/{role}"] = "true"
    d.kernel, d.os_image = "5.15.0-92-generic", "Ubuntu 20.04.6 LTS"
    d.runtime = f"containerd://1.7.{d.rng.choice([11, 15, 17])}-k3s2"
    if d.arch == "arm64":
        d.kernel, d.os_image = "6.1.21-v8+", "Debian GNU/Linux 12 (bookworm)"


def _openshift_host(d: _Draft) -> None:
    infra = f"{d.ctx.cluster}-{d.cluster_hex[:5]}"
    d.name = name = (
        f"{infra}-master-{d.index}"
        if d.is_cp
        else f"{infra}-worker-{d.zone[-1]}-{d.rng.getrandbits(20):05x}"
    )
    d.provider_id = f"gce://openshift-sim-{d.ctx.seed}/{d.zone}/{name}"
    d.labels["node.openshift.io/os_id"] = "rhcos"
    d.labels["node-role.kubernetes.io/master" if d.is_cp else "node-role.kubernetes.io/worker"] = ""
    d.annotations.update(
        {
            "machine.openshift.io/machine": f"openshift-machine-api/{name}",
            "machineconfiguration.openshift.io/state": "Done",
        }
    )
    d.kernel = "5.14.0-284.36.1.el9_2.x86_64"
    d.os_image = "Red Hat Enterprise Linux CoreOS 414.92.202310170514-0 (Plow)"
    d.runtime = "cri-o://1.27.1-6.rhaos4.14.gitf4c1b4e.el9"
    if d.is_cp:
        d.taints.append({"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"})


def _kind_host(d: _Draft) -> None:
    cluster = d.ctx.cluster
    d.name = (
        f"{cluster}-control-plane"
        if d.is_cp
        else f"{cluster}-worker{'' if d.index == 1 else str(d.index)}"
    )
    d.provider_id = f"kind://docker/{cluster}/{d.name}"
    d.annotations["kubeadm.alpha.kubernetes.io/cri-socket"] = (
        "unix:///run/containerd/containerd.sock"
    )
    d.kernel, d.os_image = "6.5.0-1025-azure", "Debian GNU/Linux 12 (bookworm)"
    d.runtime = "containerd://1.7.18"


def _kubeadm_host(d: _Draft) -> None:
    """kubeadm on vSphere."""
    d.name = f"k8s-{'cp' if d.is_cp else 'worker'}-{d.index:03d}"
    d.provider_id = f"vsphere://{uuid4_from(d.rng)}"
    d.annotations["kubeadm.alpha.kubernetes.io/cri-socket"] = (
        "unix:///var/run/containerd/containerd.sock"
    )
    d.kernel, d.os_image = "5.15.0-119-generic", "Ubuntu 22.04.4 LTS"
    d.runtime = "containerd://1.6.33"
    d.external_ip = f"192.0.2.{d.index % 250 + 1}"


# What each flavour makes of a node: its name, provider ID, OS and runtime, and its own labels,
# annotations and taints.
_FLAVOUR_HOSTS: dict[str, Callable[[_Draft], None]] = {
    "kubeadm": _kubeadm_host,
    "kind": _kind_host,
    "eks": _eks_host,
    "gke": _gke_host,
    "aks": _aks_host,
    "k3s": _k3s_host,
    "openshift": _openshift_host,
}


def _add_common_labels(d: _Draft) -> dict[str, str]:
    """The labels and taints every flavour's nodes get (roles, hostname, instance type,
    topology, GPU); the labels sorted."""
    f, minor, labels = d.ctx.flavour, d.ctx.minor, d.labels
    if f in ("kubeadm", "kind") and d.is_cp:
        labels["node-role.kubernetes.io/control-plane"] = ""
        if minor < 24:
            labels["node-role.kubernetes.io/master"] = ""
        taint_key = (
            "node-role.kubernetes.io/control-plane"
            if minor >= 24
            else "node-role.kubernetes.io/master"
        )
        d.taints.append({"key": taint_key, "effect": "NoSchedule"})
    if f in ("kubeadm",) and not d.is_cp:
        labels["node-role.kubernetes.io/worker"] = ""
    labels.update(
        {
            "kubernetes.io/arch": d.arch,
            "kubernetes.io/hostname": d.name,
            "kubernetes.io/os": "linux",
        }
    )
    if f not in ("kind",):
        labels["beta.kubernetes.io/instance-type"] = d.shape.instance_type
        labels["node.kubernetes.io/instance-type"] = d.shape.instance_type
    if d.region:
        labels["topology.kubernetes.io/region"] = d.region
        labels["topology.kubernetes.io/zone"] = d.zone
        if f in ("eks", "aks", "openshift") or minor < 24:  # legacy labels linger there
            labels["failure-domain.beta.kubernetes.io/region"] = d.region
            labels["failure-domain.beta.kubernetes.io/zone"] = d.zone
    if d.shape.gpu:
        d.taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
    return dict(sorted(labels.items()))


def _resources(shape: _Shape, flavour: str) -> tuple[dict[str, str], dict[str, str]]:
    """Capacity and allocatable of a node of this shape."""
    capacity: dict[str, str] = {
        "cpu": shape.cpu,
        "ephemeral-storage": "102687672Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": shape.memory,
        "pods": shape.pods,
    }
    allocatable: dict[str, str] = {
        "cpu": shape.cpu_allocatable,
        "ephemeral-storage": "94636958816",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": shape.memory_allocatable,
        "pods": shape.pods,
    }
    if flavour == "aks":
        capacity["attachable-volumes-azure-disk"] = allocatable["attachable-volumes-azure-disk"] = (
            "8"
        )
    if shape.gpu:
        capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = shape.gpu
    return capacity, allocatable


def make_node(ctx: NodeContext, index: int, *, total: int) -> SimNode:
    """The index-th node of a cluster; the same inputs always give the same node."""
    rng = random.Random(f"{ctx.seed}/{ctx.cluster}/{index}")
    d = _Draft(ctx, index, total, rng)
    _FLAVOUR_HOSTS[ctx.flavour](d)
    labels = _add_common_labels(d)

    # Kubelet version: most nodes match the control plane; some lag one or two minors.
    minor, patch = ctx.minor, ctx.patch
    roll = rng.random()
    if not d.is_cp and roll < 0.15 and ctx.minor > 20:
        lag = 1 if roll < 0.1 else 2
        minor, patch = ctx.minor - lag, rng.randrange(1, 12)
    kubelet = kubelet_version(ctx.flavour, minor, patch)

    created = _EPOCH + dt.timedelta(minutes=index * 7 + rng.randrange(60))
    ready = not (not d.is_cp and rng.random() < 0.04)
    cordoned = not d.is_cp and rng.random() < 0.05
    capacity, allocatable = _resources(d.shape, ctx.flavour)
    obj = node_object(
        name=d.name,
        uid=uuid4_from(rng),
        created=created,
        labels=labels,
        annotations=d.annotations,
        pod_cidr=f"10.{100 + (index >> 8) % 100}.{index & 255}.0/24",
        provider_id=d.provider_id,
        taints=d.taints,
        capacity=capacity,
        allocatable=allocatable,
        ready=ready,
        internal_ip=d.ip,
        external_ip=d.external_ip,
        node_info={
            "machineID": f"{rng.getrandbits(128):032x}",
            "systemUUID": uuid4_from(rng),
            "bootID": uuid4_from(rng),
            "kernelVersion": d.kernel,
            "osImage": d.os_image,
            "containerRuntimeVersion": d.runtime,
            "kubeletVersion": kubelet,
            "kubeProxyVersion": kubelet,
            "operatingSystem": "linux",
            "architecture": d.arch,
        },
        images=_images(ctx.flavour, ctx.minor),
        runtime_handlers=minor >= 30,
    )
    node = SimNode(d.name, obj, created=created)
    if cordoned:
        set_unschedulable(node, True)
    return node


def virtual_node(ctx: NodeContext, index: int) -> SimNode:
    """An ACI virtual-kubelet node, as AKS virtual nodes show: huge capacity in odd notations."""
    rng = random.Random(f"{ctx.seed}/{ctx.cluster}/virtual/{index}")
    name = "virtual-node-aci-linux" if index == 0 else f"virtual-node-aci-linux-{index}"
    labels = {
        "alpha.service-controller.kubernetes.io/exclude-balancer": "true",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.azure.com/cluster": f"MC_sim_{ctx.cluster}",
        "kubernetes.azure.com/managed": "false",
        "kubernetes.azure.com/role": "agent",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/role": "agent",
        "node-role.kubernetes.io/agent": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": "true",
        "type": "virtual-kubelet",
    }
    capacity = {
        "cpu": "1k",
        "ephemeral-storage": "500M",
        "memory": "4Ti",
        "nvidia.com/gpu": "100",
        "pods": "1k",
    }
    obj = node_object(
        name=name,
        uid=uuid4_from(rng),
        created=_EPOCH + dt.timedelta(days=2),
        labels=labels,
        annotations={"node.alpha.kubernetes.io/ttl": "0"},
        pod_cidr=None,
        provider_id=None,
        taints=[{"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"}],
        capacity=capacity,
        allocatable=dict(capacity),
        ready=True,
        internal_ip=f"10.241.0.{4 + index}",
        external_ip=None,
        node_info={
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": "",
            "osImage": "",
            "containerRuntimeVersion": "",
            "kubeletVersion": "v1.19.10-vk-azure-aci-1.6.1",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        images=[],
        runtime_handlers=False,
    )
    return SimNode(name, obj, created=_EPOCH + dt.timedelta(days=2))


def node_object(
    *,
    name: str,
    uid: str,
    created: dt.datetime,
    labels: dict[str, str],
    annotations: dict[str, str],
    pod_cidr: str | None,
    provider_id: str | None,
    taints: list[Json],
    capacity: dict[str, str],
    allocatable: dict[str, str],
    ready: bool,
    internal_ip: str,
    external_ip: str | None,
    node_info: dict[str, str],
    images: list[Json],
    runtime_handlers: bool,
) -> Json:
    spec: Json = {}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    if provider_id:
        spec["providerID"] = provider_id
    if taints:
        spec["taints"] = taints
    hb = HEARTBEAT_PLACEHOLDER.decode()
    since = rfc3339(created + dt.timedelta(seconds=14))
    conditions = [
        _condition(
            "MemoryPressure",
            "False",
            hb,
            since,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        _condition(
            "DiskPressure",
            "False",
            hb,
            since,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        _condition(
            "PIDPressure",
            "False",
            hb,
            since,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        _condition(
            "Ready",
            "True",
            hb,
            rfc3339(created + dt.timedelta(seconds=30)),
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
    addresses = [{"type": "InternalIP", "address": internal_ip}]
    if external_ip:
        addresses.append({"type": "ExternalIP", "address": external_ip})
    addresses.append({"type": "Hostname", "address": name})
    status: Json = {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions,
        "addresses": addresses,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": node_info,
        "images": images,
    }
    if runtime_handlers:
        status["runtimeHandlers"] = [
            {"name": "", "features": {"recursiveReadOnlyMounts": True, "userNamespaces": False}},
            {
                "name": "runc",
                "features": {"recursiveReadOnlyMounts": True, "userNamespaces": False},
            },
        ]
    obj: Json = {
        "metadata": {
            "name": name,
            "uid": uid,
            "resourceVersion": "1",
            "creationTimestamp": rfc3339(created),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
        "status": status,
    }
    if not ready:
        set_ready(obj, False)
    return obj


def _condition(*args: str) -> Json:
    kind, status, hb, since, reason, message = args
    return {
        "type": kind,
        "status": status,
        "lastHeartbeatTime": hb,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def set_ready(obj: Json, ready: bool) -> None:
    """Ready as the node lifecycle controller shows it: Unknown conditions, unreachable taints."""
    spec = obj["spec"]
    taints = [
        t
        for t in spec.get("taints", [])
        if not t["key"].startswith("node.kubernetes.io/unreachable")
    ]
    for cond in obj["status"]["conditions"]:
        if ready:
            if cond["type"] == "Ready":
                cond.update(
                    status="True", reason="KubeletReady", message="kubelet is posting ready status"
                )
            elif cond["status"] == "Unknown":
                cond.update(
                    status="False",
                    reason=_HEALTHY_REASON[cond["type"]],
                    message=_HEALTHY_MESSAGE[cond["type"]],
                )
        else:
            cond.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.",
            )
    if not ready:
        taints += [
            {
                "key": "node.kubernetes.io/unreachable",
                "effect": "NoSchedule",
                "timeAdded": rfc3339(_EPOCH + dt.timedelta(days=30)),
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "effect": "NoExecute",
                "timeAdded": rfc3339(_EPOCH + dt.timedelta(days=30)),
            },
        ]
    if taints:
        spec["taints"] = taints
    else:
        spec.pop("taints", None)


_HEALTHY_REASON = {
    "MemoryPressure": "KubeletHasSufficientMemory",
    "DiskPressure": "KubeletHasNoDiskPressure",
    "PIDPressure": "KubeletHasSufficientPID",
}
_HEALTHY_MESSAGE = {
    "MemoryPressure": "kubelet has sufficient memory available",
    "DiskPressure": "kubelet has no disk pressure",
    "PIDPressure": "kubelet has sufficient PID available",
}


def set_unschedulable(node: SimNode, unschedulable: bool) -> None:
    spec = node.obj["spec"]
    taints = [t for t in spec.get("taints", []) if t["key"] != "node.kubernetes.io/unschedulable"]
    if unschedulable:
        spec["unschedulable"] = True
        taints.append(
            {
                "key": "node.kubernetes.io/unschedulable",
                "effect": "NoSchedule",
                "timeAdded": rfc3339(_EPOCH + dt.timedelta(days=31)),
            }
        )
    else:
        spec.pop("unschedulable", None)
    if taints:
        spec["taints"] = taints
    else:
        spec.pop("taints", None)


# --- Table form (what `kubectl get nodes -o wide` prints) -----------------------------------------


def _column(name: str, description: str, priority: int = 0, fmt: str = "") -> Json:
    return {
        "name": name,
        "type": "string",
        "format": fmt,
        "description": description,
        "priority": priority,
    }


_ADDRESSES = "List of addresses reachable to the node. Queried from cloud provider, if available."

# The column definitions kube-apiserver sends for nodes (pkg/printers/internalversion).
NODE_COLUMNS: list[Json] = [
    _column(
        "Name",
        "Name must be unique within a namespace. Is required when creating resources, although "
        "some resources may allow a client to request the generation of an appropriate name "
        "automatically. Name is primarily intended for creation idempotence and configuration "
        "definition. Cannot be updated. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        fmt="name",
    ),
    _column("Status", "The status of the node"),
    _column("Roles", "The roles of the node"),
    _column(
        "Age",
        "CreationTimestamp is a timestamp representing the server time when this object was "
        "created. It is not guaranteed to be set in happens-before order across separate "
        "operations. Clients may not set this value. It is represented in RFC3339 form and is "
        "in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
        "#metadata",
    ),
    _column("Version", "Kubelet Version reported by the node."),
    _column("Internal-IP", _ADDRESSES, 1),
    _column("External-IP", _ADDRESSES, 1),
    _column(
        "OS-Image",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        1,
    ),
    _column(
        "Kernel-Version",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        1,
    ),
    _column(
        "Container-Runtime",
        "ContainerRuntime Version reported by the node through runtime remote API "
        "(e.g. containerd://1.4.2).",
        1,
    ),
]

_ROLE = "node-role.kubernetes.io/"


def table_cells(obj: Json) -> list[str]:
    """Cells of the node row except Age (index 3), which depends on the time of the request."""
    status = obj["status"]
    ready = next((c["status"] for c in status["conditions"] if c["type"] == "Ready"), "Unknown")
    state = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
    if ready == "Unknown":
        state = "NotReady"
    if obj["spec"].get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = obj["metadata"].get("labels", {})
    roles = sorted(
        {k.removeprefix(_ROLE) for k in labels if k.startswith(_ROLE)}
        | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set())
    )
    addresses: dict[str, str] = {}
    for a in status.get("addresses", []):
        addresses.setdefault(a["type"], a["address"])
    info = status["nodeInfo"]
    return [
        obj["metadata"]["name"],
        state,
        ",".join(roles) if roles else "<none>",
        "",
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}

# HumanDuration's thresholds: below each bound (in seconds) an age is written in the first unit,
# followed by what remains in the second unit unless that is zero; from 8 years on, in years.
_HUMAN_STEPS = (
    (2 * 60, "s", ""),
    (10 * 60, "m", "s"),
    (3 * 3600, "m", ""),
    (8 * 3600, "h", "m"),
    (2 * 86400, "h", ""),
    (8 * 86400, "d", "h"),
    (2 * 365 * 86400, "d", ""),
    (8 * 365 * 86400, "y", "d"),
)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)  # truncated toward zero, as Go's int(d.Seconds())
    if s < 0:
        # Up to a second in the future is clock skew between machines: "0s".
        return "<invalid>" if s < -1 else "0s"
    unit, rest = next(((u, r) for bound, u, r in _HUMAN_STEPS if s < bound), ("y", ""))
    text = f"{s // _UNIT_SECONDS[unit]}{unit}"
    remainder = s % _UNIT_SECONDS[unit] // _UNIT_SECONDS[rest] if rest else 0
    return f"{text}{remainder}{rest}" if remainder else text
