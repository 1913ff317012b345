"""The fleet history most analytics tests share, built at controlled times (UTC).

cluster-a (context prod-a): first collected 2026-03-01 10:00 at v1.28.5, 3 nodes;
  03-03 14:00 a2 cordoned and relabelled; 03-05 09:00 upgraded to v1.29.1 (a1's kubelet too,
  flowcontrol v1beta3 gone, v1 added); 03-06 11:00 a3 removed; 03-07 16:30 a4 added.
cluster-b (contexts staging-b, b-admin): first collected 2026-03-02 08:00 at v1.24.9, 3 nodes;
  collected unchanged 03-04 08:00, then never again (its collections fail; it keeps its state).
"""

from __future__ import annotations

from tests.analytics.history import FleetHistory, api, node

GiB = 2**30

CORE_APIS = [
    api("", "v1", "pods", "Pod"),
    api("", "v1", "nodes", "Node"),
    api("apps", "v1", "deployments", "Deployment"),
    api("batch", "v1", "jobs", "Job"),
]


async def build_fleet(fleet: FleetHistory) -> None:
    await fleet.add_cluster(
        "cluster-a",
        "2026-03-01 10:00",
        "v1.28.5",
        contexts=("prod-a",),
        nodes=[
            node("a1-uid", "a1", "v1.28.5", cpu=4000, memory=16 * GiB, roles=("control-plane",)),
            node("a2-uid", "a2", "v1.25.3", cpu=8000, memory=32 * GiB),
            node("a3-uid", "a3", "v1.29.0", cpu=8000, memory=32 * GiB, gpu=2),
        ],
        apis=[
            *CORE_APIS,
            api("batch", "v1", "cronjobs", "CronJob"),
            api("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "FlowSchema"),
            api(
                "flowcontrol.apiserver.k8s.io",
                "v1beta3",
                "prioritylevelconfigurations",
                "PriorityLevelConfiguration",
            ),
            api("example.com", "v1", "widgets", "Widget"),
        ],
    )
    await fleet.add_cluster(
        "cluster-b",
        "2026-03-02 08:00",
        "v1.24.9",
        contexts=("staging-b", "b-admin"),
        nodes=[
            node("b1-uid", "b1", "v1.24.9", cpu=2000, memory=8 * GiB),
            node("b2-uid", "b2", "v1.21.0", cpu=2000, memory=8 * GiB),
            node("b3-uid", "b3", None, cpu=1000, memory=4 * GiB),
        ],
        apis=[
            *CORE_APIS,
            api("batch", "v1", "cronjobs", "CronJob"),
            api("batch", "v1beta1", "cronjobs", "CronJob", preferred=False),
            api("policy", "v1beta1", "podsecuritypolicies", "PodSecurityPolicy"),
            api("autoscaling", "v2beta2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
            api("flowcontrol.apiserver.k8s.io", "v1beta2", "flowschemas", "FlowSchema"),
            api("extensions", "v1beta1", "widgetscales", "WidgetScale"),
        ],
    )
    fleet.change_node(
        "cluster-a",
        "a2-uid",
        unschedulable=True,
        labels={"kubernetes.io/hostname": "a2", "pool": "batch"},
    )
    await fleet.collect("cluster-a", "2026-03-03 14:00")
    await fleet.collect("cluster-b", "2026-03-04 08:00")  # unchanged: writes nothing

    fleet.upgrade("cluster-a", "v1.29.1")
    fleet.change_node("cluster-a", "a1-uid", kubelet_version="v1.29.1")
    fleet.remove_api("cluster-a", "flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas")
    fleet.remove_api(
        "cluster-a", "flowcontrol.apiserver.k8s.io", "v1beta3", "prioritylevelconfigurations"
    )
    fleet.put_api(
        "cluster-a", api("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "FlowSchema")
    )
    await fleet.collect("cluster-a", "2026-03-05 09:00")

    fleet.remove_node("cluster-a", "a3-uid")
    await fleet.collect("cluster-a", "2026-03-06 11:00")

    fleet.put_node("cluster-a", node("a4-uid", "a4", "v1.29.1", cpu=16000, memory=64 * GiB))
    await fleet.collect("cluster-a", "2026-03-07 16:30")


NOW = "2026-03-10 12:00:00+00"
