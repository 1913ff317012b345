"""Fleet-scale and start-up benchmark: the real `kubeinv collect` process, measured from outside.

Each measured command is a fresh `python -m collector collect ...` process (start-up, kubeconfig
parsing, every request, the store included); its wall time, CPU time (user + system, from
`wait4`) and peak RSS are read by this script. The simulated fleet runs in its own process
(`collect_bench.py serve`), so its CPU is not counted.

    # N clusters x 20 nodes into PostgreSQL: a first run into a fresh database, then the
    # unchanged second run, 3 times each (a fresh database per repetition)
    python benchmarks/fleet_bench.py fleet --clusters 1000 --nodes 20 --runs 3 \
        --dsn postgresql://postgres@127.0.0.1:5432/postgres
    # start-up: `collect --dry-run` on one 50-node cluster; node path: a 20,000-node dry run
    python benchmarks/fleet_bench.py startup --runs 5
    # two collectors at once on one database (they divide the fleet through claims)
    python benchmarks/fleet_bench.py fleet --clusters 1000 --runs 3 --replicas 2
    # the same against another source tree (e.g. `git archive 90611d0 | tar -x -C /tmp/base`)
    python benchmarks/fleet_bench.py startup --runs 5 --tree /tmp/base

`--tree DIR` runs the collector of that source tree (PYTHONPATH) with this virtualenv's
packages; the simulator is always this tree's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class Sim:
    """`collect_bench.py serve` in its own process."""

    def __init__(self, clusters: int, nodes: int, user: str, latency: float = 0.0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kubeinv-fleet-bench-"))
        self.argv = [
            sys.executable,
            str(ROOT / "benchmarks" / "collect_bench.py"),
            "serve",
            f"--clusters={clusters}",
            f"--nodes={nodes}",
            f"--latency={latency}",
            f"--user={user}",
            f"--out={self.dir}",
        ]

    def __enter__(self) -> Path:
        self.proc = subprocess.Popen(self.argv)
        deadline = time.monotonic() + 900
        while not (self.dir / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.2)
        return self.dir / "kubeconfig"

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_measured(argv: list[str], env: dict[str, str], replicas: int = 1) -> dict[str, Any]:
    """Run a command (``replicas`` copies at once); the wall time until the last one ends, and
    the CPU time (user + sys, summed) and the largest peak RSS, from wait4."""
    stack = contextlib.ExitStack()
    files = [
        (
            stack.enter_context(tempfile.TemporaryFile()),  # noqa: SIM115
            stack.enter_context(tempfile.TemporaryFile()),  # noqa: SIM115
        )
        for _ in range(replicas)
    ]
    with stack:
        return _wait_all(argv, env, files)


def _wait_all(argv: list[str], env: dict[str, str], files: list[tuple[Any, Any]]) -> dict[str, Any]:
    replicas = len(files)
    wall0 = time.perf_counter()
    procs = [
        subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=tempfile.gettempdir())
        for out, err in files
    ]
    cpu, rss, outputs = 0.0, 0.0, []
    for proc, (out, err) in zip(procs, files, strict=True):
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss / 1024)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        if proc.returncode not in (0,):
            sys.stderr.write(stderr.decode(errors="replace")[-3000:])
            raise RuntimeError(f"{argv[3:5]} exited with {proc.returncode}")
        outputs.append(stdout)
    return {
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": cpu,
        "peak_rss_mb": rss,
        "load_avg_1m": os.getloadavg()[0],
        "stdout": outputs[0] if replicas == 1 else outputs,
    }


def collector_env(tree: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)
    env["PYTHONPATH"] = str(tree or ROOT)
    env["KUBEINV_LOG__LEVEL"] = "warning"
    return env


def kubeinv(*args: str) -> list[str]:
    return [sys.executable, "-m", "collector", "collect", *args]


def _admin(dsn: str, sql: str) -> None:
    subprocess.run(["psql", dsn, "-qAtc", sql], check=True, capture_output=True)


def run_fleet(args: argparse.Namespace) -> None:
    env = collector_env(args.tree)
    base = args.dsn.rsplit("/", 1)[0]
    rows: dict[str, list[dict[str, Any]]] = {"first": [], "unchanged": []}
    with Sim(args.clusters, args.nodes, args.user) as kubeconfig:
        common = [
            f"--kubeconfig={kubeconfig}",
            f"--concurrency={args.concurrency}",
            "--timeout=60",
            "--cluster-timeout=900",
            "--output=json",
        ]
        for i in range(args.runs):
            db = f"kubeinv_fleet_bench_{uuid.uuid4().hex[:8]}"
            _admin(args.dsn, f"CREATE DATABASE {db}")
            try:
                for kind in ("first", "unchanged"):
                    sample = run_measured(
                        kubeinv(*common, f"--database-url={base}/{db}"), env, args.replicas
                    )
                    outputs = sample.pop("stdout")
                    statuses: dict[str, int] = {}
                    for raw in outputs if isinstance(outputs, list) else [outputs]:
                        for o in json.loads(raw)["outcomes"]:
                            key = "deduplicated" if o.get("deduplicated") else o["status"]
                            statuses[key] = statuses.get(key, 0) + 1
                    sample["statuses"] = statuses
                    sample["cpu_ms_per_cluster"] = sample["cpu_s"] / args.clusters * 1000
                    rows[kind].append(sample)
                    print(f"run {i + 1} {kind}: {json.dumps(sample)}", file=sys.stderr)
            finally:
                _admin(args.dsn, f"DROP DATABASE IF EXISTS {db}")
    replicas = f", {args.replicas} replicas at once" if args.replicas > 1 else ""
    print(
        f"| {args.clusters} clusters x {args.nodes} nodes (median of {args.runs}{replicas}) | "
        "wall s | "
        "CPU s | CPU ms per cluster | peak RSS MB | load avg |"
    )
    print("|---|---|---|---|---|---|")
    for kind, samples in rows.items():
        print(
            f"| {kind} run | {_med(samples, 'wall_s'):.2f} | {_med(samples, 'cpu_s'):.2f} | "
            f"{_med(samples, 'cpu_ms_per_cluster'):.1f} | {_med(samples, 'peak_rss_mb'):.0f} | "
            f"{_med(samples, 'load_avg_1m'):.1f} |"
        )
    print(
        "per run CPU ms per cluster:",
        {k: [round(s["cpu_ms_per_cluster"], 1) for s in v] for k, v in rows.items()},
    )


def run_startup(args: argparse.Namespace) -> None:
    env = collector_env(args.tree)
    samples: dict[str, list[dict[str, Any]]] = {"small": [], "big": []}
    with Sim(1, args.small_nodes, args.user) as small, Sim(1, args.big_nodes, args.user) as big:
        for path in (small, big):  # warm-up: page cache, bytecode
            run_measured(kubeinv("--dry-run", f"--kubeconfig={path}"), env)
        for _ in range(args.runs):
            for name, path in (("small", small), ("big", big)):
                sample = run_measured(
                    kubeinv("--dry-run", "--timeout=60", f"--kubeconfig={path}"), env
                )
                sample.pop("stdout")
                samples[name].append(sample)
                print(f"{name}: {json.dumps(sample)}", file=sys.stderr)
    small_cpu, big_cpu = _med(samples["small"], "cpu_s"), _med(samples["big"], "cpu_s")
    per_round = [
        (args.big_nodes - args.small_nodes) / (b["cpu_s"] - s["cpu_s"])
        for s, b in zip(samples["small"], samples["big"], strict=True)
    ]
    print(f"| measure (median of {args.runs}) | value | load avg |")
    print("|---|---|---|")
    print(
        f"| CPU of `collect --dry-run`, 1 x {args.small_nodes} nodes | {small_cpu:.3f} s | "
        f"{_med(samples['small'], 'load_avg_1m'):.1f} |"
    )
    print(
        f"| CPU of `collect --dry-run`, 1 x {args.big_nodes} nodes | {big_cpu:.3f} s | "
        f"{_med(samples['big'], 'load_avg_1m'):.1f} |"
    )
    print(
        f"| node path end to end | {statistics.median(per_round):,.0f} nodes/CPU s "
        f"(per round: {', '.join(f'{r:,.0f}' for r in per_round)}) | |"
    )
    print(
        f"| peak RSS, 1 x {args.big_nodes} nodes | {_med(samples['big'], 'peak_rss_mb'):.0f} MB | |"
    )


def _med(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(s[key]) for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", type=Path, help="source tree of the collector to measure")
    parser.add_argument("--user", default="cert-data", help="simulator user kind")
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fleet", help="N clusters into PostgreSQL: first and unchanged run")
    f.add_argument("--clusters", type=int, default=200)
    f.add_argument("--nodes", type=int, default=20)
    f.add_argument("--runs", type=int, default=3)
    f.add_argument("--concurrency", type=int, default=32)
    f.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="collectors started at once on the same fleet and database (they divide it "
        "through claims); CPU is their sum, wall time until the last one ends",
    )
    f.add_argument(
        "--dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a database of the server where scratch databases are created and dropped",
    )
    s = sub.add_parser("startup", help="dry-run CPU: one small and one large cluster")
    s.add_argument("--runs", type=int, default=5)
    s.add_argument("--small-nodes", type=int, default=50)
    s.add_argument("--big-nodes", type=int, default=20000)
    args = parser.parse_args()
    if args.command == "fleet":
        run_fleet(args)
    else:
        run_startup(args)


if __name__ == "__main__":
    main()
