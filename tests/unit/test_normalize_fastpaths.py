"""The cached fast paths of node normalization agree with their plain definitions."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from collector.normalize.nodes import _provider_location, node_roles, parse_provider_id
from collector.records import NodeRecord, content_hash, hash_blank_record

_parts = st.sampled_from(
    ["", "aws", "gce", "azure", "openstack", "OpenStack", "kind", "k3s", "vsphere", "AWS"]
)
_segment = st.text(alphabet="abc-1/.:", max_size=12)


@given(scheme=_parts, sep=st.sampled_from(["://", ":/", ""]), rest=_segment, tail=_segment)
def test_provider_location_matches_parse(scheme: str, sep: str, rest: str, tail: str) -> None:
    provider_id = f"{scheme}{sep}{rest}{tail}"
    full = parse_provider_id(provider_id)
    fast = _provider_location(provider_id)
    assert (fast.cloud, fast.region, fast.zone) == (full.cloud, full.region, full.zone)


@given(
    keys=st.lists(
        st.sampled_from(
            [
                "node-role.kubernetes.io/",
                "node-role.kubernetes.io/worker",
                "node-role.kubernetes.io/control-plane",
                "kubernetes.io/role",
                "kubernetes.io/hostname",
            ]
        ),
        unique=True,
    ),
    legacy=st.sampled_from(["", "worker", "master"]),
)
def test_node_roles_matches_definition(keys: list[str], legacy: str) -> None:
    labels = {key: (legacy if key == "kubernetes.io/role" else "") for key in keys}
    expected = {k[len("node-role.kubernetes.io/") :] for k in keys if k.startswith("node-role.")}
    expected.discard("")
    if labels.get("kubernetes.io/role"):
        expected.add(labels["kubernetes.io/role"])
    assert node_roles(labels) == tuple(sorted(expected))


def test_content_hash_ignores_hash_and_problems() -> None:
    record = NodeRecord(node_uid="u", name="n", labels={"b": "1", "a": "2"})
    digest = hash_blank_record(record)
    assert content_hash(record) == digest
    done = msgspec.structs.replace(record, content_hash=digest, problems=("bad",))
    assert content_hash(done) == digest
    reordered = msgspec.structs.replace(record, labels={"a": "2", "b": "1"})
    assert content_hash(reordered) == digest
    assert content_hash(msgspec.structs.replace(record, name="m")) != digest
