"""Store benchmark: the change-only write path on a real PostgreSQL.

    python benchmarks/store_bench.py                 # private embedded server (clean WAL numbers)
    python benchmarks/store_bench.py --dsn postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/store_bench.py --nodes 20000 --repeat 5 --clusters 200 --fleet-nodes 50

Measures, each repeated and reported as medians:
- a 20,000-node cluster: first store, unchanged re-store (after a CHECKPOINT, the worst case
  for full-page writes), and a re-store with 5% of the nodes changed: time, row versions
  written and closed, WAL bytes (pg_current_wal_lsn() before and after);
- a fleet of 200 clusters x 50 nodes: first store and unchanged re-store, 4 clusters at a time.

WAL is server-wide: with --dsn on a shared server, other sessions' writes are counted too. By
default the benchmark starts its own embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.records import (
    ApiResourceRecord,
    ClusterInventory,
    NodeCondition,
    NodeRecord,
    Taint,
    VersionRecord,
    content_hash,
)
from collector.store import Store, open_store
from collector.store.embedded import EmbeddedServer
from collector.store.queries import load_queries
from collector.store.writing import NODE_COLUMNS, node_row

CREATED = datetime(2024, 5, 1, tzinfo=UTC)
CONDITIONS = (
    *(
        NodeCondition(type=t, status="False", reason=f"Kubelet{r}", message=f"kubelet has {m}",
                      last_transition_time=CREATED)
        for t, r, m in (("MemoryPressure", "HasSufficientMemory", "sufficient memory"),
                        ("DiskPressure", "HasNoDiskPressure", "no disk pressure"),
                        ("PIDPressure", "HasSufficientPID", "sufficient PID"))
    ),
    NodeCondition(type="Ready", status="True", reason="KubeletReady",
                  message="kubelet is posting ready status", last_transition_time=CREATED),
)  # fmt: skip


def _hashed(record: Any) -> Any:
    return msgspec.structs.replace(record, content_hash=content_hash(record))


SHAPE = {"lean": False}  # --lean-nodes: no jsonb content (set by main)


def make_node(cluster: str, i: int, generation: int = 0) -> NodeRecord:
    node = _make_node(cluster, i, generation)
    if SHAPE["lean"]:
        # The same node without its maps: every jsonb column gets its empty default. What the
        # write path costs apart from PostgreSQL's jsonb input (benchmarks/README.md).
        node = msgspec.structs.replace(
            node, capacity={}, allocatable={}, labels={}, taints=(), conditions=()
        )
    return _hashed(node)


def _make_node(cluster: str, i: int, generation: int) -> NodeRecord:
    pool = f"pool-{i % 7}"
    return (
        NodeRecord(
            node_uid=f"{cluster}-{i:06d}-0000-4000-8000-{i:012d}",
            name=f"ip-10-{i // 65536 % 256}-{i // 256 % 256}-{i % 256}.eu-west-1.compute.internal",
            created_at=CREATED,
            roles=("worker",),
            ready=True,
            kubelet_version="v1.30.4-eks-a737599",
            container_runtime_version="containerd://1.7.20",
            os_image="Amazon Linux 2023.5.20240805",
            kernel_version="6.1.102-108.177.amzn2023.x86_64",
            architecture="amd64",
            operating_system="linux",
            internal_ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
            provider_id=f"aws:///eu-west-1{'abc'[i % 3]}/i-{i:017x}",
            region="eu-west-1",
            zone=f"eu-west-1{'abc'[i % 3]}",
            instance_type="m6i.2xlarge",
            cpu_capacity_millicores=8000,
            memory_capacity_bytes=32_448_327_680,
            pods_capacity=58,
            ephemeral_storage_capacity_bytes=85_886_742_528,
            gpu_capacity=0,
            cpu_allocatable_millicores=7910,
            memory_allocatable_bytes=31_482_372_096,
            pods_allocatable=58,
            capacity={"cpu": 8, "memory": 32_448_327_680, "pods": 58,
                      "ephemeral-storage": 85_886_742_528, "hugepages-2Mi": 0},
            allocatable={"cpu": 7.91, "memory": 31_482_372_096, "pods": 58,
                         "ephemeral-storage": 77_297_068_544, "hugepages-2Mi": 0},
            labels={
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": "m6i.2xlarge",
                "beta.kubernetes.io/os": "linux",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup": pool,
                "failure-domain.beta.kubernetes.io/region": "eu-west-1",
                "failure-domain.beta.kubernetes.io/zone": f"eu-west-1{'abc'[i % 3]}",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": f"ip-10-{i}.eu-west-1.compute.internal",
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m6i.2xlarge",
                "topology.kubernetes.io/region": "eu-west-1",
                "topology.kubernetes.io/zone": f"eu-west-1{'abc'[i % 3]}",
                "generation": str(generation),
            },
            taints=(Taint(key="dedicated", value=pool, effect="NoSchedule"),) if i % 5 == 0 else (),
            conditions=CONDITIONS,
        )
    )  # fmt: skip


def make_api_resources(count: int = 180) -> tuple[ApiResourceRecord, ...]:
    return tuple(
        _hashed(
            ApiResourceRecord(
                api_group="" if i < 20 else f"group{i // 6}.example.com",
                api_version=f"v{1 + i % 2}",
                resource=f"things{i}",
                kind=f"Thing{i}",
                namespaced=i % 3 != 0,
                verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                preferred=i % 2 == 0,
            )
        )
        for i in range(count)
    )


VERSION = _hashed(
    VersionRecord(major="1", minor="30+", minor_version=30, git_version="v1.30.4-eks-a737599")
)


def make_inventory(cluster: str, nodes: Sequence[NodeRecord]) -> ClusterInventory:
    return ClusterInventory(
        cluster_id=cluster,
        cluster_id_source="kube-system-uid",
        server_url=f"https://{cluster}.example:443",
        context_names=(cluster,),
        provider="eks",
        version=VERSION,
        services=(),
        nodes=tuple(nodes),
        api_resources=make_api_resources(),
        discovery_mode="aggregated-v2",
    )


async def wal_lsn(conn: Any) -> int:
    return int(await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))


_TICK = os.sysconf("SC_CLK_TCK")


async def server_cpu(conn: Any) -> tuple[float, float]:
    """User and system CPU seconds used so far by every backend of this database (a local
    server only)."""
    pids = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    times = [_process_cpu(row["pid"]) for row in pids]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def _process_cpu(pid: int) -> tuple[float, float]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


async def measure(store: Store, coro_factory: Any, *, checkpoint: bool = False) -> dict[str, Any]:
    async with store.connection() as conn:
        if checkpoint:
            await conn.execute("CHECKPOINT")
        before = await wal_lsn(conn)
        server_before = await server_cpu(conn)
    started = time.perf_counter()
    client_before = time.process_time()
    stats = await coro_factory()
    elapsed = time.perf_counter() - started
    client = time.process_time() - client_before
    async with store.connection() as conn:
        after = await wal_lsn(conn)
        server_user, server_sys = await server_cpu(conn)
    stats_list = stats if isinstance(stats, list) else [stats]
    return {
        "seconds": elapsed,
        "written": sum(s.versions_written for s in stats_list),
        "closed": sum(s.versions_closed for s in stats_list),
        "wal_bytes": after - before,
        "client_cpu": client,
        "server_cpu": server_user + server_sys - sum(server_before),
        # The kernel's share (writes to the page cache). On this VM the cost of each write can
        # change several-fold within an invocation (benchmarks/README.md, "Store").
        "server_sys": server_sys - server_before[1],
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = runs[0].keys()
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["seconds_min"] = min(r["seconds"] for r in runs)
    out["seconds_max"] = max(r["seconds"] for r in runs)
    # Each run in order (--json): later runs of an invocation can be slower (benchmarks/README).
    out["runs"] = [
        {k: round(r[k], 3) for k in ("seconds", "server_cpu", "server_sys", "client_cpu")}
        for r in runs
    ]
    written = out["written"]
    out["rows_per_s"] = written / out["seconds"] if out["seconds"] else 0
    # What an idle 2-core machine would allow: client and server run on separate cores.
    bound = max(out["client_cpu"], out["server_cpu"])
    out["cpu_bound_rows_per_s"] = written / bound if bound else 0
    return out


async def copy_replayed(store: Store, cluster: str, repeat: int) -> dict[str, Any]:
    """The server's share of a first store alone: the cluster's current node rows, exported once
    as COPY binary data, then copied from memory (no client-side encoding) in a store-like
    transaction, each time as a new cluster: the cluster id (also the prefix of the node uids)
    is replaced by another of the same length, so every run inserts new keys, as a first store
    does."""
    buf = io.BytesIO()
    columns = ", ".join(NODE_COLUMNS)
    async with store.connection() as conn:
        await conn.copy_from_query(
            f"SELECT {columns} FROM inventory.node_history "
            "WHERE cluster_id = $1 AND valid_to IS NULL",
            cluster,
            output=buf,
            format="binary",
        )
    payload = buf.getvalue()
    runs = []
    for rep in range(repeat):
        other = f"rep{rep}-{uuid.uuid4().hex}"[: len(cluster)]
        data = payload.replace(cluster.encode(), other.encode())

        async def replay(data: bytes = data) -> Any:
            async with store.connection() as conn, conn.transaction():
                await conn.execute(load_queries()["store_memory"])  # as the store does
                status = await conn.copy_to_table(
                    "node_history",
                    schema_name="inventory",
                    source=io.BytesIO(data),
                    columns=list(NODE_COLUMNS),
                    format="binary",
                )
            written = int(status.split()[-1])
            return types.SimpleNamespace(versions_written=written, versions_closed=0)

        runs.append(await measure(store, replay))
    return median_of(runs)


# --reference: the method the bar's "~40,000 rows/s" was measured with (COPY into a staging
# table, then one INSERT ... SELECT ... ON CONFLICT), on the same node rows. "bare" is a table of
# the same columns with only the unique key: no analytics indexes, no statement triggers.
REFERENCE_BARE = """
CREATE TABLE IF NOT EXISTS public.reference_bare (LIKE inventory.node_history INCLUDING DEFAULTS);
CREATE UNIQUE INDEX IF NOT EXISTS reference_bare_key ON public.reference_bare (cluster_id, node_uid)
"""
REFERENCE_TARGETS = {
    "node_history": ("inventory.node_history", "(cluster_id, node_uid) WHERE valid_to IS NULL"),
    "bare": ("public.reference_bare", "(cluster_id, node_uid)"),
}


async def reference_store(store: Store, target: str, cluster: str, nodes: list[NodeRecord]) -> Any:
    """One first store of ``nodes`` the reference way: the same rows as the write path sends
    (``node_row``, so the same client encoding), COPY into a temporary staging table, then one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into ``target``, in one transaction."""
    table, conflict = REFERENCE_TARGETS[target]
    columns = ", ".join(NODE_COLUMNS)
    when = CREATED
    async with store.connection() as conn, conn.transaction():
        await conn.execute(load_queries()["store_memory"])  # as the store does
        await conn.execute(
            "CREATE TEMP TABLE reference_stage (LIKE inventory.node_history INCLUDING DEFAULTS) "
            "ON COMMIT DROP"
        )
        await conn.copy_records_to_table(
            "reference_stage",
            records=(node_row(cluster, when, r, when) for r in nodes),
            columns=NODE_COLUMNS,
        )
        status = await conn.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM reference_stage "
            f"ON CONFLICT {conflict} DO NOTHING"
        )
    written = int(status.split()[-1])
    return types.SimpleNamespace(versions_written=written, versions_closed=0)


async def bench(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    store = await open_store(dsn, max_size=args.concurrency + 1)
    try:
        await store.migrate()
        if args.reference:
            async with store.connection() as conn:
                await conn.execute(REFERENCE_BARE)
        results: dict[str, Any] = {}
        first, unchanged, changed = [], [], []
        reference: dict[str, list[dict[str, Any]]] = {t: [] for t in REFERENCE_TARGETS}
        for rep in range(args.repeat):
            cluster = f"big-{rep}-{uuid.uuid4().hex[:6]}"
            nodes = [make_node(cluster, i) for i in range(args.nodes)]
            inv = make_inventory(cluster, nodes)
            first.append(await measure(store, lambda inv=inv: store.store_inventory(None, inv)))
            for target, runs in reference.items() if args.reference else ():
                # Interleaved with the first stores; each time as a new cluster (new keys).
                other = f"ref-{rep}-{uuid.uuid4().hex[:6]}"
                other_nodes = [make_node(other, i) for i in range(args.nodes)]
                runs.append(
                    await measure(
                        store,
                        lambda t=target, o=other, n=other_nodes: reference_store(store, t, o, n),
                    )
                )
            unchanged.append(
                await measure(
                    store, lambda inv=inv: store.store_inventory(None, inv), checkpoint=True
                )
            )
            step = 20  # 5% of the nodes change
            mixed = [
                make_node(cluster, i, generation=1) if i % step == 0 else node
                for i, node in enumerate(nodes)
            ]
            inv2 = make_inventory(cluster, mixed)
            changed.append(
                await measure(
                    store, lambda inv2=inv2: store.store_inventory(None, inv2), checkpoint=True
                )
            )
        results[f"cluster_{args.nodes}_first_store"] = median_of(first)
        results[f"cluster_{args.nodes}_unchanged_restore"] = median_of(unchanged)
        results[f"cluster_{args.nodes}_5pct_changed_restore"] = median_of(changed)
        for target, runs in reference.items() if args.reference else ():
            results[f"cluster_{args.nodes}_reference_{target}"] = median_of(runs)
        if args.server_only:
            results[f"cluster_{args.nodes}_copy_replayed"] = await copy_replayed(
                store, cluster, args.repeat
            )

        fleet_first, fleet_again = [], []
        for rep in range(args.fleet_repeat):
            invs = [
                make_inventory(
                    f"fleet-{rep}-{c}",
                    [make_node(f"fleet-{rep}-{c}", i) for i in range(args.fleet_nodes)],
                )
                for c in range(args.clusters)
            ]

            async def store_fleet(invs: list[ClusterInventory] = invs) -> list[Any]:
                sem = asyncio.Semaphore(args.concurrency)

                async def one(inv: ClusterInventory) -> Any:
                    async with sem:
                        return await store.store_inventory(None, inv)

                return list(await asyncio.gather(*(one(i) for i in invs)))

            fleet_first.append(await measure(store, store_fleet))
            fleet_again.append(await measure(store, store_fleet, checkpoint=True))
        results[f"fleet_{args.clusters}x{args.fleet_nodes}_first_store"] = median_of(fleet_first)
        results[f"fleet_{args.clusters}x{args.fleet_nodes}_unchanged_restore"] = median_of(
            fleet_again
        )
        return results
    finally:
        await store.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.dsn:
        admin = args.dsn
        server = None
        base = None
    else:
        base = Path(tempfile.mkdtemp(prefix="kinv-bench-"))
        base.chmod(0o755)
        server = EmbeddedServer(base / "data", bindirs=[Path(args.bindir)] if args.bindir else None)
        t0 = time.perf_counter()
        server.ensure_running()
        print(f"embedded PostgreSQL fresh start: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
        admin = server.dsn()
    name = f"kinv_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    version = await conn.fetchval("SHOW server_version")
    print(f"PostgreSQL {version}; load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    await conn.close()
    parts = urlsplit(admin)
    dsn = urlunsplit(parts._replace(path="/" + name))
    try:
        return await bench(dsn, args)
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
        if server is not None:
            server.stop()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="PostgreSQL to use (default: a private embedded server)")
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--fleet-nodes", type=int, default=50)
    parser.add_argument("--fleet-repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--bindir",
        help="PostgreSQL binaries for the private server (default: those kubeinv's embedded "
        "server would use, the newest of the system's and pgserver's), e.g. "
        "/usr/lib/postgresql/15/bin",
    )
    parser.add_argument(
        "--server-only",
        action="store_true",
        help="also replay the last first store's node rows as COPY binary data from memory: "
        "what the server alone takes, with no client encoding",
    )
    parser.add_argument(
        "--lean-nodes",
        action="store_true",
        help="nodes without labels, taints, conditions and resource maps (empty jsonb)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also store the same node rows the way the bar's reference figure was measured "
        "(COPY into a staging table, then one INSERT ... SELECT ... ON CONFLICT), into "
        "node_history and into a bare table with only the unique key; interleaved with the "
        "first stores",
    )
    args = parser.parse_args()
    SHAPE["lean"] = args.lean_nodes
    results = asyncio.run(main_async(args))
    print(f"load average at the end {os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    header = (
        f"{'case (median)':42} {'seconds':>8} {'(min-max)':>13} {'written':>7} {'closed':>6} "
        f"{'rows/s':>7}"
    )
    print(
        f"{header} {'WAL':>12} {'client CPU':>10} {'server CPU':>10} {'of it sys':>9} "
        f"{'CPU-bound rows/s':>16}"
    )
    for case, r in results.items():
        print(
            f"{case:42} {r['seconds']:8.3f} {r['seconds_min']:6.3f}-{r['seconds_max']:.3f} "
            f"{r['written']:7.0f} {r['closed']:6.0f} "
            f"{r['rows_per_s']:7.0f} {r['wal_bytes'] / 1024:8.1f} KiB {r['client_cpu']:9.2f}s "
            f"{r['server_cpu']:9.2f}s {r['server_sys']:8.2f}s {r['cpu_bound_rows_per_s']:16.0f}"
        )


if __name__ == "__main__":
    main()
