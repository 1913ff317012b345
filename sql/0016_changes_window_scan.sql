-- 0016: changes(since) reads the window's node versions whole, by two index range scans and one
-- hash full join, instead of pairing their keys and then reading each version by primary key.
-- Same name, columns, rows and order as 0014 (compared row by row on the benchmark history).
--
-- 0014 paired the keys from covering indexes (~0.1 s) and then probed the primary key twice per
-- pair (136,000 random probes at 200 clusters x 50 nodes x 7 days: ~0.9 s). History is written
-- in time order, so the versions that start or end in a recent window sit in the table's last
-- pages: scanning the valid_from and valid_to ranges with their whole rows and joining them in
-- memory takes ~0.3 s. node-added, node-changed and node-removed now come from that one join.
-- SQL alone (`SELECT count(*) FROM inventory.changes(now() - interval '7 days')` in psql):
-- 2.8-3.6 s before, 2.4-3.1 s after, on the loaded 2-core benchmark machine; most of what is
-- left is building and printing the node-changed details (whole old and new labels and
-- conditions: 66 MB of JSON text for 77,600 rows). See benchmarks/README.md, "Report queries".

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
    node_changes AS (
        -- The node versions starting (n) or ending (p) in [since, now], read whole by two index
        -- range scans (history is written in time order: these are the table's last pages) and
        -- matched on their keys in one hash full join. Both sides: a change of the node; n
        -- alone: an addition (first version, or back after a gap); p alone: a removal.
        SELECT coalesce(n.cluster_id, p.cluster_id) AS cluster_id,
               coalesce(n.valid_from, p.valid_to) AS at,
               CASE WHEN p.cluster_id IS NULL THEN 'node-added'
                    WHEN n.cluster_id IS NULL THEN 'node-removed'
                    ELSE 'node-changed' END AS kind,
               coalesce(n.name, p.name) AS subject,
               CASE WHEN p.cluster_id IS NULL THEN
               jsonb_build_object('node_uid', n.node_uid, 'kubelet_version', n.kubelet_version,
                                  'roles', to_jsonb(n.roles), 'instance_type', n.instance_type,
                                  'cpu_capacity_millicores', n.cpu_capacity_millicores,
                                  'memory_capacity_bytes', n.memory_capacity_bytes)
                    WHEN n.cluster_id IS NULL THEN
               jsonb_build_object('node_uid', p.node_uid, 'kubelet_version', p.kubelet_version,
                                  'roles', to_jsonb(p.roles))
                    ELSE
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
               THEN jsonb_build_object('conditions', jsonb_build_object('old', p.conditions, 'new', n.conditions)) ELSE '{}'::jsonb END
               END AS detail
        FROM (SELECT h.* FROM inventory.node_history h
              WHERE h.valid_from >= since AND h.valid_from <= now_ts) n
        FULL JOIN (SELECT h.* FROM inventory.node_history h
                   WHERE h.valid_to >= since AND h.valid_to <= now_ts) p
          ON p.cluster_id = n.cluster_id AND p.node_uid = n.node_uid AND p.valid_to = n.valid_from
        LEFT JOIN first_collection f ON f.cluster_id = n.cluster_id
        WHERE CASE WHEN p.cluster_id IS NULL
                   THEN n.valid_from > f.first_at              -- not part of the first collection
                   WHEN n.cluster_id IS NULL THEN true
                   -- some field differs (the detail is not empty), compared without building it
                   ELSE (p.name, p.created_at, p.roles, p.ready, p.unschedulable, p.kubelet_version,
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
              END
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
        UNION ALL SELECT * FROM node_changes
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

COMMENT ON FUNCTION inventory.changes(timestamptz) IS
    'What changed at or after `since`: cluster-added (one row for a cluster''s first '
    'collection), version, node-added, node-removed, node-changed (detail: each changed field '
    'as {"old", "new"}), api-added, api-removed.';

-- The reader role's grants (0020 defines the function: on a new database it runs after this
-- file, and the migration runner grants after each migration once it exists).
DO $grant$
BEGIN
    IF to_regprocedure('inventory.grant_inventory_reader()') IS NOT NULL THEN
        PERFORM inventory.grant_inventory_reader();
    END IF;
END
$grant$;
