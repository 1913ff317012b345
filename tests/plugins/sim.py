"""Simulator fixtures (owned by the simulator work).

    async def test_x(sim_fleet):
        fleet = await sim_fleet(FleetSpec.varied(3))        # or sim_fleet(clusters=[...])
        fleet.kubeconfig_paths, fleet.clusters[0].faults.fail("/api/v1/nodes", 403)

    async def test_y(sim_cluster):                          # one healthy kubeadm cluster, 3 nodes
        sim_cluster.fleet.kubeconfig, sim_cluster.cluster.request_log

Every fleet started through these fixtures is stopped at the end of the test; its files live in
the test's tmp_path.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from collector.sim import ClusterSpec, Fleet, FleetSpec, SimCluster

FleetFactory = Callable[..., Awaitable[Fleet]]


@pytest_asyncio.fixture
async def sim_fleet(tmp_path: Path) -> AsyncIterator[FleetFactory]:
    """Factory: `await sim_fleet(spec)` or `await sim_fleet(clusters=[ClusterSpec(...)], ...)`.

    Keyword arguments are FleetSpec fields; out_dir defaults to a fresh folder in tmp_path.
    """
    started: list[Fleet] = []

    async def start(
        spec: FleetSpec | None = None,
        *,
        clusters: Sequence[ClusterSpec] | None = None,
        **kwargs: Any,
    ) -> Fleet:
        if spec is None:
            spec = FleetSpec(clusters=list(clusters or [ClusterSpec()]), **kwargs)
        if spec.out_dir is None:
            spec.out_dir = tmp_path / f"fleet{len(started)}"
        fleet = Fleet(spec)
        await fleet.start()
        started.append(fleet)
        return fleet

    try:
        yield start
    finally:
        for fleet in reversed(started):
            await fleet.stop()


@dataclass
class OneCluster:
    fleet: Fleet
    cluster: SimCluster

    @property
    def kubeconfig(self) -> Path:
        return self.fleet.kubeconfig


@pytest_asyncio.fixture
async def sim_cluster(sim_fleet: FleetFactory) -> OneCluster:
    """One healthy kubeadm v1.31 cluster with 3 nodes and a cert user, context 'sim-000'."""
    fleet = await sim_fleet(clusters=[ClusterSpec(name="sim-000")])
    return OneCluster(fleet, fleet.clusters[0])


@pytest.fixture
def kubectl_path() -> str:
    """Path of the kubectl binary; skips the test where it is absent."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not on PATH")
    return path
