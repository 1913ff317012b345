"""Node decoding and normalization, on real API fixtures and on hostile input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.errors import MalformedResponseError
from collector.normalize.nodes import _Resources, decode_node_page, node_roles, parse_provider_id
from collector.records import NodeRecord, content_hash
from tests.k8s_fixtures import K8S

NODES = K8S / "nodes"


def load(name: str) -> bytes:
    return (NODES / name).read_bytes()


def one(name: str, index: int = 0) -> Any:
    page = decode_node_page(load(name))
    assert page.problems == []
    assert all(n.problems == () for n in page.nodes)
    return page.nodes[index]


def test_eks_nodelist() -> None:
    page = decode_node_page(load("eks-v1.31.13-nodelist.json"))
    assert page.problems == []
    assert page.resource_version == "2568"
    assert page.continue_token is None
    assert [n.name for n in page.nodes] == [
        "ip-10-0-10-170.ec2.internal",
        "ip-10-0-20-143.ec2.internal",
    ]
    node = page.nodes[0]
    assert node.node_uid == "d06a4e91-b2e9-4907-a60a-66fd3932aaea"
    assert node.created_at == datetime(2026, 1, 2, 20, 2, 19, tzinfo=UTC)
    assert node.roles == ()
    assert node.ready is True
    assert node.unschedulable is False
    assert node.kubelet_version == "v1.31.13-eks-ecaa3a6"
    assert node.container_runtime_version == "containerd://2.1.5"
    assert node.os_image == "Amazon Linux 2023.9.20251208"
    assert node.kernel_version == "6.1.158-180.294.amzn2023.x86_64"
    assert (node.architecture, node.operating_system) == ("amd64", "linux")
    assert node.internal_ip == "10.0.10.170"
    assert node.external_ip is None
    assert node.provider_id == "aws:///us-east-1a/i-08736224042c4ee75"
    assert (node.cloud_provider, node.region, node.zone) == ("aws", "us-east-1", "us-east-1a")
    assert node.instance_type == "t3.small"
    assert node.cpu_capacity_millicores == 2000
    assert node.cpu_allocatable_millicores == 1930
    assert node.memory_capacity_bytes == 1959264 * 1024
    assert node.memory_allocatable_bytes == 1471840 * 1024
    assert node.pods_capacity == node.pods_allocatable == 11
    assert node.ephemeral_storage_capacity_bytes == 20893676 * 1024
    assert node.gpu_capacity == 0
    assert node.capacity["cpu"] == 2 and isinstance(node.capacity["cpu"], int)
    assert node.allocatable["cpu"] == 1.93
    assert node.allocatable["ephemeral-storage"] == 18181869946
    assert [c.type for c in node.conditions] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]
    assert node.conditions[3].last_transition_time == datetime(2026, 1, 2, 20, 2, 30, tzinfo=UTC)
    assert node.labels["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    assert len(node.content_hash) == 32
    assert node.content_hash == content_hash(node)
    assert page.nodes[1].zone == "us-east-1b"


def test_volatile_fields_stay_out_of_the_record() -> None:
    raw = load("eks-v1.31.13-nodelist.json")
    doc = json.loads(raw)
    before = decode_node_page(raw).nodes[0]
    item = doc["items"][0]
    item["metadata"]["resourceVersion"] = "999999"
    item["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"] = "30"
    item["metadata"]["managedFields"] = [{"manager": "kubelet", "time": "2030-01-01T00:00:00Z"}]
    for condition in item["status"]["conditions"]:
        condition["lastHeartbeatTime"] = "2030-01-01T00:00:00Z"
    item["status"]["images"] = [{"names": ["x"], "sizeBytes": 1}]
    after = decode_node_page(json.dumps(doc).encode()).nodes[0]
    assert after == before
    record = msgspec.to_builtins(after)
    assert "annotations" not in json.dumps(record)
    assert "lastHeartbeatTime" not in json.dumps(record)
    # ... while a real change changes the hash.
    item["metadata"]["labels"]["new"] = "label"
    changed = decode_node_page(json.dumps(doc).encode()).nodes[0]
    assert changed.content_hash != before.content_hash


def test_aks_single_node() -> None:
    node = one("aks-v1.18.19-node.json")
    assert node.name == "aks-agentpool-30520393-vmss000000"
    assert node.roles == ("agent",)  # kubernetes.io/role label
    assert node.provider_id is None  # removed upstream
    assert node.cloud_provider == "azure"  # from the AKS labels
    assert node.region == "southcentralus"
    assert node.instance_type == "Standard_D2s_v3"
    assert node.container_runtime_version == "docker://19.3.14"
    assert node.capacity["attachable-volumes-azure-disk"] == 4


def test_k3s_nodelist() -> None:
    node = one("k3s-v1.28.5-nodelist.json")
    assert node.roles == ("control-plane", "master")
    assert node.cloud_provider == "k3s"
    assert node.kubelet_version == "v1.28.5+k3s1"
    assert node.cpu_capacity_millicores == 8000


def test_openshift_gce_worker() -> None:
    node = one("openshift-4.4-gce-worker-node.json")
    assert node.roles == ("worker",)
    assert node.cloud_provider == "gce"
    assert (node.region, node.zone) == ("us-east1", "us-east1-b")
    assert node.instance_type == "n1-standard-4"
    assert node.container_runtime_version is not None
    assert node.container_runtime_version.startswith("cri-o://")


def test_kind_nodelist() -> None:
    page = decode_node_page(load("kind-v1.20.0-nodelist.json"))
    by_name = {n.name: n for n in page.nodes}
    assert set(by_name) == {"kind-control-plane", "kind-worker", "kind-worker2"}
    assert by_name["kind-control-plane"].roles == ("control-plane", "master")
    assert by_name["kind-worker"].ready is False
    assert by_name["kind-worker2"].ready is True
    assert all(n.cloud_provider == "kind" for n in page.nodes)
    assert all(n.taints == () for n in page.nodes if n.name != "kind-control-plane")


def test_minikube_node_and_microk8s_array() -> None:
    minikube = one("minikube-v1.15.2-node.json")
    assert minikube.roles == ("master",)
    assert minikube.cpu_capacity_millicores == 4000
    array = decode_node_page(load("microk8s-v1.16.2-node-array.json"))
    assert [n.name for n in array.nodes] == ["repldev-marc"]
    assert array.nodes[0].kubelet_version == "v1.16.2"


def test_taints_unschedulable_gpu_and_external_ip() -> None:
    doc = json.loads(load("eks-v1.31.13-nodelist.json"))
    item = doc["items"][0]
    item["spec"]["unschedulable"] = True
    item["spec"]["taints"] = [
        {
            "key": "node.kubernetes.io/unschedulable",
            "effect": "NoSchedule",
            "timeAdded": "2026-01-02T20:10:00Z",
        },
        {"key": "gpu", "value": "true", "effect": "NoExecute"},
    ]
    item["status"]["capacity"]["nvidia.com/gpu"] = "4"
    item["status"]["capacity"]["amd.com/gpu"] = "2"
    item["status"]["addresses"].append({"type": "ExternalIP", "address": "54.1.2.3"})
    node = decode_node_page(json.dumps(doc).encode()).nodes[0]
    assert node.unschedulable is True
    assert [(t.key, t.value, t.effect) for t in node.taints] == [
        ("node.kubernetes.io/unschedulable", None, "NoSchedule"),
        ("gpu", "true", "NoExecute"),
    ]
    assert node.gpu_capacity == 6
    assert node.external_ip == "54.1.2.3"


def test_roles() -> None:
    assert node_roles(
        {
            "node-role.kubernetes.io/control-plane": "",
            "node-role.kubernetes.io/etcd": "true",
            "node-role.kubernetes.io/": "ignored",
            "kubernetes.io/role": "legacy",
            "other": "x",
        }
    ) == ("control-plane", "etcd", "legacy")
    assert node_roles({"kubernetes.io/role": ""}) == ()


@pytest.mark.parametrize(
    ("provider_id", "cloud", "region", "zone", "instance"),
    [
        (
            "aws:///us-east-1a/i-08736224042c4ee75",
            "aws",
            "us-east-1",
            "us-east-1a",
            "i-08736224042c4ee75",
        ),
        ("aws:///us-gov-west-1b/i-0abc", "aws", "us-gov-west-1", "us-gov-west-1b", "i-0abc"),
        ("aws:///us-west-2-lax-1a/i-0abc", "aws", "us-west-2", "us-west-2-lax-1a", "i-0abc"),
        ("aws:///i-0abc", "aws", None, None, "i-0abc"),
        (
            "gce://my-project/us-central1-a/gke-pool-1-abcd",
            "gce",
            "us-central1",
            "us-central1-a",
            "gke-pool-1-abcd",
        ),
        (
            "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
            "virtualMachineScaleSets/aks-pool/virtualMachines/3",
            "azure",
            None,
            None,
            "3",
        ),
        ("kind://docker/kind/kind-control-plane", "kind", None, None, "kind-control-plane"),
        ("k3s://my-laptop", "k3s", None, None, "my-laptop"),
        ("openstack:///8d5b9c1e-uuid", "openstack", None, None, "8d5b9c1e-uuid"),
        ("openstack://RegionOne/8d5b9c1e-uuid", "openstack", "RegionOne", None, "8d5b9c1e-uuid"),
        ("vsphere://4230b2f4-uuid", "vsphere", None, None, "4230b2f4-uuid"),
        ("digitalocean://12345", "digitalocean", None, None, "12345"),
        ("ocid1.instance.oc1.iad.abc", "oci", None, None, "ocid1.instance.oc1.iad.abc"),
        ("cn-hangzhou.i-bp1abc", "alicloud", "cn-hangzhou", None, "i-bp1abc"),
        ("garbage", None, None, None, None),
    ],
)
def test_provider_id(
    provider_id: str, cloud: str | None, region: str | None, zone: str | None, instance: str | None
) -> None:
    info = parse_provider_id(provider_id)
    assert (info.cloud, info.region, info.zone, info.instance_id) == (
        cloud,
        region,
        zone,
        instance,
    )


def test_labels_take_precedence_over_provider_id_and_legacy_labels_are_read() -> None:
    doc = json.loads(load("eks-v1.31.13-nodelist.json"))
    labels = doc["items"][0]["metadata"]["labels"]
    for key in (
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "node.kubernetes.io/instance-type",
    ):
        del labels[key]
    labels["failure-domain.beta.kubernetes.io/zone"] = "legacy-zone"
    labels["beta.kubernetes.io/instance-type"] = "m5.large"
    node = decode_node_page(json.dumps(doc).encode()).nodes[0]
    assert node.zone == "legacy-zone"
    assert node.region == "us-east-1"  # failure-domain region label
    assert node.instance_type == "m5.large"
    del labels["failure-domain.beta.kubernetes.io/zone"]
    del labels["failure-domain.beta.kubernetes.io/region"]
    node = decode_node_page(json.dumps(doc).encode()).nodes[0]
    assert (node.region, node.zone) == ("us-east-1", "us-east-1a")  # from providerID


# --- hostile input -------------------------------------------------------------------------


def test_bad_fields_are_problems_and_the_rest_is_kept() -> None:
    doc = json.loads(load("eks-v1.31.13-nodelist.json"))
    bad = doc["items"][0]
    bad["metadata"]["labels"]["numeric"] = 7
    bad["metadata"]["creationTimestamp"] = "yesterday"
    bad["status"]["capacity"]["cpu"] = "abc"
    bad["status"]["capacity"]["memory"] = "1e400"
    bad["status"]["capacity"]["pods"] = 11  # a bare number is a valid quantity in Go
    bad["status"]["conditions"] = "Ready"
    bad["status"]["nodeInfo"]["kubeletVersion"] = ["v1"]
    page = decode_node_page(json.dumps(doc).encode())
    assert page.problems == []
    node, other = page.nodes
    assert other.problems == ()
    assert node.name == "ip-10-0-10-170.ec2.internal"
    assert "numeric" not in node.labels and node.labels["NodeGroup"] == "main"
    assert node.created_at is None
    assert node.cpu_capacity_millicores is None
    assert node.memory_capacity_bytes is None
    assert node.pods_capacity == 11
    assert node.conditions == () and node.ready is None
    assert node.kubelet_version is None
    assert node.os_image == "Amazon Linux 2023.9.20251208"
    text = "\n".join(node.problems)
    for fragment in (
        "metadata.labels",
        "creationTimestamp",
        "capacity[cpu]",
        "capacity[memory]",
        "status.conditions",
        "kubeletVersion",
    ):
        assert fragment in text, fragment


def test_unusable_nodes_are_skipped_and_reported() -> None:
    doc = json.loads(load("kind-v1.20.0-nodelist.json"))
    doc["items"][1] = "not a node"
    del doc["items"][2]["metadata"]["uid"]
    doc["items"].append({"metadata": {"name": 12}})
    doc["metadata"]["continue"] = "next-page-token"
    page = decode_node_page(json.dumps(doc).encode())
    assert [n.name for n in page.nodes] == ["kind-control-plane"]
    assert page.continue_token == "next-page-token"
    assert len(page.problems) == 3
    assert "items[1]" in page.problems[0] and "not an object" in page.problems[0]
    assert "items[2]" in page.problems[1] and "uid" in page.problems[1]
    assert "items[3]" in page.problems[2]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"items": [',
        b"null",
        b"42",
        b'"x"',
        b'{"kind":"PodList"}',
        b'{"kind":"NodeList","items":{"a":1}}',
    ],
)
def test_unusable_documents_raise_malformed_response(raw: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        decode_node_page(raw)


def test_empty_list_and_null_items() -> None:
    assert decode_node_page(b'{"kind":"NodeList","items":null}').nodes == []
    assert decode_node_page(b'{"kind":"NodeList","items":[]}').nodes == []
    assert decode_node_page(b"[]").nodes == []


def test_huge_label_map() -> None:
    doc = json.loads(load("minikube-v1.15.2-node.json"))
    doc["metadata"]["labels"] = {f"key-{i}": f"v{i}" for i in range(50_000)}
    doc["metadata"]["labels"]["bad"] = None
    node = decode_node_page(json.dumps(doc).encode()).nodes[0]
    assert len(node.labels) == 50_000
    assert len(node.problems) == 1


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["1e400", "abc", "-1", "1Ki", "750e-3", "2026-01-02T20:02:19Z", "True"]),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

FIELD_PATHS = [
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "uid"),
    ("metadata", "labels"),
    ("metadata", "creationTimestamp"),
    ("spec",),
    ("spec", "providerID"),
    ("spec", "unschedulable"),
    ("spec", "taints"),
    ("status",),
    ("status", "capacity"),
    ("status", "capacity", "cpu"),
    ("status", "allocatable", "memory"),
    ("status", "conditions"),
    ("status", "conditions", 0),
    ("status", "conditions", 0, "status"),
    ("status", "addresses"),
    ("status", "nodeInfo"),
    ("status", "nodeInfo", "kubeletVersion"),
    ("metadata", "labels", "node-role.kubernetes.io/worker"),
]

BASE = json.loads((NODES / "eks-v1.31.13-nodelist.json").read_bytes())


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    target = doc
    for key in path[:-1]:
        if isinstance(target, dict) and isinstance(key, str):
            target = target.setdefault(key, {})
        elif isinstance(target, list) and isinstance(key, int) and key < len(target):
            target = target[key]
        else:
            return
    last = path[-1]
    in_dict = isinstance(target, dict) and isinstance(last, str)
    in_list = isinstance(target, list) and isinstance(last, int) and last < len(target)
    if in_dict or in_list:
        target[last] = value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FIELD_PATHS), json_value), min_size=1, max_size=6))
def test_hostile_fields_never_crash(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = copy.deepcopy(BASE)
    for path, value in mutations:
        _set(doc["items"][0], path, value)
    page = decode_node_page(json.dumps(doc).encode())
    # The untouched node always survives intact.
    assert page.nodes[-1].name == "ip-10-0-20-143.ec2.internal"
    assert page.nodes[-1].problems == ()
    for node in page.nodes:
        assert node.name and node.node_uid
        assert node.content_hash == content_hash(node)
        msgspec.json.encode(node)  # always serializable (no inf, no huge ints)
        for number in (*node.capacity.values(), *node.allocatable.values()):
            assert abs(number) < 2**63
        for name, value in msgspec.structs.asdict(node).items():
            if isinstance(value, int) and not isinstance(value, bool):
                assert -(2**63) <= value < 2**63, name  # NodeRecord: every integer is a bigint
    assert len(page.nodes) + len(page.problems) == 2


@settings(max_examples=200)
@given(json_value)
def test_arbitrary_json_documents_never_crash_unexpectedly(value: Any) -> None:
    for raw in (
        json.dumps(value).encode(),
        json.dumps({"kind": "NodeList", "items": [value]}).encode(),
    ):
        try:
            page = decode_node_page(raw)
        except MalformedResponseError:
            continue
        for node in page.nodes:
            msgspec.json.encode(node)


def test_the_resource_fields_are_node_record_fields_of_the_same_type() -> None:
    """normalize_node passes the resource block to NodeRecord by name (``**asdict``)."""
    record = {f.name: f.type for f in msgspec.structs.fields(NodeRecord)}
    resources = {f.name: f.type for f in msgspec.structs.fields(_Resources)}
    assert resources
    assert {name: record.get(name) for name in resources} == resources


def test_gpus_that_add_up_beyond_a_bigint_are_left_out_with_a_problem() -> None:
    doc = copy.deepcopy(BASE)
    largest = str(2**63 - 1)
    doc["items"][0]["status"]["capacity"].update({"nvidia.com/gpu": largest, "amd.com/gpu": "2"})
    node = decode_node_page(json.dumps(doc).encode()).nodes[0]
    assert node.gpu_capacity is None
    assert node.capacity["nvidia.com/gpu"] == 2**63 - 1  # each quantity is kept in the map
    assert "status.capacity: the GPUs add up to more than a bigint holds" in node.problems


@pytest.mark.parametrize("where", ["capacity", "allocatable"])
@pytest.mark.parametrize("resource", ["cpu", "memory", "pods", "ephemeral-storage", "amd.com/gpu"])
@pytest.mark.parametrize("quantity", [str(2**63 - 1), str(2**63), "8Ei", "9223372036854775807k"])
def test_every_integer_of_a_node_record_is_a_bigint(
    where: str, resource: str, quantity: str
) -> None:
    # The store writes them into bigint columns as they are (store/writing.py node_row).
    doc = copy.deepcopy(BASE)
    doc["items"][0]["status"][where][resource] = quantity
    node = decode_node_page(json.dumps(doc).encode()).nodes[0]
    integers = {
        name: value
        for name, value in msgspec.structs.asdict(node).items()
        if isinstance(value, int) and not isinstance(value, bool)
    }
    assert all(-(2**63) <= value < 2**63 for value in integers.values()), integers
