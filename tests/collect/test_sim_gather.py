"""The fan-out against the simulator: auth kinds, dedup, faults, deadlines, hooks."""

from __future__ import annotations

import time

import pytest
import yaml

from collector.gathering import GatherOptions, ProgressEvent, check_targets, gather
from collector.settings import CollectionSettings
from collector.sim.fleet import ClusterSpec, Fleet, FleetSpec
from collector.targets import load_targets

FAST = GatherOptions(
    CollectionSettings(timeout=2, cluster_timeout=4, backoff_base=0.01, backoff_max=0.05)
)


async def run(fleet, options=FAST, **kw):
    targets = load_targets([str(p) for p in fleet.kubeconfig_paths]).targets
    result = await gather(targets, options, **kw)
    return result, {o.context_name: o for o in result.outcomes}


async def test_every_auth_kind_and_dedup_including_failing_credentials():
    users = ("cert-data", "cert-file", "token", "token-file", "exec", "invalid-token")
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a", nodes=4, users=users)])) as fleet:
        result, outcomes = await run(fleet)
    assert len(result.outcomes) == len(users)
    (inventory,) = result.inventories
    working = ["a", "a-cert-file", "a-token", "a-token-file", "a-exec"]
    # the first context that identified the cluster collected it; the others are deduplicated
    collectors = [n for n in working if not outcomes[n].deduplicated]
    assert len(collectors) == 1
    assert outcomes[collectors[0]].node_count == 4
    for name in working:
        o = outcomes[name]
        assert (o.status, o.cluster_id) == ("ok", inventory.cluster_id), name
    bad = outcomes["a-invalid-token"]
    assert (bad.status, bad.error_class, bad.cluster_id) == ("failed", "Auth", None)
    assert inventory.cluster_id_source == "kube-system-uid"
    assert sorted(inventory.context_names) == sorted(
        ["a", "a-cert-file", "a-token", "a-token-file", "a-exec"]
    )
    # only the collecting context listed nodes
    assert len(result.inventories) == 1


async def test_failures_do_not_delay_or_break_others():
    spec = FleetSpec(
        clusters=[
            ClusterSpec(name="good-1", nodes=3),
            ClusterSpec(name="refused", server="closed-port"),
            ClusterSpec(name="silent", server="no-answer"),
            ClusterSpec(name="foreign", server="foreign-ca"),
            ClusterSpec(name="good-2", nodes=2, users=("token",)),
        ]
    )
    events: list[ProgressEvent] = []
    async with Fleet(spec) as fleet:
        started = time.monotonic()
        result, outcomes = await run(fleet, progress=events.append)
        elapsed = time.monotonic() - started
    assert {k: (o.status, o.error_class) for k, o in outcomes.items()} == {
        "good-1": ("ok", None),
        "good-2": ("ok", None),
        "refused": ("failed", "Unreachable"),
        "silent": ("failed", "Timeout"),
        "foreign": ("failed", "TLS"),
    }
    # the healthy clusters finished long before the silent one hit its deadline
    assert outcomes["good-1"].duration_ms < 2000 and outcomes["good-2"].duration_ms < 2000
    assert (
        elapsed < FAST.collection.cluster_timeout + 2
    )  # the run ends with the deadline, plus a margin
    assert len(result.inventories) == 2
    kinds = [(e.kind, e.target.context_name) for e in events]
    assert kinds.count(("done", "silent")) == 1
    assert ("collecting", "good-1") in kinds and ("identified", "good-1") in kinds
    done = {e.target.context_name: e.outcome for e in events if e.kind == "done"}
    assert done["silent"] is outcomes["silent"]


async def test_hanging_server_bounded_by_cluster_deadline():
    spec = FleetSpec(clusters=[ClusterSpec(name="slow", nodes=2), ClusterSpec(name="ok")])
    async with Fleet(spec) as fleet:
        fleet.cluster("slow").faults.fail("/api/v1/nodes", 503)  # retried until the deadline
        options = GatherOptions(CollectionSettings(timeout=1, cluster_timeout=2, backoff_base=0.2))
        _result, outcomes = await run(fleet, options)
    slow = outcomes["slow"]
    assert (slow.status, slow.error_class) == ("partial", "ServerError")
    assert slow.api_resource_count and slow.node_count is None
    assert slow.duration_ms < 3000
    assert outcomes["ok"].status == "ok"


async def test_403_on_nodes_is_partial_and_keeps_the_rest():
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a", nodes=3)])) as fleet:
        fleet.cluster("a").faults.fail("/api/v1/nodes", 403)
        result, outcomes = await run(fleet)
    o = outcomes["a"]
    assert (o.status, o.error_class) == ("partial", "Forbidden")
    (inventory,) = result.inventories
    assert inventory.nodes is None
    assert inventory.version is not None and inventory.api_resources
    assert inventory.services is not None


async def test_retries_5xx_and_429_then_succeeds():
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a", nodes=3)])) as fleet:
        cluster = fleet.cluster("a")
        cluster.faults.fail("/api/v1/nodes", 500, times=2)
        cluster.faults.fail("/version", 429, times=1, retry_after=0)
        result, outcomes = await run(fleet)
        nodes_requests = [r for r in cluster.request_log if r.path == "/api/v1/nodes"]
        assert len(nodes_requests) == 3
        assert len([r for r in cluster.request_log if r.path == "/version"]) == 2
        assert {r.method for r in cluster.request_log} == {"GET"}
    assert outcomes["a"].status == "ok"
    assert result.inventories[0].nodes is not None


async def test_4xx_not_retried():
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a")])) as fleet:
        cluster = fleet.cluster("a")
        cluster.faults.fail("/api/v1/nodes", 400)
        _result, outcomes = await run(fleet)
        assert len([r for r in cluster.request_log if r.path == "/api/v1/nodes"]) == 1
    assert (outcomes["a"].status, outcomes["a"].error_class) == ("partial", "Api")


async def test_unavailable_aggregated_group_legacy_and_aggregated():
    spec = FleetSpec(
        clusters=[
            ClusterSpec(name="new", version="v1.31.2"),
            ClusterSpec(name="old", version="v1.26.15"),
        ]
    )
    async with Fleet(spec) as fleet:
        for cluster in fleet.clusters:
            cluster.faults.unavailable("metrics.k8s.io")
        result, outcomes = await run(fleet)
    for name, error_class in (("new", "StaleGroup"), ("old", "ServerError")):
        o = outcomes[name]
        assert (o.status, o.error_class) == ("partial", error_class), name
        assert "metrics.k8s.io" in (o.error_message or "")
    for inventory in result.inventories:
        assert inventory.failed_groups == ("metrics.k8s.io",)
        groups = {r.api_group for r in inventory.api_resources or ()}
        assert "metrics.k8s.io" not in groups and "apps" in groups and "" in groups


async def test_expired_continue_token_restarts_list():
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a", nodes=7)])) as fleet:
        fleet.cluster("a").faults.expire_continue_tokens(1)
        result, outcomes = await run(fleet, GatherOptions(CollectionSettings(page_size=3)))
    assert outcomes["a"].status == "ok"
    names = [n.name for n in result.inventories[0].nodes or ()]
    assert len(names) == len(set(names)) == 7


@pytest.mark.parametrize("mode", ["truncated", "garbage"])
async def test_malformed_node_list(mode):
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a", nodes=3)])) as fleet:
        fleet.cluster("a").faults.malform("/api/v1/nodes", mode)
        result, outcomes = await run(fleet)
    assert (outcomes["a"].status, outcomes["a"].error_class) == ("partial", "MalformedResponse")
    assert result.inventories[0].nodes is None


async def test_malformed_version_fails_the_target():
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a")])) as fleet:
        fleet.cluster("a").faults.malform("/version", "garbage")
        _result, outcomes = await run(fleet)
    assert (outcomes["a"].status, outcomes["a"].error_class) == ("failed", "MalformedResponse")


async def test_forbidden_kube_system_uses_fallback_id():
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a")])) as fleet:
        fleet.cluster("a").faults.fail("/api/v1/namespaces/kube-system", 403)
        result, outcomes = await run(fleet)
    (inventory,) = result.inventories
    assert inventory.cluster_id.startswith("sha256:")
    assert inventory.cluster_id_source == "server-ca-hash"
    assert outcomes["a"].status == "ok"


async def test_claim_hook_decides_per_cluster():
    spec = FleetSpec(
        clusters=[ClusterSpec(name="a", users=("cert-data", "token")), ClusterSpec(name="b")]
    )
    async with Fleet(spec) as fleet:
        asked: list[str] = []
        b_id: list[str] = []

        async def claim(cluster_id: str) -> bool:
            asked.append(cluster_id)
            return cluster_id not in b_id

        # learn b's id first (check_targets collects nothing)
        targets = load_targets([str(fleet.kubeconfig)]).targets
        checked = {o.context_name: o for o in await check_targets(targets, FAST)}
        assert all(o.status == "ok" and not o.deduplicated for o in checked.values())
        b_id.append(checked["b"].cluster_id)
        stored = []

        async def sink(inventory):
            stored.append(inventory)

        result = await gather(targets, FAST, claim=claim, on_inventory=sink)
        b_requests = [r.path for r in fleet.cluster("b").request_log]
    assert sorted(asked) == sorted([checked["a"].cluster_id, b_id[0]])  # once per cluster
    outcomes = {o.context_name: o for o in result.outcomes}
    assert outcomes["b"].deduplicated and outcomes["b"].status == "ok"
    assert "/api/v1/nodes" not in b_requests  # nothing collected from an unclaimed cluster
    assert [i.cluster_id for i in stored] == [checked["a"].cluster_id]
    assert result.inventories == []  # handed to the sink instead


async def test_claim_hook_failure_aborts_the_gather():
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a")])) as fleet:

        async def claim(_cluster_id: str) -> bool:
            raise RuntimeError("database gone")

        with pytest.raises(RuntimeError, match="database gone"):
            await run(fleet, claim=claim)


async def test_broken_target_fails_without_network(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: []\nusers: []\n"
        "contexts:\n- name: x\n  context: {cluster: missing, user: nobody}\n"
    )
    targets = load_targets([str(path)]).targets
    result = await gather(targets, FAST)
    (o,) = result.outcomes
    assert (o.status, o.error_class) == ("failed", "BrokenContext")
    assert "missing" in (o.error_message or "")


async def test_secrets_never_in_messages():
    async with Fleet(FleetSpec(clusters=[ClusterSpec(name="a", users=("token",))])) as fleet:
        targets = load_targets([str(fleet.kubeconfig)]).targets
        (target,) = targets
        token = target.secrets[0]
        fleet.cluster("a").faults.fail("/api/v1/nodes", 403)
        result = await gather(targets, FAST)
    text = repr(result.outcomes)
    assert token not in text


async def test_the_first_context_in_order_collects_a_shared_cluster_every_run():
    """Not the first to answer: the exec context runs a process before it can ask anything, so
    the token context behind it identifies the cluster first, and still the exec one collects."""
    spec = FleetSpec(clusters=[ClusterSpec(name="a", users=("exec", "token"))])
    async with Fleet(spec) as fleet:
        for _ in range(3):
            _result, outcomes = await run(fleet)
            assert (outcomes["a"].status, outcomes["a"].deduplicated) == ("ok", False)
            assert (outcomes["a-token"].status, outcomes["a-token"].deduplicated) == ("ok", True)


async def test_a_cluster_reached_under_two_urls_is_stored_under_the_first_contexts_url():
    """The collecting context decides the stored server URL and the services' proxy URLs; a
    race between the contexts would change them (and write service history) from run to run."""
    spec = FleetSpec(clusters=[ClusterSpec(name="a", users=("exec", "token"))])
    async with Fleet(spec) as fleet:
        config = yaml.safe_load(fleet.kubeconfig.read_text())
        (cluster,) = config["clusters"]
        by_name = dict(cluster, name="a-by-name")
        by_name["cluster"] = dict(
            cluster["cluster"],
            server=cluster["cluster"]["server"].replace("127.0.0.1", "localhost"),
        )
        config["clusters"].append(by_name)
        for context in config["contexts"]:
            if context["name"] == "a":  # the exec context, first in the file
                context["context"]["cluster"] = "a-by-name"
        path = fleet.kubeconfig.with_name("two-urls.kubeconfig")  # beside exec-plugin.sh
        path.write_text(yaml.safe_dump(config))
        targets = load_targets([str(path)]).targets
        for _ in range(3):
            result = await gather(targets, FAST)
            (inventory,) = result.inventories
            assert inventory.server_url == by_name["cluster"]["server"]
            assert inventory.services
            assert all(
                s.proxy_url.startswith(by_name["cluster"]["server"]) for s in inventory.services
            )
            assert sorted(inventory.context_names) == ["a", "a-token"]
