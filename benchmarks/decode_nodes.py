"""Micro-benchmark: decode + normalize of node pages (``collector.normalize.decode_node_page``).

Builds realistic NodeList pages from the real fixture nodes (EKS, kind, k3s, OpenShift, AKS,
minikube), each node given its own name, uid, IPs, providerID and creation time, and padded with
image entries to ~7.8 KiB of compact JSON per node (as measured for the bar: 5,000 nodes, 39.8 MB).
Then times ``decode_node_page`` over all pages (CPU time of this process, so one core), several
runs, and prints the median. ``--stage decode`` times the typed msgspec decode alone.

    . .venv/bin/activate
    python benchmarks/decode_nodes.py                # 5,000 nodes, pages of 500, 7 runs
    python benchmarks/decode_nodes.py --nodes 20000 --page-size 500 --runs 9 --json
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from collector.normalize import decode_node_page, wire  # noqa: E402
from tests.k8s_fixtures import K8S  # noqa: E402

FIXTURES = K8S / "nodes"
TARGET_NODE_BYTES = 7987  # 7.8 KiB


def template_nodes() -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for path in sorted(FIXTURES.glob("*.json")):
        doc = json.loads(path.read_bytes())
        if isinstance(doc, list):
            nodes.extend(doc)
        elif doc.get("kind") == "NodeList":
            nodes.extend(doc["items"])
        else:
            nodes.append(doc)
    return nodes


def pad_images(node: dict[str, Any]) -> None:
    status = node.setdefault("status", {})
    images = status.setdefault("images", [])
    i = 0
    while len(json.dumps(node, separators=(",", ":"))) < TARGET_NODE_BYTES:
        digest = uuid.UUID(int=i * 7919 + 17).hex * 2
        images.append(
            {
                "names": [
                    f"registry.example.com/team-{i % 13}/service-{i}@sha256:{digest}",
                    f"registry.example.com/team-{i % 13}/service-{i}:v1.{i}.0",
                ],
                "sizeBytes": 10_000_000 + i * 123_457,
            }
        )
        i += 1
    if len(json.dumps(node, separators=(",", ":"))) > TARGET_NODE_BYTES + 200:
        images.pop()


def build_pages(count: int, page_size: int) -> list[bytes]:
    templates = template_nodes()
    for node in templates:
        pad_images(node)
    pages: list[bytes] = []
    items: list[dict[str, Any]] = []
    for i in range(count):
        node = copy.deepcopy(templates[i % len(templates)])
        meta = node["metadata"]
        meta["name"] = f"node-{i:06d}.{meta['name']}"
        meta["uid"] = str(uuid.UUID(int=i + 1))
        meta["creationTimestamp"] = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"
        if labels := meta.get("labels"):
            labels["kubernetes.io/hostname"] = meta["name"]
        node.setdefault("spec", {})["providerID"] = f"aws:///us-east-1{'abc'[i % 3]}/i-{i:017x}"
        for address in node.get("status", {}).get("addresses", []):
            if address.get("type") == "InternalIP":
                address["address"] = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            elif address.get("type") == "Hostname":
                address["address"] = meta["name"]
        items.append(node)
        if len(items) == page_size or i == count - 1:
            doc = {
                "kind": "NodeList",
                "apiVersion": "v1",
                "metadata": {
                    "resourceVersion": "123456",
                    "continue": "" if i == count - 1 else "c",
                },
                "items": items,
            }
            pages.append(json.dumps(doc, separators=(",", ":")).encode())
            items = []
    return pages


_typed_decoder = msgspec.json.Decoder(wire.NodeList)


def run_once(pages: list[bytes], stage: str = "all") -> tuple[float, int]:
    start = time.process_time()
    count = 0
    if stage == "decode":  # typed msgspec decode alone, no normalization (for reference)
        for raw in pages:
            count += len(_typed_decoder.decode(raw).items or ())
    else:
        for raw in pages:
            count += len(decode_node_page(raw).nodes)
    return time.process_time() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--stage",
        choices=("all", "decode"),
        default="all",
        help="all: decode_node_page (decode + normalize + content hash); decode: typed decode only",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()

    pages = build_pages(args.nodes, args.page_size)
    total_bytes = sum(len(p) for p in pages)
    run_once(pages, args.stage)  # warm-up: imports, caches
    times = []
    for _ in range(args.runs):
        gc.collect()
        elapsed, count = run_once(pages, args.stage)
        assert count == args.nodes, count
        times.append(elapsed)
    median = statistics.median(times)
    result = {
        "stage": args.stage,
        "nodes": args.nodes,
        "page_size": args.page_size,
        "mb": round(total_bytes / 1e6, 1),
        "bytes_per_node": round(total_bytes / args.nodes),
        "runs": args.runs,
        "median_s": round(median, 4),
        "nodes_per_s": round(args.nodes / median),
        "min_nodes_per_s": round(args.nodes / max(times)),
        "max_nodes_per_s": round(args.nodes / min(times)),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"[{args.stage}] {args.nodes} nodes ({result['mb']} MB, "
            f"{result['bytes_per_node']} B/node) in pages "
            f"of {args.page_size}: median {median * 1000:.1f} ms CPU over {args.runs} runs -> "
            f"{result['nodes_per_s']:,} nodes/s (range {result['min_nodes_per_s']:,}"
            f"-{result['max_nodes_per_s']:,})"
        )


if __name__ == "__main__":
    main()
