"""Run-ledger benchmark: how much `collection_run` and `cluster_collection` grow per target and
per run, and what pruning them (retention.ledger) costs.

Records RUNS runs of TARGETS targets each through the real write path (Store.start_run,
record_outcomes, finish_run) into a fresh database, with realistic rows (UUID cluster IDs,
server URLs, paths, 5% failures with an error message), spreads the runs' start times evenly
over DAYS days, then measures both tables (heap, TOAST and indexes: pg_total_relation_size,
after VACUUM) and times Store.prune_ledger at the default 90 days. The database is dropped at
the end.

    python benchmarks/ledger_bench.py --database-url postgresql://postgres@127.0.0.1:5432/test \\
        --runs 500 --targets 200 --days 180
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.records import TargetOutcome  # noqa: E402
from collector.store import open_store  # noqa: E402


def _outcomes(targets: int, clusters: list[str], failing_every: int) -> list[TargetOutcome]:
    now = datetime.now(UTC)
    rows = []
    for i in range(targets):
        path = f"/etc/kubeinv/kubeconfigs/team-{i % 12:02d}/cluster-{i:04d}.yaml"
        context = f"arn:aws:eks:eu-west-1:123456789012:cluster/prod-{i:04d}"
        server = f"https://{uuid.UUID(int=i).hex[:20].upper()}.gr7.eu-west-1.eks.amazonaws.com"
        if failing_every and i % failing_every == 0:
            rows.append(
                TargetOutcome(
                    kubeconfig_path=path,
                    context_name=context,
                    server_url=server,
                    status="failed",
                    error_class="Unreachable",
                    error_message=f"GET {server}/version: cannot connect: [Errno 111] Connection "
                    "refused (after 4 retries)",
                    duration_ms=10_000,
                    started_at=now,
                    finished_at=now,
                )
            )
            continue
        rows.append(
            TargetOutcome(
                kubeconfig_path=path,
                context_name=context,
                cluster_id=clusters[i],
                server_url=server,
                status="ok",
                duration_ms=850 + i % 300,
                discovery_mode="aggregated",
                node_count=50,
                api_resource_count=230,
                started_at=now,
                finished_at=now,
            )
        )
    return rows


async def bench(args: argparse.Namespace) -> dict[str, object]:
    database = f"kinv_ledger_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    dsn = urlunsplit(urlsplit(args.database_url)._replace(path="/" + database))
    store = await open_store(dsn, max_size=2)
    try:
        await store.migrate()
        clusters = [str(uuid.uuid4()) for _ in range(args.targets)]
        rows = _outcomes(args.targets, clusters, args.failing_every)
        t0 = time.monotonic()
        for _ in range(args.runs):
            run_id = await store.start_run()
            await store.record_outcomes(run_id, rows)
            await store.finish_run(run_id, "partial")
        write_s = time.monotonic() - t0
        async with store.connection() as conn:
            # Start times spread evenly over DAYS days, the last run now.
            await conn.execute(
                "UPDATE inventory.collection_run r SET started_at = now() - "
                "($1::interval * (m.last - r.run_id) / greatest(m.last - m.first, 1)), "
                "finished_at = now() - "
                "($1::interval * (m.last - r.run_id) / greatest(m.last - m.first, 1)) "
                "+ interval '1 second' "
                "FROM (SELECT min(run_id) AS first, max(run_id) AS last "
                "FROM inventory.collection_run) m",
                timedelta(days=args.days),
            )
            await conn.execute("VACUUM ANALYZE inventory.collection_run")
            await conn.execute("VACUUM ANALYZE inventory.cluster_collection")
            sizes = await conn.fetchrow(
                "SELECT pg_total_relation_size('inventory.collection_run') AS runs_bytes, "
                "pg_total_relation_size('inventory.cluster_collection') AS rows_bytes, "
                "pg_relation_size('inventory.cluster_collection') AS rows_heap_bytes, "
                "(SELECT count(*) FROM inventory.collection_run) AS runs, "
                "(SELECT count(*) FROM inventory.cluster_collection) AS rows"
            )
        assert sizes is not None
        t0 = time.monotonic()
        pruned = await store.prune_ledger(timedelta(days=90), max_batches=100_000)
        prune_s = time.monotonic() - t0
        t0 = time.monotonic()
        again = await store.prune_ledger(timedelta(days=90))
        noop_s = time.monotonic() - t0
    finally:
        await store.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    total = sizes["runs_bytes"] + sizes["rows_bytes"]
    return {
        "runs": sizes["runs"],
        "targets": args.targets,
        "ledger_rows": sizes["rows"],
        "collection_run_bytes": sizes["runs_bytes"],
        "cluster_collection_bytes": sizes["rows_bytes"],
        "cluster_collection_heap_bytes": sizes["rows_heap_bytes"],
        "bytes_per_target_row": round(sizes["rows_bytes"] / sizes["rows"]),
        "bytes_per_run_row": round(sizes["runs_bytes"] / sizes["runs"]),
        "bytes_per_run": round(total / sizes["runs"]),
        "write_s": round(write_s, 2),
        "pruned_rows": pruned.rows,
        "pruned_runs": pruned.runs,
        "prune_s": round(prune_s, 2),
        "prune_rows_per_s": round(pruned.rows / prune_s) if prune_s else None,
        "prune_again_rows": again.rows,
        "prune_again_s": round(noop_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="a server's maintenance DSN")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--failing-every", type=int, default=20, help="one target in N fails")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args)), indent=1))


if __name__ == "__main__":
    main()
