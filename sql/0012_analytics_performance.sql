-- 0012: speed of the analytics functions of 0011, measured by benchmarks/report_bench.py on
-- 200 clusters x 50 nodes x 90 days of daily changes (900,000 node versions); see
-- benchmarks/README.md. Same names, columns and results; only how they are computed changes.
--
-- * The version helpers are no longer declared STRICT, so that PostgreSQL inlines them
--   (a STRICT SQL function is called per row: node_skew_current took 2 s for 10,000 nodes).
-- * The daily series first collapse history rows that cover the same days into one span per
--   (cluster, first day, last day), then expand only those spans into days: the work follows
--   the number of distinct spans, not nodes x days.
-- * Covering indexes let those scans read the index only, and the planner's JIT compilation
--   (seconds of compile time for a query that runs in a fraction of that) is off for the
--   functions whose row estimates are rough.

CREATE OR REPLACE FUNCTION inventory.version_major(version text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE CALLED ON NULL INPUT
AS $$ SELECT (regexp_match(version, '^\s*v?(\d+)\.(\d+)'))[1]::int $$;

CREATE OR REPLACE FUNCTION inventory.version_minor(version text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE CALLED ON NULL INPUT
AS $$ SELECT (regexp_match(version, '^\s*v?(\d+)\.(\d+)'))[2]::int $$;

CREATE OR REPLACE FUNCTION inventory.allowed_kubelet_skew(server_minor int) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE CALLED ON NULL INPUT
AS $$ SELECT CASE WHEN server_minor >= 28 THEN 3 WHEN server_minor IS NOT NULL THEN 2 END $$;

-- Rows current at the end of some day of the window: still open (valid_to IS NULL), or closed
-- at or after the window's first day ends (or after now, for a pretend now). Two branches so
-- that each is one index-only range scan.
CREATE OR REPLACE FUNCTION inventory.cluster_minor_daily(from_day date, to_day date)
RETURNS TABLE (day date, cluster_id text, minor_version int)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH b AS (
        SELECT from_day AS d0,
               least(to_day, inventory.analytics_today()) AS d1,
               inventory.analytics_now() AS now_ts
    ), b2 AS (
        SELECT b.*, ((b.d1 + 1)::timestamp AT TIME ZONE 'UTC') AS end_ts,
               least(((b.d0 + 1)::timestamp AT TIME ZONE 'UTC'), b.now_ts) AS closed_after
        FROM b
    ), rows_in_window AS (
        SELECT v.cluster_id, v.minor_version, v.valid_from, v.valid_to
        FROM inventory.cluster_version_history v, b2
        WHERE v.valid_to IS NULL AND v.valid_from < b2.end_ts AND v.valid_from < b2.now_ts
        UNION ALL
        SELECT v.cluster_id, v.minor_version, v.valid_from, v.valid_to
        FROM inventory.cluster_version_history v, b2
        WHERE v.valid_to >= b2.closed_after AND v.valid_from < b2.end_ts
          AND v.valid_from < b2.now_ts
    )
    SELECT b2.d0 + i, r.cluster_id, r.minor_version
    FROM rows_in_window r, b2
    CROSS JOIN LATERAL generate_series(
        greatest((r.valid_from AT TIME ZONE 'UTC')::date, b2.d0) - b2.d0,
        CASE WHEN r.valid_to IS NULL OR r.valid_to > b2.now_ts THEN b2.d1
             ELSE least((r.valid_to AT TIME ZONE 'UTC')::date - 1, b2.d1) END - b2.d0) AS i
$$;

CREATE OR REPLACE FUNCTION inventory.node_totals_daily(from_day date, to_day date)
RETURNS TABLE (day date, cluster_id text, nodes bigint, cpu_capacity_millicores numeric,
               memory_capacity_bytes numeric, gpu_capacity numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
#variable_conflict use_column
DECLARE
    d0 date := from_day;
    d1 date := least(to_day, inventory.analytics_today());
    now_ts timestamptz := inventory.analytics_now();
    end_ts timestamptz := ((least(to_day, inventory.analytics_today()) + 1)::timestamp
                           AT TIME ZONE 'UTC');
    closed_after timestamptz := least(((from_day + 1)::timestamp AT TIME ZONE 'UTC'),
                                      inventory.analytics_now());
BEGIN
    RETURN QUERY
    WITH rows_in_window AS (
        SELECT n.cluster_id, n.valid_from, n.valid_to, n.cpu_capacity_millicores AS cpu,
               n.memory_capacity_bytes AS memory, n.gpu_capacity AS gpu
        FROM inventory.node_history n
        WHERE n.valid_to IS NULL AND n.valid_from < end_ts AND n.valid_from < now_ts
        UNION ALL
        SELECT n.cluster_id, n.valid_from, n.valid_to, n.cpu_capacity_millicores,
               n.memory_capacity_bytes, n.gpu_capacity
        FROM inventory.node_history n
        WHERE n.valid_to >= closed_after AND n.valid_from < end_ts AND n.valid_from < now_ts
    ), spans AS (
        -- The versions a collection wrote share valid_from (and, once closed, valid_to):
        -- collapse them first, then turn each span into its days.
        SELECT r.cluster_id, r.valid_from, r.valid_to, count(*) AS n, sum(r.cpu) AS cpu,
               sum(r.memory) AS memory, sum(r.gpu) AS gpu
        FROM rows_in_window r
        GROUP BY r.cluster_id, r.valid_from, r.valid_to
    ), days AS (
        SELECT s.*, greatest((s.valid_from AT TIME ZONE 'UTC')::date, d0) AS first_day,
               CASE WHEN s.valid_to IS NULL OR s.valid_to > now_ts THEN d1
                    ELSE least((s.valid_to AT TIME ZONE 'UTC')::date - 1, d1) END AS last_day
        FROM spans s
    )
    SELECT (x.first_day + i)::date, x.cluster_id, sum(x.n)::bigint, sum(x.cpu), sum(x.memory),
           sum(x.gpu)
    FROM days x
    CROSS JOIN LATERAL generate_series(0, x.last_day - x.first_day) AS i
    GROUP BY 1, 2;
END
$$;

-- changes(): a version's neighbour is the version of the same key that ends (or starts) exactly
-- when it starts (ends): the write path closes and opens versions at the same instant. Both sides
-- lie at or after `since`, so each kind joins two index range scans (hash joins) instead of
-- probing per row; plpgsql plans the query with the actual `since`.
CREATE OR REPLACE FUNCTION inventory.changes(since timestamptz)
RETURNS TABLE (cluster_id text, at timestamptz, kind text, subject text, detail jsonb)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH first_collection AS MATERIALIZED (
        SELECT c.cluster_id, c.context_names, c.server_url,
               coalesce((SELECT min(v.valid_from) FROM inventory.cluster_version_history v
                         WHERE v.cluster_id = c.cluster_id), c.first_seen_at) AS first_at
        FROM inventory.cluster c
    ),
    cluster_added AS (
        SELECT f.cluster_id, f.first_at AS at, 'cluster-added'::text AS kind,
               coalesce(f.context_names[1], f.server_url, f.cluster_id) AS subject,
               jsonb_build_object(
                   'context_names', to_jsonb(f.context_names),
                   'server_url', f.server_url,
                   'git_version', (SELECT v.git_version FROM inventory.cluster_version_history v
                                   WHERE v.cluster_id = f.cluster_id AND v.valid_from = f.first_at
                                   LIMIT 1),
                   'nodes', (SELECT count(*) FROM inventory.node_history n
                             WHERE n.cluster_id = f.cluster_id AND n.valid_from <= f.first_at
                               AND (n.valid_to IS NULL OR n.valid_to > f.first_at)),
                   'api_resources', (SELECT count(*) FROM inventory.api_resource_history a
                                     WHERE a.cluster_id = f.cluster_id
                                       AND a.valid_from <= f.first_at
                                       AND (a.valid_to IS NULL OR a.valid_to > f.first_at))
               ) AS detail
        FROM first_collection f
        WHERE f.first_at >= since
    ),
    version_changed AS (
        SELECT v.cluster_id, v.valid_from AS at, 'version'::text AS kind,
               v.git_version AS subject,
               '{}'::jsonb
               || CASE WHEN p.git_version IS DISTINCT FROM v.git_version
                  THEN jsonb_build_object('git_version', jsonb_build_object(
                       'old', p.git_version, 'new', v.git_version)) ELSE '{}' END
               || CASE WHEN p.minor_version IS DISTINCT FROM v.minor_version
                  THEN jsonb_build_object('minor_version', jsonb_build_object(
                       'old', p.minor_version, 'new', v.minor_version)) ELSE '{}' END
               || CASE WHEN p.platform IS DISTINCT FROM v.platform
                  THEN jsonb_build_object('platform', jsonb_build_object(
                       'old', p.platform, 'new', v.platform)) ELSE '{}' END
               || CASE WHEN p.git_commit IS DISTINCT FROM v.git_commit
                  THEN jsonb_build_object('git_commit', jsonb_build_object(
                       'old', p.git_commit, 'new', v.git_commit)) ELSE '{}' END
               || CASE WHEN p.build_date IS DISTINCT FROM v.build_date
                  THEN jsonb_build_object('build_date', jsonb_build_object(
                       'old', p.build_date, 'new', v.build_date)) ELSE '{}' END
               || CASE WHEN p.go_version IS DISTINCT FROM v.go_version
                  THEN jsonb_build_object('go_version', jsonb_build_object(
                       'old', p.go_version, 'new', v.go_version)) ELSE '{}' END
               AS detail
        FROM inventory.cluster_version_history v
        JOIN LATERAL (
            SELECT pv.* FROM inventory.cluster_version_history pv
            WHERE pv.cluster_id = v.cluster_id AND pv.valid_from < v.valid_from
            ORDER BY pv.valid_from DESC LIMIT 1
        ) p ON true
        WHERE v.valid_from >= since
    ),
    node_added AS (
        SELECT n.cluster_id, n.valid_from AS at, 'node-added'::text AS kind, n.name AS subject,
               jsonb_build_object('node_uid', n.node_uid, 'kubelet_version', n.kubelet_version,
                                  'roles', to_jsonb(n.roles), 'instance_type', n.instance_type,
                                  'cpu_capacity_millicores', n.cpu_capacity_millicores,
                                  'memory_capacity_bytes', n.memory_capacity_bytes) AS detail
        FROM inventory.node_history n
        JOIN first_collection f ON f.cluster_id = n.cluster_id
        WHERE n.valid_from >= since
          AND n.valid_from > f.first_at                     -- not part of the first collection
          AND NOT EXISTS (                                  -- first version, or back after a gap
              SELECT 1 FROM inventory.node_history pn
              WHERE pn.cluster_id = n.cluster_id AND pn.node_uid = n.node_uid
                AND pn.valid_to = n.valid_from AND pn.valid_to >= since)
    ),
    node_changed AS (
        SELECT n.cluster_id, n.valid_from AS at, 'node-changed'::text AS kind, n.name AS subject,
               d.detail
        FROM inventory.node_history n
        JOIN inventory.node_history p
          ON p.cluster_id = n.cluster_id AND p.node_uid = n.node_uid
         AND p.valid_to = n.valid_from AND p.valid_to >= since
        CROSS JOIN LATERAL (SELECT
'{}'::jsonb
        || CASE WHEN p.name IS DISTINCT FROM n.name
           THEN jsonb_build_object('name', jsonb_build_object('old', to_jsonb(p.name), 'new', to_jsonb(n.name))) ELSE '{}'::jsonb END
        || CASE WHEN p.created_at IS DISTINCT FROM n.created_at
           THEN jsonb_build_object('created_at', jsonb_build_object('old', to_jsonb(p.created_at), 'new', to_jsonb(n.created_at))) ELSE '{}'::jsonb END
        || CASE WHEN p.roles IS DISTINCT FROM n.roles
           THEN jsonb_build_object('roles', jsonb_build_object('old', to_jsonb(p.roles), 'new', to_jsonb(n.roles))) ELSE '{}'::jsonb END
        || CASE WHEN p.ready IS DISTINCT FROM n.ready
           THEN jsonb_build_object('ready', jsonb_build_object('old', to_jsonb(p.ready), 'new', to_jsonb(n.ready))) ELSE '{}'::jsonb END
        || CASE WHEN p.unschedulable IS DISTINCT FROM n.unschedulable
           THEN jsonb_build_object('unschedulable', jsonb_build_object('old', to_jsonb(p.unschedulable), 'new', to_jsonb(n.unschedulable))) ELSE '{}'::jsonb END
        || CASE WHEN p.kubelet_version IS DISTINCT FROM n.kubelet_version
           THEN jsonb_build_object('kubelet_version', jsonb_build_object('old', to_jsonb(p.kubelet_version), 'new', to_jsonb(n.kubelet_version))) ELSE '{}'::jsonb END
        || CASE WHEN p.container_runtime_version IS DISTINCT FROM n.container_runtime_version
           THEN jsonb_build_object('container_runtime_version', jsonb_build_object('old', to_jsonb(p.container_runtime_version), 'new', to_jsonb(n.container_runtime_version))) ELSE '{}'::jsonb END
        || CASE WHEN p.os_image IS DISTINCT FROM n.os_image
           THEN jsonb_build_object('os_image', jsonb_build_object('old', to_jsonb(p.os_image), 'new', to_jsonb(n.os_image))) ELSE '{}'::jsonb END
        || CASE WHEN p.kernel_version IS DISTINCT FROM n.kernel_version
           THEN jsonb_build_object('kernel_version', jsonb_build_object('old', to_jsonb(p.kernel_version), 'new', to_jsonb(n.kernel_version))) ELSE '{}'::jsonb END
        || CASE WHEN p.architecture IS DISTINCT FROM n.architecture
           THEN jsonb_build_object('architecture', jsonb_build_object('old', to_jsonb(p.architecture), 'new', to_jsonb(n.architecture))) ELSE '{}'::jsonb END
        || CASE WHEN p.operating_system IS DISTINCT FROM n.operating_system
           THEN jsonb_build_object('operating_system', jsonb_build_object('old', to_jsonb(p.operating_system), 'new', to_jsonb(n.operating_system))) ELSE '{}'::jsonb END
        || CASE WHEN p.internal_ip IS DISTINCT FROM n.internal_ip
           THEN jsonb_build_object('internal_ip', jsonb_build_object('old', to_jsonb(p.internal_ip), 'new', to_jsonb(n.internal_ip))) ELSE '{}'::jsonb END
        || CASE WHEN p.external_ip IS DISTINCT FROM n.external_ip
           THEN jsonb_build_object('external_ip', jsonb_build_object('old', to_jsonb(p.external_ip), 'new', to_jsonb(n.external_ip))) ELSE '{}'::jsonb END
        || CASE WHEN p.provider_id IS DISTINCT FROM n.provider_id
           THEN jsonb_build_object('provider_id', jsonb_build_object('old', to_jsonb(p.provider_id), 'new', to_jsonb(n.provider_id))) ELSE '{}'::jsonb END
        || CASE WHEN p.cloud_provider IS DISTINCT FROM n.cloud_provider
           THEN jsonb_build_object('cloud_provider', jsonb_build_object('old', to_jsonb(p.cloud_provider), 'new', to_jsonb(n.cloud_provider))) ELSE '{}'::jsonb END
        || CASE WHEN p.region IS DISTINCT FROM n.region
           THEN jsonb_build_object('region', jsonb_build_object('old', to_jsonb(p.region), 'new', to_jsonb(n.region))) ELSE '{}'::jsonb END
        || CASE WHEN p.zone IS DISTINCT FROM n.zone
           THEN jsonb_build_object('zone', jsonb_build_object('old', to_jsonb(p.zone), 'new', to_jsonb(n.zone))) ELSE '{}'::jsonb END
        || CASE WHEN p.instance_type IS DISTINCT FROM n.instance_type
           THEN jsonb_build_object('instance_type', jsonb_build_object('old', to_jsonb(p.instance_type), 'new', to_jsonb(n.instance_type))) ELSE '{}'::jsonb END
        || CASE WHEN p.cpu_capacity_millicores IS DISTINCT FROM n.cpu_capacity_millicores
           THEN jsonb_build_object('cpu_capacity_millicores', jsonb_build_object('old', to_jsonb(p.cpu_capacity_millicores), 'new', to_jsonb(n.cpu_capacity_millicores))) ELSE '{}'::jsonb END
        || CASE WHEN p.memory_capacity_bytes IS DISTINCT FROM n.memory_capacity_bytes
           THEN jsonb_build_object('memory_capacity_bytes', jsonb_build_object('old', to_jsonb(p.memory_capacity_bytes), 'new', to_jsonb(n.memory_capacity_bytes))) ELSE '{}'::jsonb END
        || CASE WHEN p.pods_capacity IS DISTINCT FROM n.pods_capacity
           THEN jsonb_build_object('pods_capacity', jsonb_build_object('old', to_jsonb(p.pods_capacity), 'new', to_jsonb(n.pods_capacity))) ELSE '{}'::jsonb END
        || CASE WHEN p.ephemeral_storage_capacity_bytes IS DISTINCT FROM n.ephemeral_storage_capacity_bytes
           THEN jsonb_build_object('ephemeral_storage_capacity_bytes', jsonb_build_object('old', to_jsonb(p.ephemeral_storage_capacity_bytes), 'new', to_jsonb(n.ephemeral_storage_capacity_bytes))) ELSE '{}'::jsonb END
        || CASE WHEN p.gpu_capacity IS DISTINCT FROM n.gpu_capacity
           THEN jsonb_build_object('gpu_capacity', jsonb_build_object('old', to_jsonb(p.gpu_capacity), 'new', to_jsonb(n.gpu_capacity))) ELSE '{}'::jsonb END
        || CASE WHEN p.cpu_allocatable_millicores IS DISTINCT FROM n.cpu_allocatable_millicores
           THEN jsonb_build_object('cpu_allocatable_millicores', jsonb_build_object('old', to_jsonb(p.cpu_allocatable_millicores), 'new', to_jsonb(n.cpu_allocatable_millicores))) ELSE '{}'::jsonb END
        || CASE WHEN p.memory_allocatable_bytes IS DISTINCT FROM n.memory_allocatable_bytes
           THEN jsonb_build_object('memory_allocatable_bytes', jsonb_build_object('old', to_jsonb(p.memory_allocatable_bytes), 'new', to_jsonb(n.memory_allocatable_bytes))) ELSE '{}'::jsonb END
        || CASE WHEN p.pods_allocatable IS DISTINCT FROM n.pods_allocatable
           THEN jsonb_build_object('pods_allocatable', jsonb_build_object('old', to_jsonb(p.pods_allocatable), 'new', to_jsonb(n.pods_allocatable))) ELSE '{}'::jsonb END
        || CASE WHEN p.capacity IS DISTINCT FROM n.capacity
           THEN jsonb_build_object('capacity', jsonb_build_object('old', to_jsonb(p.capacity), 'new', to_jsonb(n.capacity))) ELSE '{}'::jsonb END
        || CASE WHEN p.allocatable IS DISTINCT FROM n.allocatable
           THEN jsonb_build_object('allocatable', jsonb_build_object('old', to_jsonb(p.allocatable), 'new', to_jsonb(n.allocatable))) ELSE '{}'::jsonb END
        || CASE WHEN p.labels IS DISTINCT FROM n.labels
           THEN jsonb_build_object('labels', jsonb_build_object('old', to_jsonb(p.labels), 'new', to_jsonb(n.labels))) ELSE '{}'::jsonb END
        || CASE WHEN p.taints IS DISTINCT FROM n.taints
           THEN jsonb_build_object('taints', jsonb_build_object('old', to_jsonb(p.taints), 'new', to_jsonb(n.taints))) ELSE '{}'::jsonb END
        || CASE WHEN p.conditions IS DISTINCT FROM n.conditions
           THEN jsonb_build_object('conditions', jsonb_build_object('old', to_jsonb(p.conditions), 'new', to_jsonb(n.conditions))) ELSE '{}'::jsonb END
            AS detail) d
        WHERE n.valid_from >= since
          AND d.detail <> '{}'::jsonb
    ),
    node_removed AS (
        SELECT n.cluster_id, n.valid_to AS at, 'node-removed'::text AS kind, n.name AS subject,
               jsonb_build_object('node_uid', n.node_uid, 'kubelet_version', n.kubelet_version,
                                  'roles', to_jsonb(n.roles)) AS detail
        FROM inventory.node_history n
        WHERE n.valid_to >= since
          AND NOT EXISTS (
              SELECT 1 FROM inventory.node_history s
              WHERE s.cluster_id = n.cluster_id AND s.node_uid = n.node_uid
                AND s.valid_from = n.valid_to AND s.valid_from >= since)
    ),
    api_added AS (
        SELECT a.cluster_id, a.valid_from AS at, 'api-added'::text AS kind,
               inventory.api_resource_name(a.api_group, a.api_version, a.resource) AS subject,
               jsonb_build_object('api_group', a.api_group, 'api_version', a.api_version,
                                  'resource', a.resource, 'kind', a.kind,
                                  'preferred', a.preferred) AS detail
        FROM inventory.api_resource_history a
        JOIN first_collection f ON f.cluster_id = a.cluster_id
        WHERE a.valid_from >= since
          AND a.valid_from > f.first_at
          AND NOT EXISTS (
              SELECT 1 FROM inventory.api_resource_history p
              WHERE p.cluster_id = a.cluster_id AND p.api_group = a.api_group
                AND p.api_version = a.api_version AND p.resource = a.resource
                AND p.valid_to = a.valid_from AND p.valid_to >= since)
    ),
    api_removed AS (
        SELECT a.cluster_id, a.valid_to AS at, 'api-removed'::text AS kind,
               inventory.api_resource_name(a.api_group, a.api_version, a.resource) AS subject,
               jsonb_build_object('api_group', a.api_group, 'api_version', a.api_version,
                                  'resource', a.resource, 'kind', a.kind,
                                  'preferred', a.preferred) AS detail
        FROM inventory.api_resource_history a
        WHERE a.valid_to >= since
          AND NOT EXISTS (
              SELECT 1 FROM inventory.api_resource_history s
              WHERE s.cluster_id = a.cluster_id AND s.api_group = a.api_group
                AND s.api_version = a.api_version AND s.resource = a.resource
                AND s.valid_from = a.valid_to AND s.valid_from >= since)
    )
    SELECT x.cluster_id, x.at, x.kind, x.subject, x.detail FROM (
        SELECT * FROM cluster_added
        UNION ALL SELECT * FROM version_changed
        UNION ALL SELECT * FROM node_added
        UNION ALL SELECT * FROM node_changed
        UNION ALL SELECT * FROM node_removed
        UNION ALL SELECT * FROM api_added
        UNION ALL SELECT * FROM api_removed
    ) x
    WHERE x.at <= inventory.analytics_now()
    ORDER BY x.at, x.cluster_id,
             array_position(ARRAY['cluster-added', 'version', 'node-added', 'node-changed',
                                  'node-removed', 'api-added', 'api-removed'], x.kind),
             x.subject;
END
$$;

ALTER FUNCTION inventory.fleet_versions_daily(date, date) SET jit = off;
ALTER FUNCTION inventory.capacity_daily(date, date) SET jit = off;
ALTER FUNCTION inventory.changes(timestamptz) SET jit = off;
ALTER FUNCTION inventory.api_resource_diff(text, text, timestamptz) SET jit = off;

-- Index-only scans for the daily series (the heap rows are wide: labels, conditions...).
CREATE INDEX node_history_window_idx ON inventory.node_history (valid_to)
    INCLUDE (cluster_id, valid_from, cpu_capacity_millicores, memory_capacity_bytes,
             gpu_capacity);
CREATE INDEX cluster_version_history_window_idx ON inventory.cluster_version_history (valid_to)
    INCLUDE (cluster_id, valid_from, minor_version);
