"""Collection benchmark: fan-out over a simulated fleet, and one very large cluster.

The simulator runs in its own process (``serve``), so that its CPU is not counted against the
collector; each measured collection runs in a fresh process (``collect``), so that peak RSS is
that of one run. ``all`` runs every scenario several times and prints the medians as Markdown.

    python benchmarks/collect_bench.py all --runs 5
    python benchmarks/collect_bench.py serve --clusters 200 --nodes 50 --latency 0.03 --out DIR
    python benchmarks/collect_bench.py collect --kubeconfig DIR/kubeconfig --concurrency 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    from collector.gathering import GatherOptions, gather  # noqa: PLC0415
    from collector.targets import load_targets  # noqa: PLC0415

    targets = load_targets([args.kubeconfig]).targets
    options = GatherOptions(
        concurrency=args.concurrency,
        page_size=args.page_size,
        request_timeout=60,
        cluster_timeout=600,
    )
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

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def run_collect(kubeconfig: Path, concurrency: int, page_size: int) -> dict[str, float]:
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
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def scenario(
    name: str,
    *,
    clusters: int,
    nodes: int,
    latency: float,
    runs: int,
    concurrency: int,
    page_size: int = 500,
    user: str = "cert-data",
) -> dict[str, object]:
    samples = []
    with SimProcess(clusters, nodes, latency, user) as kubeconfig:
        run_collect(kubeconfig, concurrency, page_size)  # warm-up: page cache, sim JIT-free paths
        for _ in range(runs):
            sample = run_collect(kubeconfig, concurrency, page_size)
            expected = {"ok": clusters}
            assert sample["statuses"] == expected, sample
            samples.append(sample)
            print(f"  {name}: {json.dumps(sample)}", file=sys.stderr)

    def med(key: str) -> float:
        return statistics.median(float(s[key]) for s in samples)  # type: ignore[arg-type]

    return {
        "name": name,
        "clusters": clusters,
        "nodes": nodes,
        "latency": latency,
        "concurrency": concurrency,
        "runs": runs,
        "wall_s": med("wall_s"),
        "cpu_s": med("cpu_s"),
        "nodes_per_cpu_s": med("nodes_per_cpu_s"),
        "peak_rss_mb": med("peak_rss_mb"),
        "rss_before_mb": med("rss_before_mb"),
    }


def run_all(args: argparse.Namespace) -> None:
    c = args.concurrency
    rows = [
        scenario(
            "200 x 50 nodes, 30 ms latency",
            clusters=200,
            nodes=50,
            latency=0.03,
            runs=args.runs,
            concurrency=c,
        ),
        scenario(
            "200 x 50 nodes, no latency",
            clusters=200,
            nodes=50,
            latency=0.0,
            runs=args.runs,
            concurrency=c,
        ),
        scenario(
            "1 x 50 nodes, 30 ms latency",
            clusters=1,
            nodes=50,
            latency=0.03,
            runs=args.runs,
            concurrency=c,
        ),
        scenario(
            "1 x 20,000 nodes, no latency",
            clusters=1,
            nodes=20000,
            latency=0.0,
            runs=args.runs,
            concurrency=c,
        ),
    ]
    print(
        f"| scenario (median of {args.runs}, concurrency {c}) | wall s | collector CPU s "
        "| nodes/CPU s | peak RSS MB |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | "
            f"{r['nodes_per_cpu_s']:,.0f} | {r['peak_rss_mb']:.0f} |"
        )
    lat, nolat, one = rows[0]["wall_s"], rows[1]["wall_s"], rows[2]["wall_s"]
    bar = 1.5 * (float(nolat) + float(one))  # type: ignore[arg-type]
    print(
        f"\nbar: 200-cluster latency run {lat:.3f} s <= 1.5 x ({nolat:.3f} + {one:.3f}) = "
        f"{bar:.3f} s: {'met' if float(lat) <= bar else 'NOT met'}"
    )  # type: ignore[arg-type]


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
    a = sub.add_parser("all", help="every scenario, medians as Markdown")
    a.add_argument("--runs", type=int, default=5)
    a.add_argument("--concurrency", type=int, default=200)
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
