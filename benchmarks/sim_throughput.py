"""How fast the simulator starts and how many requests it sustains.

The fleet runs in its own process (`python -m collector.sim serve`), as it would beside a
collector; the load comes from this process with aiohttp. Each measurement is repeated and the
median is reported.

    python benchmarks/sim_throughput.py                 # defaults: 5 runs of 3 s each
    python benchmarks/sim_throughput.py --runs 3 --seconds 2 --clusters 200 --big-nodes 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


async def start_fleet(
    out: Path, scenario: Path | None, clusters: int, nodes: int
) -> tuple[asyncio.subprocess.Process, float]:
    args = [
        sys.executable,
        "-m",
        "collector.sim",
        "serve",
        "--out",
        str(out),
        "--nodes",
        str(nodes),
    ]
    if scenario is not None:
        args += ["--scenario", str(scenario)]
    else:
        args += ["--clusters", str(clusters)]
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    ready = out / "ready"
    while not ready.exists():
        if proc.returncode is not None:
            err = await proc.stderr.read() if proc.stderr else b""
            raise SystemExit(f"simulator failed: {err.decode()}")
        await asyncio.sleep(0.02)
    return proc, time.perf_counter() - t0


async def stop_fleet(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_context(out: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(out / "pki" / "ca.crt"))
    ctx.load_cert_chain(out / "pki" / "admin.crt", out / "pki" / "admin.key")
    return ctx


async def hammer(
    urls: list[str], ctx: ssl.SSLContext, *, seconds: float, workers: int, keepalive: bool
) -> tuple[int, int]:
    """GET the urls round-robin from `workers` tasks for `seconds`; (requests, bytes)."""
    done = 0
    nbytes = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=workers, force_close=not keepalive, ssl=ctx)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(offset: int) -> None:
            # keep-alive: each worker stays on one cluster and reuses its connection;
            # otherwise it walks the fleet, one new TLS connection per request.
            nonlocal done, nbytes
            i = offset
            while time.perf_counter() < deadline:
                async with session.get(urls[i % len(urls)]) as resp:
                    body = await resp.read()
                    assert resp.status == 200, resp.status
                done += 1
                nbytes += len(body)
                if not keepalive:
                    i += workers

        await asyncio.gather(*(worker(w) for w in range(workers)))
    return done, nbytes


async def measure(name: str, runs: int, fn: Any) -> dict[str, float]:
    values: list[dict[str, float]] = []
    for _ in range(runs):
        values.append(await fn())
    keys = values[0].keys()
    result = {k: statistics.median(v[k] for v in values) for k in keys}
    shown = ", ".join(f"{k} {v:,.1f}" for k, v in result.items())
    print(f"{name}: {shown}   (median of {runs})", flush=True)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=5, help="nodes per cluster of the wide fleet")
    parser.add_argument("--big-nodes", type=int, default=20000, help="nodes of the large cluster")
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # 1. startup of a wide fleet
        async def start_wide() -> dict[str, float]:
            out = Path(tempfile.mkdtemp(dir=tmp))
            proc, took = await start_fleet(out, None, args.clusters, args.nodes)
            await stop_fleet(proc)
            return {"seconds to ready": took}

        results["wide_start"] = await measure(
            f"start {args.clusters} clusters x {args.nodes} nodes", args.runs, start_wide
        )

        # 2. small requests across the wide fleet
        out = Path(tmp) / "wide"
        proc, _ = await start_fleet(out, None, args.clusters, args.nodes)
        try:
            summary = json.loads((out / "ready").read_text())
            ctx = client_context(out)
            version_urls = [c["server"] + "/version" for c in summary["clusters"]]
            page_urls = [c["server"] + "/api/v1/nodes?limit=500" for c in summary["clusters"]]

            async def small(urls: list[str], keepalive: bool) -> dict[str, float]:
                cpu0 = cpu_seconds(proc.pid)
                n, _ = await hammer(
                    urls, ctx, seconds=args.seconds, workers=args.workers, keepalive=keepalive
                )
                cpu = cpu_seconds(proc.pid) - cpu0
                return {
                    "requests/s": n / args.seconds,
                    "server CPU us/request": cpu / n * 1e6,
                    "requests per server CPU-second": n / cpu if cpu else 0.0,
                }

            results["version_keepalive"] = await measure(
                f"GET /version, keep-alive, {args.workers} workers over {args.clusters} clusters",
                args.runs,
                lambda: small(version_urls, True),
            )
            results["nodes_small_keepalive"] = await measure(
                f"GET /api/v1/nodes ({args.nodes} nodes), keep-alive",
                args.runs,
                lambda: small(page_urls, True),
            )
            results["version_new_tls"] = await measure(
                "GET /version, new TLS connection per request",
                args.runs,
                lambda: small(version_urls, False),
            )
        finally:
            await stop_fleet(proc)

        # 3. a large cluster: startup and full pages of 500 nodes
        scenario = Path(tmp) / "big.toml"
        scenario.write_text(
            f'[[cluster]]\nname = "big"\nflavour = "eks"\nnodes = {args.big_nodes}\n'
        )
        out = Path(tmp) / "big"
        proc, took = await start_fleet(out, scenario, 0, 0)
        results["big_start"] = {"seconds to ready": took}
        print(f"start 1 cluster x {args.big_nodes} nodes: {took:.2f} s to ready (single run)")
        try:
            summary = json.loads((out / "ready").read_text())
            server = summary["clusters"][0]["server"]
            ctx = client_context(out)

            async def full_list() -> dict[str, float]:
                t0 = time.perf_counter()
                pages = nodes = size = 0
                async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=ctx)
                ) as session:
                    token = ""
                    while True:
                        url = f"{server}/api/v1/nodes?limit=500" + (
                            f"&continue={token}" if token else ""
                        )
                        async with session.get(url) as resp:
                            body = await resp.read()
                        doc = json.loads(body)
                        pages += 1
                        nodes += len(doc["items"])
                        size += len(body)
                        token = doc["metadata"].get("continue", "")
                        if not token:
                            break
                took = time.perf_counter() - t0
                return {"pages/s": pages / took, "nodes/s": nodes / took, "MB/s": size / took / 1e6}

            results["big_list"] = await measure(
                f"list {args.big_nodes} nodes in pages of 500 (one client, json.loads included)",
                args.runs,
                full_list,
            )
            page_url = [f"{server}/api/v1/nodes?limit=500"]

            async def pages() -> dict[str, float]:
                cpu0 = cpu_seconds(proc.pid)
                n, size = await hammer(
                    page_url, ctx, seconds=args.seconds, workers=8, keepalive=True
                )
                cpu = cpu_seconds(proc.pid) - cpu0
                return {
                    "pages/s": n / args.seconds,
                    "MB/s": size / args.seconds / 1e6,
                    "server CPU ms/page": cpu / n * 1e3,
                }

            results["big_pages"] = await measure(
                "first page of 500 nodes, 8 workers, body not parsed", args.runs, pages
            )
        finally:
            await stop_fleet(proc)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
