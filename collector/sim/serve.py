"""`kubeinv sim serve`: serve a simulated fleet by hand until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path

from collector.sim.fleet import LAYOUTS, Fleet, FleetSpec
from collector.sim.scenario import ScenarioError, load_scenario


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clusters",
        type=int,
        default=None,
        metavar="N",
        help="number of clusters (varied flavours, versions and users; default 3). "
        "With --scenario: extra clusters added after the scenario's",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory for kubeconfig, certificates, tokens and the ready file",
    )
    parser.add_argument(
        "--scenario", type=Path, metavar="FILE", help="TOML file describing clusters and faults"
    )
    parser.add_argument(
        "--nodes", type=int, default=5, metavar="N", help="nodes per generated cluster (default 5)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of all generated data (default 0)"
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=None,
        help="kubeconfig files: one file (single), also one per cluster (per-cluster), or also "
        "kubeadm-style admin.conf files (kubeadm)",
    )


def build_spec(args: argparse.Namespace) -> FleetSpec:
    out = Path(args.out)
    if args.scenario is not None:
        spec = load_scenario(Path(args.scenario), out_dir=out)
        if args.clusters:
            extra = FleetSpec.varied(args.clusters, nodes=args.nodes).clusters
            taken = {c.name for c in spec.clusters}
            for i, c in enumerate(extra):
                c.name = f"sim-extra-{i:03d}" if c.name in taken else c.name
            spec.clusters.extend(extra)
    else:
        count = 3 if args.clusters is None else args.clusters
        spec = FleetSpec.varied(count, nodes=args.nodes, out_dir=out)
    if args.seed is not None:
        spec.seed = args.seed
    if args.layout is not None:
        spec.layout = args.layout
    if not spec.clusters:
        raise ScenarioError("no clusters to serve (give --clusters N or a scenario with clusters)")
    return spec


async def serve_main(args: argparse.Namespace) -> int:
    """Start the fleet, write DIR/kubeconfig then DIR/ready, and serve until SIGTERM/SIGINT."""
    if args.clusters is not None and args.clusters < 0:
        print("kubeinv sim serve: --clusters must be >= 0", file=sys.stderr)
        return 2
    try:
        spec = build_spec(args)
        fleet = Fleet(spec)
    except (ScenarioError, ValueError) as exc:
        print(f"kubeinv sim serve: {exc}", file=sys.stderr)
        return 2
    ready = Path(args.out) / "ready"
    ready.unlink(missing_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.perf_counter()
    try:
        async with fleet:
            summary = {
                "kubeconfig": str(fleet.kubeconfig),
                "kubeconfig_paths": [str(p) for p in fleet.kubeconfig_paths],
                "clusters": [
                    {
                        "name": c.name,
                        "server": c.server_url,
                        "version": c.git_version,
                        "flavour": c.flavour,
                        "nodes": len(c.node_names),
                        "kube_system_uid": c.uid,
                    }
                    for c in fleet.clusters
                ],
                "contexts": [
                    {"name": x.name, "cluster": x.cluster, "user": x.user_kind, "file": str(x.path)}
                    for x in fleet.contexts
                ],
            }
            partial = ready.with_name("ready.tmp")  # readers never see a half-written file
            partial.write_text(json.dumps(summary, indent=2) + "\n")
            partial.replace(ready)
            print(
                f"serving {len(fleet.clusters)} simulated clusters "
                f"(started in {time.perf_counter() - started:.2f}s)\n"
                f"  export KUBECONFIG={fleet.kubeconfig}\n"
                f"  kubectl config get-contexts\n"
                f"stop with Ctrl-C or SIGTERM",
                flush=True,
            )
            await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        with contextlib.suppress(OSError):
            ready.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m collector.sim",
        description="The kubeinv cluster simulator (same as `kubeinv sim`).",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve a simulated fleet until SIGTERM",
        description="Serve simulated clusters on 127.0.0.1: writes DIR/kubeconfig, then "
        "DIR/ready once every server listens, and runs until SIGTERM or SIGINT.",
    )
    add_arguments(serve)
    args = parser.parse_args(argv)
    return asyncio.run(serve_main(args))
