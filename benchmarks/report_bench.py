"""Report query speed on a synthetic history: 200 clusters x 50 nodes x 90 days of daily changes.

Every node gets a new version every day (a label and its Ready condition's transition time
change), 5 of each cluster's 50 node slots are replaced every 3 days (node-added/node-removed),
every cluster upgrades once, and each cluster's API resources change daily (2 removed, 2 added);
clusters differ in a few API resources and serve flowcontrol v1beta3 (and a quarter v1beta2), so
api-diff and removals return rows. That is 900,000 node versions (inserted in time order, as
collections write them), ~47,900 API resource versions and 400 cluster versions, ending now.
Each report query then runs ``--repeat`` times; the medians are printed (milliseconds).

    .venv/bin/python benchmarks/report_bench.py --dsn postgresql://postgres@127.0.0.1:5432/test

The DSN's database is only used to create (and, unless --keep, drop) a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import statistics
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from collector import report
from collector.store import open_store

CLUSTERS, NODES, DAYS = 200, 50, 90
SIZES = {"2": CLUSTERS, "3": NODES, "4": DAYS}

GENERATE = """
-- clusters and their versions: minor 27..30, one upgrade each, on day 15..74
INSERT INTO inventory.cluster (cluster_id, server_url, provider, context_names, first_seen_at,
                               last_collected_at, last_attempt_at, last_status)
SELECT format('c%s', lpad(i::text, 3, '0')), format('https://c%s.example:6443', i), 'other',
       ARRAY[format('ctx-%s', i)], $1::timestamptz, now(), now(),
       CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'ok' END
FROM generate_series(0, $2 - 1) i;

INSERT INTO inventory.cluster_version_history (cluster_id, git_version, major, minor,
    minor_version, platform, content_hash, valid_from, valid_to)
SELECT format('c%s', lpad(i::text, 3, '0')), format('v1.%s.3', 27 + i % 4), '1',
       (27 + i % 4)::text, 27 + i % 4, 'linux/amd64', md5(i::text || 'a'),
       $1::timestamptz, $1::timestamptz + (15 + i % 60) * interval '1 day'
FROM generate_series(0, $2 - 1) i
UNION ALL
SELECT format('c%s', lpad(i::text, 3, '0')), format('v1.%s.1', 28 + i % 4), '1',
       (28 + i % 4)::text, 28 + i % 4, 'linux/amd64', md5(i::text || 'b'),
       $1::timestamptz + (15 + i % 60) * interval '1 day', NULL
FROM generate_series(0, $2 - 1) i;

-- nodes: slot j of cluster i; slots >= $3 - 5 hold a new node every 3 days; written in time
-- order, one collection after the other, as the collector writes them
WITH versions AS (
    SELECT i, j, d,
           CASE WHEN j < $3 - 5 THEN format('c%s-n%s', i, j)
                ELSE format('c%s-n%s-g%s', i, j, d / 3) END AS uid,
           j >= $3 - 5 AS ephemeral
    FROM generate_series(0, $2 - 1) i, generate_series(0, $3 - 1) j,
         generate_series(0, $4 - 1) d
)
INSERT INTO inventory.node_history (
    cluster_id, node_uid, name, created_at, roles, ready, unschedulable, kubelet_version,
    container_runtime_version, os_image, kernel_version, architecture, operating_system,
    internal_ip, provider_id, region, zone, instance_type,
    cpu_capacity_millicores, memory_capacity_bytes, pods_capacity,
    ephemeral_storage_capacity_bytes, gpu_capacity, cpu_allocatable_millicores,
    memory_allocatable_bytes, pods_allocatable, capacity, allocatable, labels, taints,
    conditions, first_seen_at, content_hash, valid_from, valid_to)
SELECT format('c%s', lpad(i::text, 3, '0')), uid, uid, $1::timestamptz,
       CASE WHEN j < 3 THEN ARRAY['control-plane'] ELSE ARRAY['worker'] END,
       d % 17 <> 5, false,
       format('v1.%s.%s', 25 + (i + j) % 6, j % 9), 'containerd://1.7.13',
       'Ubuntu 22.04.4 LTS', '6.5.0-1018-aws', 'amd64', 'linux',
       format('10.%s.%s.%s', i % 250, j, 10)::inet, format('aws:///eu-west-1a/i-%s', md5(uid)),
       'eu-west-1', format('eu-west-1%s', chr(97 + j % 3)), 'm6i.2xlarge',
       8000, 32 * 1024^3, 110, 100 * 1024^3, CASE WHEN j % 10 = 0 THEN 1 END,
       7910, 31 * 1024^3, 110,
       '{"cpu": 8, "memory": 34359738368, "pods": 110}',
       '{"cpu": 7.91, "memory": 33285996544, "pods": 110}',
       jsonb_build_object('kubernetes.io/hostname', uid, 'kubernetes.io/arch', 'amd64',
                          'node.kubernetes.io/instance-type', 'm6i.2xlarge',
                          'topology.kubernetes.io/zone', format('eu-west-1%s', chr(97 + j % 3)),
                          'kubeinv.bench/day', d::text),
       '[]',
       jsonb_build_array(
           jsonb_build_object('type', 'Ready', 'status', 'True', 'reason', 'KubeletReady',
                              'last_transition_time', $1::timestamptz + d * interval '1 day'),
           jsonb_build_object('type', 'MemoryPressure', 'status', 'False'),
           jsonb_build_object('type', 'DiskPressure', 'status', 'False'),
           jsonb_build_object('type', 'PIDPressure', 'status', 'False')),
       $1::timestamptz + (CASE WHEN ephemeral THEN (d / 3) * 3 ELSE 0 END) * interval '1 day',
       md5(uid || d),
       $1::timestamptz + d * interval '1 day' + (i % 24) * interval '1 hour',
       CASE WHEN d = $4 - 1 THEN NULL
            WHEN ephemeral AND d % 3 = 2 AND d < $4 - 1 THEN
                 $1::timestamptz + (d + 1) * interval '1 day' + (i % 24) * interval '1 hour'
            ELSE $1::timestamptz + (d + 1) * interval '1 day' + (i % 24) * interval '1 hour'
       END
FROM versions
ORDER BY d, i % 24, i, j;

-- API resources: 50 stable ones, up to 6 that differ between clusters (so api-diff has rows),
-- flowcontrol v1beta3 (removed in 1.32) everywhere and v1beta2 (removed in 1.29) on a quarter
-- of the clusters (so removals has rows), and 2 CRD versions rotated daily (2 removed, 2 added)
INSERT INTO inventory.api_resource_history (cluster_id, api_group, api_version, resource, kind,
    namespaced, verbs, preferred, content_hash, valid_from, valid_to)
SELECT format('c%s', lpad(i::text, 3, '0')),
       CASE WHEN r < 20 THEN '' WHEN r < 40 THEN 'apps' ELSE format('g%s.example.com', r) END,
       CASE WHEN r % 7 = 0 THEN 'v1beta1' ELSE 'v1' END, format('res%s', r), format('Res%s', r),
       true, ARRAY['get', 'list'], true, md5(i::text || r), $1::timestamptz, NULL::timestamptz
FROM generate_series(0, $2 - 1) i, generate_series(0, 55) r
WHERE r < 50 OR (i + r) % 3 <> 0
UNION ALL
SELECT format('c%s', lpad(i::text, 3, '0')), 'flowcontrol.apiserver.k8s.io', x.v, x.res, x.kind,
       false, ARRAY['get', 'list'], x.v = 'v1beta3', md5(i::text || x.v || x.res),
       $1::timestamptz, NULL::timestamptz
FROM generate_series(0, $2 - 1) i,
     (VALUES ('v1beta3', 'flowschemas', 'FlowSchema'),
             ('v1beta3', 'prioritylevelconfigurations', 'PriorityLevelConfiguration'),
             ('v1beta2', 'flowschemas', 'FlowSchema'),
             ('v1beta2', 'prioritylevelconfigurations', 'PriorityLevelConfiguration'))
     AS x(v, res, kind)
WHERE x.v = 'v1beta3' OR i % 4 = 0
UNION ALL
SELECT format('c%s', lpad(i::text, 3, '0')), 'rotating.example.com', format('v%s', d),
       format('things%s', k), 'Thing', true, ARRAY['get'], true, md5(i::text || d || k),
       $1::timestamptz + d * interval '1 day' + (i % 24) * interval '1 hour',
       CASE WHEN d = $4 - 1 THEN NULL
            ELSE $1::timestamptz + (d + 1) * interval '1 day' + (i % 24) * interval '1 hour' END
FROM generate_series(0, $2 - 1) i, generate_series(0, $4 - 1) d, generate_series(0, 1) k;
"""


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--database", help="reuse this existing, already generated database")
    ap.add_argument(
        "--only", action="append", help="only the reports whose label contains this (repeatable)"
    )
    args = ap.parse_args()

    name = args.database or f"kubeinv_report_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.dsn)
    if not args.database:
        await admin.execute(f'CREATE DATABASE "{name}"')
    store = await open_store(with_database(args.dsn, name), max_size=2)
    try:
        await store.migrate()  # a reused database gets any newer migration
        if not args.database:
            t0 = time.perf_counter()
            async with store.connection() as conn:
                start = await conn.fetchval(
                    "SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
                    " - $1 * interval '1 day'",
                    DAYS - 1,
                )
                async with conn.transaction():
                    for statement in GENERATE.split(";\n\n"):
                        if statement.strip():
                            text = re.sub(r"\$([234])(?!\d)", lambda m: str(SIZES[m[1]]), statement)
                            await conn.execute(text, start)
                await conn.execute("VACUUM ANALYZE")
            print(f"generated history in {time.perf_counter() - t0:.1f} s")
        async with store.connection() as conn:
            counts = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM inventory.node_history) AS node_versions,"
                " (SELECT count(*) FROM inventory.api_resource_history) AS api_versions,"
                " (SELECT count(*) FROM inventory.cluster_version_history) AS cluster_versions"
            )
            print(dict(counts))
        reader = store.reports()
        today = await reader.today()
        first = today - timedelta(days=DAYS - 1)
        queries = {
            "fleet": reader.fleet,
            "versions (90 days)": lambda: reader.versions(first, today),
            "capacity (90 days)": lambda: reader.capacity(first, today),
            "skew": lambda: reader.skew(only_problems=False),
            "changes --since 7d": lambda: reader.changes_within(timedelta(days=7)),
            "changes --since 1d": lambda: reader.changes_within(timedelta(days=1)),
            "api-diff": lambda: reader.api_diff("c001", "ctx-2"),
            "eol": reader.eol,
            "removals": reader.removals,
        }

        async def sql_alone(days: int) -> list[int]:
            async with store.connection() as conn:
                n = await conn.fetchval(
                    "SELECT count(*) FROM inventory.changes(inventory.analytics_now()"
                    " - $1 * interval '1 day')",
                    days,
                )
            return [0] * int(n)

        async def through_report(output: str, since: str = "7d") -> list[str]:
            # what `kubeinv report changes --since 7d --output OUTPUT` does after connecting;
            # the text is written to memory (counted: lines)
            out = io.StringIO()
            await report.print_report(store, "changes", output=output, out=out, since=since)
            return out.getvalue().splitlines()

        queries.update(
            {
                "changes 7d: SQL count(*)": lambda: sql_alone(7),
                "changes 7d: --output json (lines)": lambda: through_report("json"),
                "changes 7d: --output csv (lines)": lambda: through_report("csv"),
                "changes 7d: table (lines)": lambda: through_report("table"),
            }
        )
        wanted = args.only
        print(f"{'report':<34} {'rows':>8} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
        for label, run in queries.items():
            if wanted and not any(w in label for w in wanted):
                continue
            times = []
            rows = 0
            for _ in range(args.repeat):
                t = time.perf_counter()
                rows = len(await run())
                times.append((time.perf_counter() - t) * 1000)
            print(
                f"{label:<34} {rows:>8} {statistics.median(times):>10.0f} {min(times):>8.0f}"
                f" {max(times):>8.0f}"
            )
    finally:
        await store.close()
        if not args.keep and not args.database:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
