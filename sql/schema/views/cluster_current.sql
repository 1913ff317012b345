-- One row per cluster that is not retired: its table row, its current version and its current
-- nodes' totals. Retiring closes the history rows the current views read, so they drop a
-- retired cluster anyway; the views also say so, for a cluster whose rows another writer left
-- open.

CREATE OR REPLACE VIEW inventory.cluster_current AS
SELECT c.cluster_id, c.context_names, c.server_url,
       v.git_version, v.minor_version, v.platform,
       c.provider,
       coalesce(n.node_count, 0)        AS node_count,
       coalesce(n.ready_node_count, 0)  AS ready_node_count,
       n.cpu_capacity_millicores, n.memory_capacity_bytes,
       n.cpu_allocatable_millicores, n.memory_allocatable_bytes,
       c.last_collected_at, c.last_status, c.last_error,
       c.cluster_id_source, c.first_seen_at, c.discovery_mode,
       v.major, n.gpu_capacity,
       (c.last_status = 'failed') AS stale
FROM inventory.cluster c
LEFT JOIN inventory.cluster_version_history v
       ON v.cluster_id = c.cluster_id AND v.valid_to IS NULL
LEFT JOIN LATERAL (
    SELECT count(*)                                   AS node_count,
           count(*) FILTER (WHERE nh.ready)           AS ready_node_count,
           sum(nh.cpu_capacity_millicores)::bigint    AS cpu_capacity_millicores,
           sum(nh.memory_capacity_bytes)::bigint      AS memory_capacity_bytes,
           sum(nh.cpu_allocatable_millicores)::bigint AS cpu_allocatable_millicores,
           sum(nh.memory_allocatable_bytes)::bigint   AS memory_allocatable_bytes,
           sum(nh.gpu_capacity)::bigint               AS gpu_capacity
    FROM inventory.node_history nh
    WHERE nh.cluster_id = c.cluster_id AND nh.valid_to IS NULL
) n ON true
WHERE NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = c.cluster_id AND r.returned_at IS NULL);
COMMENT ON VIEW inventory.cluster_current IS
    'One row per cluster that is not retired: last known version, node totals, last '
    'collection status. Every cluster, retired ones too: inventory.cluster_registry.';
