"""Collection benchmark: fan-out over a simulated fleet, and one very large cluster.

The simulator runs in its own process (``serve``), so that its CPU is not counted against the
collector (it is reported apart, from /proc); each measured collection runs in a fresh process
(``collect``), so that peak RSS is that of one run. ``all`` runs the three fleet scenarios
interleaved (so that the machine's changing load weighs on them alike), then the 20,000-node
cluster, and prints the medians as Markdown.

    python benchmarks/collect_bench.py all --runs 5
    python benchmarks/collect_bench.py serve --clusters 200 --nodes 50 --latency 0.03 --out DIR
    python benchmarks/collect_bench.py collect --kubeconfig DIR/kubeconfig --concurrency 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- the simulator process ----------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    from collector.sim.fleet import ClusterSpec, Fleet, FleetSpec  # noqa: PLC0415

    out = Path(args.out)
    spec = FleetSpec(
        clusters=[
            ClusterSpec(
                name=f"c{i:03d}", nodes=args.nodes, latency=args.latency, users=(args.user,)
            )
            for i in range(args.clusters)
        ],
        out_dir=out,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with Fleet(spec):
        (out / "ready").write_text("ready\n")
        await stop.wait()


# --- one measured collection ----------------------------------------------------------------


async def collect(args: argparse.Namespace) -> dict[str, object]:
    import_cpu0 = time.process_time()
    from collector.gathering import GatherOptions, gather  # noqa: PLC0415
    from collector.kube.clients import load_library, needs_library  # noqa: PLC0415
    from collector.settings import CollectionSettings  # noqa: PLC0415
    from collector.targets import load_targets  # noqa: PLC0415

    targets = load_targets([args.kubeconfig]).targets
    options = GatherOptions(
        CollectionSettings(
            concurrency=args.concurrency, page_size=args.page_size, timeout=60, cluster_timeout=600
        ),
        connections_per_cluster=args.connections,
    )
    # The imports (and kubernetes_asyncio's, for auth-provider users only) are measured apart:
    # they are neither fetching nor decoding.
    if needs_library(targets):
        load_library()
    import_cpu = time.process_time() - import_cpu0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = await gather(targets, options)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    statuses: dict[str, int] = {}
    for o in result.outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    nodes = sum(len(i.nodes or ()) for i in result.inventories)
    return {
        "targets": len(targets),
        "statuses": statuses,
        "nodes": nodes,
        "api_resources": sum(len(i.api_resources or ()) for i in result.inventories),
        "wall_s": wall,
        "cpu_s": cpu,
        "nodes_per_cpu_s": nodes / cpu if cpu else None,
        "import_cpu_s": import_cpu,
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# --- orchestration --------------------------------------------------------------------------


class SimProcess:
    def __init__(self, clusters: int, nodes: int, latency: float, user: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kubeinv-bench-"))
        self.argv = [
            sys.executable,
            __file__,
            "serve",
            "--clusters",
            str(clusters),
            "--nodes",
            str(nodes),
            "--latency",
            str(latency),
            "--user",
            user,
            "--out",
            str(self.dir),
        ]

    def __enter__(self) -> Path:
        self.proc = subprocess.Popen(self.argv)
        deadline = time.monotonic() + 600
        while not (self.dir / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.1)
        return self.dir / "kubeconfig"

    def cpu_s(self) -> float:
        """CPU seconds the simulator process has used so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)  # keys, certificates, kubeconfig


def run_collect(
    kubeconfig: Path, concurrency: int, page_size: int, connections: int
) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "collect",
            "--kubeconfig",
            str(kubeconfig),
            "--concurrency",
            str(concurrency),
            "--page-size",
            str(page_size),
            "--connections",
            str(connections),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


@dataclass
class Scenario:
    name: str
    clusters: int
    nodes: int
    latency: float
    samples: list[dict[str, Any]] = field(default_factory=list)

    def med(self, key: str) -> float:
        return statistics.median(float(s[key]) for s in self.samples)


def measure(sim: SimProcess, kubeconfig: Path, sc: Scenario, args: argparse.Namespace) -> None:
    sim_cpu0 = sim.cpu_s()
    sample: dict[str, Any] = dict(
        run_collect(kubeconfig, args.concurrency, args.page_size, args.connections)
    )
    sample["sim_cpu_s"] = sim.cpu_s() - sim_cpu0
    sample["load_avg_1m"] = os.getloadavg()[0]
    assert sample["statuses"] == {"ok": sc.clusters}, sample
    sc.samples.append(sample)
    print(f"  {sc.name}: {json.dumps(sample)}", file=sys.stderr)


def run_all(args: argparse.Namespace) -> None:
    """The three fleet scenarios run interleaved (latency, no latency, one cluster; repeated),
    each simulator in its own process, so that the machine's load (shared, noisy) weighs on
    the three alike; the bar is checked on the medians and on each round's own ratio."""
    fleet = [
        Scenario("200 x 50 nodes, 30 ms latency", 200, 50, 0.03),
        Scenario("200 x 50 nodes, no latency", 200, 50, 0.0),
        Scenario("1 x 50 nodes, 30 ms latency", 1, 50, 0.03),
    ]
    big = Scenario("1 x 20,000 nodes, no latency", 1, 20000, 0.0)
    with contextlib.ExitStack() as stack:
        sims = [SimProcess(sc.clusters, sc.nodes, sc.latency, args.user) for sc in fleet]
        configs = [stack.enter_context(sim) for sim in sims]
        for kubeconfig in configs:  # warm-up: page cache, first-connection paths
            run_collect(kubeconfig, args.concurrency, args.page_size, args.connections)
        for _ in range(args.runs):
            for sim, kubeconfig, sc in zip(sims, configs, fleet, strict=True):
                measure(sim, kubeconfig, sc, args)
    if not args.skip_big:
        sim = SimProcess(big.clusters, big.nodes, big.latency, args.user)
        with sim as kubeconfig:
            run_collect(kubeconfig, args.concurrency, args.page_size, args.connections)
            for _ in range(args.runs):
                measure(sim, kubeconfig, big, args)

    rows = [*fleet, big] if big.samples else fleet
    print(
        f"| scenario (median of {args.runs}, concurrency {args.concurrency}, "
        f"{args.connections} connections per cluster) | wall s | collector CPU s | "
        "nodes / collector CPU s | simulator CPU s | peak RSS MB | load avg |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.name} | {r.med('wall_s'):.3f} | {r.med('cpu_s'):.3f} | "
            f"{r.med('nodes_per_cpu_s'):,.0f} | {r.med('sim_cpu_s'):.2f} | "
            f"{r.med('peak_rss_mb'):.0f} | {r.med('load_avg_1m'):.1f} |"
        )
    lat, nolat, one = (sc.med("wall_s") for sc in fleet)
    bar = 1.5 * (nolat + one)
    ratios = [
        a["wall_s"] / (b["wall_s"] + c["wall_s"])
        for a, b, c in zip(*(sc.samples for sc in fleet), strict=True)
    ]
    print(
        f"\nbar: 200-cluster latency run {lat:.3f} s <= 1.5 x ({nolat:.3f} + {one:.3f}) = "
        f"{bar:.3f} s: {'met' if lat <= bar else 'NOT met'}; per round, latency / (no latency "
        f"+ one cluster) = {', '.join(f'{r:.2f}' for r in ratios)} (median "
        f"{statistics.median(ratios):.2f}, bar 1.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a simulated fleet until SIGTERM")
    s.add_argument("--clusters", type=int, default=200)
    s.add_argument("--nodes", type=int, default=50)
    s.add_argument("--latency", type=float, default=0.0)
    s.add_argument("--user", default="cert-data")
    s.add_argument("--out", required=True)
    c = sub.add_parser("collect", help="one measured collection; prints JSON")
    c.add_argument("--kubeconfig", required=True)
    c.add_argument("--concurrency", type=int, default=200)
    c.add_argument("--page-size", type=int, default=500)
    c.add_argument("--connections", type=int, default=1, help="keep-alive connections per cluster")
    a = sub.add_parser("all", help="every scenario, medians as Markdown")
    a.add_argument("--runs", type=int, default=5)
    a.add_argument("--concurrency", type=int, default=200)
    a.add_argument("--connections", type=int, default=1, help="keep-alive connections per cluster")
    a.add_argument("--page-size", type=int, default=500)
    a.add_argument("--user", default="cert-data", help="simulator user kind (auth method)")
    a.add_argument("--skip-big", action="store_true", help="skip the 20,000-node cluster")
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve(args))
    elif args.command == "collect":
        print(json.dumps(asyncio.run(collect(args))))
    else:
        os.environ.setdefault("PYTHONHASHSEED", "0")
        run_all(args)


if __name__ == "__main__":
    main()
