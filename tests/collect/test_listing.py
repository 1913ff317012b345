"""Node paging: limit + continue, restart on 410, bounded restarts."""

import json

import pytest

from collector.errors import GoneError, MalformedResponseError
from collector.kube.listing import list_nodes_paged
from tests.collect.fakes import FakeResponse, fake_client
from tests.k8s_fixtures import K8S

NODES = json.loads((K8S / "nodes" / "kind-v1.20.0-nodelist.json").read_text())["items"]


def node(i: int) -> dict:
    doc = json.loads(json.dumps(NODES[i % len(NODES)]))
    doc["metadata"]["name"] = f"node-{i}"
    doc["metadata"]["uid"] = f"uid-{i}"
    return doc


def page(nodes, token=None) -> FakeResponse:
    meta = {"resourceVersion": "10"} | ({"continue": token} if token else {})
    body = {"kind": "NodeList", "apiVersion": "v1", "metadata": meta, "items": nodes}
    return FakeResponse(200, json.dumps(body).encode())


GONE = FakeResponse(410, b'{"kind":"Status","reason":"Expired","code":410}')


async def test_pages_are_followed():
    client, api, _ = fake_client(
        [page([node(0), node(1)], "t1"), page([node(2), node(3)], "t2"), page([node(4)])]
    )
    listing = await list_nodes_paged(client, page_size=2)
    assert [n.name for n in listing.nodes] == [f"node-{i}" for i in range(5)]
    assert listing.pages == 3 and listing.restarts == 0
    queries = [kw["query"] for _, kw in api.calls]
    assert queries == [
        [("limit", 2)],
        [("limit", 2), ("continue", "t1")],
        [("limit", 2), ("continue", "t2")],
    ]


async def test_expired_continue_token_restarts_the_list():
    client, api, _ = fake_client(
        [page([node(0)], "t1"), GONE, page([node(0)], "t3"), page([node(1)])]
    )
    listing = await list_nodes_paged(client, page_size=1)
    assert [n.name for n in listing.nodes] == ["node-0", "node-1"]  # no duplicates
    assert listing.restarts == 1
    assert [kw["query"] for _, kw in api.calls][2] == [("limit", 1)]


async def test_restarts_are_bounded():
    client, api, _ = fake_client([page([node(0)], "t"), GONE] * 10)
    with pytest.raises(GoneError):
        await list_nodes_paged(client, page_size=1, max_restarts=2)
    assert len(api.calls) == 6


async def test_410_on_the_first_page_is_not_a_token_problem():
    client, api, _ = fake_client([GONE, page([node(0)])])
    with pytest.raises(GoneError):
        await list_nodes_paged(client, page_size=1)
    assert len(api.calls) == 1


async def test_unpaged_when_page_size_is_zero():
    client, api, _ = fake_client([page([node(0), node(1)])])
    listing = await list_nodes_paged(client, page_size=0)
    assert len(listing.nodes) == 2
    assert api.calls[0][1]["query"] == []


async def test_truncated_json_is_malformed_and_names_the_url():
    client, _, _ = fake_client([FakeResponse(200, page([node(0)]).body[:-40])])
    with pytest.raises(MalformedResponseError, match=r"GET https://127.0.0.1:6443/api/v1/nodes"):
        await list_nodes_paged(client)
