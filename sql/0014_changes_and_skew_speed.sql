-- 0014: speed of changes() and node_skew_current at 200 clusters x 50 nodes x 90 days
-- (benchmarks/report_bench.py; benchmarks/README.md). Same names, columns and results.
--
-- changes(since):
-- * The node versions that start, or end, in [since, now] are paired by their keys alone
--   (cluster, node, and end = start), from two covering indexes, without reading the table:
--   a version with no predecessor ending as it starts is node-added, one with no successor
--   starting as it ends is node-removed, and a pair is a candidate for node-changed.
-- * Only then are whole rows read, by primary key: the pairs' two versions (for the field by
--   field detail) and the added and removed versions, never rows outside the window.
-- * Each kind applies `at <= now` itself; the result is sorted once, in memory (work_mem is
--   raised for this function only: 77,600 changes with their details are ~100 MB).
--
-- node_skew_current parsed each kubelet version a dozen times per row (the inlined helpers
-- were repeated in every expression and sort key that used them): it now parses once per row,
-- and reads the current nodes from a covering partial index instead of 10,000 heap pages.

-- The keys of the versions that start or end in a window, without the heap. These replace
-- 0012's node_history_window_idx (valid_to INCLUDE ...), which 0013's today branch also uses.
CREATE INDEX node_history_valid_from_keys_idx ON inventory.node_history (valid_from)
    INCLUDE (cluster_id, node_uid, valid_to, cpu_capacity_millicores, memory_capacity_bytes,
             gpu_capacity);
CREATE INDEX node_history_valid_to_keys_idx ON inventory.node_history (valid_to)
    INCLUDE (cluster_id, node_uid, valid_from, cpu_capacity_millicores, memory_capacity_bytes,
             gpu_capacity);
DROP INDEX inventory.node_history_window_idx;

-- The current nodes' skew inputs, index-only.
CREATE INDEX node_history_current_skew_idx ON inventory.node_history (cluster_id)
    INCLUDE (name, kubelet_version, node_uid) WHERE valid_to IS NULL;

CREATE OR REPLACE VIEW inventory.node_skew_current AS
SELECT n.cluster_id,
       n.name                                     AS node_name,
       n.kubelet_version,
       k.kubelet_minor,
       v.minor_version                            AS server_minor,
       s.skew,
       CASE WHEN s.skew IS NOT NULL
            THEN s.skew BETWEEN 0 AND inventory.allowed_kubelet_skew(v.minor_version)
       END                                        AS within_policy,
       inventory.allowed_kubelet_skew(v.minor_version) AS allowed_skew,
       v.git_version                              AS server_git_version,
       n.node_uid
FROM inventory.node_history n
LEFT JOIN inventory.cluster_version_history v
       ON v.cluster_id = n.cluster_id AND v.valid_to IS NULL
-- OFFSET 0 keeps each subquery from being flattened: the regexp runs once per row, not once
-- per expression (and sort key) that uses its result.
CROSS JOIN LATERAL (
    SELECT m[1]::int AS kubelet_major, m[2]::int AS kubelet_minor
    FROM (SELECT regexp_match(n.kubelet_version, '^\s*v?(\d+)\.(\d+)') AS m) r
    OFFSET 0
) k
CROSS JOIN LATERAL (
    SELECT CASE WHEN k.kubelet_major = coalesce(inventory.version_major(v.git_version), 1)
                THEN v.minor_version - k.kubelet_minor END AS skew
    OFFSET 0
) s
WHERE n.valid_to IS NULL;
COMMENT ON VIEW inventory.node_skew_current IS
    'Each current node: kubelet minor vs its cluster''s server minor, and whether the upstream '
    'version-skew policy allows it (0 <= skew <= 3 from 1.28 on, 2 before; newer kubelet: no).';

CREATE OR REPLACE FUNCTION inventory.changes(since timestamptz)
RETURNS TABLE (cluster_id text, at timestamptz, kind text, subject text, detail jsonb)
LANGUAGE plpgsql STABLE
SET jit = off
SET work_mem = '256MB'
AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := inventory.analytics_now();
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
    node_events AS MATERIALIZED (
        -- The node versions starting (s) or ending (e) in the window, matched on their keys
        -- (index-only): both sides are a change of the node, s alone an addition (first version,
        -- or back after a gap), e alone a removal.
        SELECT coalesce(s.cluster_id, e.cluster_id) AS cluster_id,
               coalesce(s.node_uid, e.node_uid) AS node_uid,
               s.valid_from AS cur_from, e.valid_from AS prev_from, e.valid_to AS prev_to
        FROM (SELECT h.cluster_id, h.node_uid, h.valid_from FROM inventory.node_history h
              WHERE h.valid_from >= since AND h.valid_from <= now_ts) s
        FULL JOIN (SELECT h.cluster_id, h.node_uid, h.valid_from, h.valid_to
                   FROM inventory.node_history h
                   WHERE h.valid_to >= since AND h.valid_to <= now_ts) e
          ON e.cluster_id = s.cluster_id AND e.node_uid = s.node_uid AND e.valid_to = s.valid_from
    ),
    node_added AS (
        SELECT n.cluster_id, n.valid_from AS at, 'node-added'::text AS kind, n.name AS subject,
               jsonb_build_object('node_uid', n.node_uid, 'kubelet_version', n.kubelet_version,
                                  'roles', to_jsonb(n.roles), 'instance_type', n.instance_type,
                                  'cpu_capacity_millicores', n.cpu_capacity_millicores,
                                  'memory_capacity_bytes', n.memory_capacity_bytes) AS detail
        FROM node_events x
        JOIN first_collection f ON f.cluster_id = x.cluster_id
        -- by primary key, one probe each (LIMIT 1 keeps the planner from joining otherwise)
        CROSS JOIN LATERAL (
            SELECT r.* FROM inventory.node_history r
            WHERE r.cluster_id = x.cluster_id AND r.node_uid = x.node_uid
              AND r.valid_from = x.cur_from
            LIMIT 1) n
        WHERE x.prev_from IS NULL
          AND x.cur_from > f.first_at                       -- not part of the first collection
    ),
    node_changed AS (
        SELECT n.cluster_id, n.valid_from AS at, 'node-changed'::text AS kind, n.name AS subject,
               -- the scalar fields are compared as one row first: most changes leave them
               -- all equal, and then none of their 26 pieces is built or concatenated
               CASE WHEN (p.name, p.created_at, p.roles, p.ready, p.unschedulable,
                          p.kubelet_version, p.container_runtime_version, p.os_image,
                          p.kernel_version, p.architecture, p.operating_system, p.internal_ip,
                          p.external_ip, p.provider_id, p.cloud_provider, p.region, p.zone,
                          p.instance_type, p.cpu_capacity_millicores, p.memory_capacity_bytes,
                          p.pods_capacity, p.ephemeral_storage_capacity_bytes, p.gpu_capacity,
                          p.cpu_allocatable_millicores, p.memory_allocatable_bytes,
                          p.pods_allocatable)
                         IS NOT DISTINCT FROM
                         (n.name, n.created_at, n.roles, n.ready, n.unschedulable,
                          n.kubelet_version, n.container_runtime_version, n.os_image,
                          n.kernel_version, n.architecture, n.operating_system, n.internal_ip,
                          n.external_ip, n.provider_id, n.cloud_provider, n.region, n.zone,
                          n.instance_type, n.cpu_capacity_millicores, n.memory_capacity_bytes,
                          n.pods_capacity, n.ephemeral_storage_capacity_bytes, n.gpu_capacity,
                          n.cpu_allocatable_millicores, n.memory_allocatable_bytes,
                          n.pods_allocatable)
                    THEN '{}'::jsonb
                    ELSE '{}'::jsonb
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
               END
               || CASE WHEN p.capacity IS DISTINCT FROM n.capacity
           THEN jsonb_build_object('capacity', jsonb_build_object('old', p.capacity, 'new', n.capacity)) ELSE '{}'::jsonb END
               || CASE WHEN p.allocatable IS DISTINCT FROM n.allocatable
           THEN jsonb_build_object('allocatable', jsonb_build_object('old', p.allocatable, 'new', n.allocatable)) ELSE '{}'::jsonb END
               || CASE WHEN p.labels IS DISTINCT FROM n.labels
           THEN jsonb_build_object('labels', jsonb_build_object('old', p.labels, 'new', n.labels)) ELSE '{}'::jsonb END
               || CASE WHEN p.taints IS DISTINCT FROM n.taints
           THEN jsonb_build_object('taints', jsonb_build_object('old', p.taints, 'new', n.taints)) ELSE '{}'::jsonb END
               || CASE WHEN p.conditions IS DISTINCT FROM n.conditions
           THEN jsonb_build_object('conditions', jsonb_build_object('old', p.conditions, 'new', n.conditions)) ELSE '{}'::jsonb END AS detail
        FROM node_events x
        CROSS JOIN LATERAL (
            SELECT r.* FROM inventory.node_history r
            WHERE r.cluster_id = x.cluster_id AND r.node_uid = x.node_uid
              AND r.valid_from = x.cur_from
            LIMIT 1) n
        CROSS JOIN LATERAL (
            SELECT r.* FROM inventory.node_history r
            WHERE r.cluster_id = x.cluster_id AND r.node_uid = x.node_uid
              AND r.valid_from = x.prev_from
            LIMIT 1) p
        WHERE x.cur_from IS NOT NULL AND x.prev_from IS NOT NULL
          -- some field differs (the detail is not empty), compared without building it
          AND (p.name, p.created_at, p.roles, p.ready, p.unschedulable, p.kubelet_version,
               p.container_runtime_version, p.os_image, p.kernel_version, p.architecture,
               p.operating_system, p.internal_ip, p.external_ip, p.provider_id, p.cloud_provider,
               p.region, p.zone, p.instance_type, p.cpu_capacity_millicores,
               p.memory_capacity_bytes, p.pods_capacity, p.ephemeral_storage_capacity_bytes,
               p.gpu_capacity, p.cpu_allocatable_millicores, p.memory_allocatable_bytes,
               p.pods_allocatable, p.capacity, p.allocatable, p.labels, p.taints, p.conditions)
              IS DISTINCT FROM
              (n.name, n.created_at, n.roles, n.ready, n.unschedulable, n.kubelet_version,
               n.container_runtime_version, n.os_image, n.kernel_version, n.architecture,
               n.operating_system, n.internal_ip, n.external_ip, n.provider_id, n.cloud_provider,
               n.region, n.zone, n.instance_type, n.cpu_capacity_millicores,
               n.memory_capacity_bytes, n.pods_capacity, n.ephemeral_storage_capacity_bytes,
               n.gpu_capacity, n.cpu_allocatable_millicores, n.memory_allocatable_bytes,
               n.pods_allocatable, n.capacity, n.allocatable, n.labels, n.taints, n.conditions)
    ),
    node_removed AS (
        SELECT n.cluster_id, n.valid_to AS at, 'node-removed'::text AS kind, n.name AS subject,
               jsonb_build_object('node_uid', n.node_uid, 'kubelet_version', n.kubelet_version,
                                  'roles', to_jsonb(n.roles)) AS detail
        FROM node_events x
        CROSS JOIN LATERAL (
            SELECT r.* FROM inventory.node_history r
            WHERE r.cluster_id = x.cluster_id AND r.node_uid = x.node_uid
              AND r.valid_from = x.prev_from
            LIMIT 1) n
        WHERE x.cur_from IS NULL
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

