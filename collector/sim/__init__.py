"""A simulated Kubernetes fleet: real HTTPS API servers on 127.0.0.1 for tests, demo, benchmarks.

from collector.sim import Fleet, FleetSpec, ClusterSpec

async with Fleet(FleetSpec.varied(3)) as fleet:
    ...  # fleet.kubeconfig_paths, fleet.clusters[i] (mutations, .faults, .request_log)
"""

from collector.sim.cluster import Faults, RequestRecord, SimCluster, StatusRule
from collector.sim.fleet import ClusterSpec, ContextInfo, Fleet, FleetSpec

__all__ = [
    "ClusterSpec",
    "ContextInfo",
    "Faults",
    "Fleet",
    "FleetSpec",
    "RequestRecord",
    "SimCluster",
    "StatusRule",
]
