"""The simulator's serving options: a path prefix, [::1], and impersonation as RBAC sees it."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from collector.sim import ClusterSpec, Fleet
from collector.sim.scenario import ScenarioError, load_scenario
from tests.plugins.sim import FleetFactory
from tests.sim.conftest import get


async def raw_get(fleet: Fleet, url: str, headers: list[tuple[str, str]] = ()) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url, headers=CIMultiDict(headers), ssl=fleet.client_ssl_context()) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def test_path_prefix_on_ipv6_loopback(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(host="::1", path_prefix="/k8s/clusters/c-1")])
    cluster = fleet.clusters[0]
    assert cluster.server_url.startswith("https://[::1]:")
    assert cluster.server_url.endswith("/k8s/clusters/c-1")
    reply = await get(fleet, cluster, "/api/v1/nodes")
    assert reply.status == 200 and len(reply.json()["items"]) == 3
    root = cluster.server_url.removesuffix("/k8s/clusters/c-1")
    status, _body = await raw_get(fleet, root + "/api/v1/nodes")
    assert status == 404
    status, _body = await raw_get(fleet, root + "/k8s/clusters/c-10/version")
    assert status == 404
    assert cluster.request_log[0].path == "/api/v1/nodes"


async def test_impersonation_is_enforced(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(clusters=[ClusterSpec(grants={"viewers": ("namespaces",)})])
    cluster = fleet.clusters[0]
    url = cluster.server_url
    jane = [("Impersonate-User", "jane")]
    assert (await raw_get(fleet, url + "/version", jane))[0] == 200
    assert (await raw_get(fleet, url + "/api/v1", jane))[0] == 200  # discovery is open
    status, body = await raw_get(fleet, url + "/api/v1/nodes", jane)
    assert status == 403
    assert body["message"] == (
        'nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the '
        "cluster scope"
    )
    viewer = [*jane, ("Impersonate-Group", "other"), ("Impersonate-Group", "viewers")]
    assert (await raw_get(fleet, url + "/api/v1/namespaces/kube-system", viewer))[0] == 200
    assert (await raw_get(fleet, url + "/api/v1/nodes", viewer))[0] == 403
    masters = [*jane, ("Impersonate-Group", "system:masters")]
    assert (await raw_get(fleet, url + "/api/v1/nodes", masters))[0] == 200
    assert (await raw_get(fleet, url + "/api/v1/nodes", [("Impersonate-Group", "x")]))[0] == 500
    assert {r.as_user for r in cluster.request_log} == {"jane", None}

    cluster.impersonators = frozenset({"someone-else"})
    status, body = await raw_get(fleet, url + "/version", jane)
    assert status == 403 and 'cannot impersonate resource "users"' in body["message"]


def test_scenario_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[[cluster]]\nname = "r"\nhost = "::1"\npath_prefix = "/k8s/clusters/c-1"\n'
        'grants = { ops = ["*"] }\n'
    )
    (spec,) = load_scenario(path).clusters
    assert (spec.host, spec.path_prefix, spec.grants) == (
        "::1",
        "/k8s/clusters/c-1",
        {"ops": ("*",)},
    )
    path.write_text('[[cluster]]\nhost = "10.0.0.1"\n')
    with pytest.raises(ScenarioError, match=r"127\.0\.0\.1 or ::1"):
        load_scenario(path)
