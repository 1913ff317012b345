-- Current nodes (of clusters that are not retired), and nodes as they were at any instant
-- (the same columns).

CREATE OR REPLACE VIEW inventory.node_current AS
SELECT cluster_id, node_uid, name, created_at,
       roles, ready, unschedulable,
       kubelet_version, container_runtime_version, os_image, kernel_version,
       architecture, operating_system,
       internal_ip, external_ip, provider_id, cloud_provider, region, zone, instance_type,
       cpu_capacity_millicores, memory_capacity_bytes, pods_capacity,
       ephemeral_storage_capacity_bytes, gpu_capacity,
       cpu_allocatable_millicores, memory_allocatable_bytes, pods_allocatable,
       capacity, allocatable, labels, taints, conditions, first_seen_at
FROM inventory.node_history h
WHERE valid_to IS NULL
  AND NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = h.cluster_id AND r.returned_at IS NULL);
COMMENT ON VIEW inventory.node_current IS
    'Current nodes of every cluster that is not retired (last known state).';

CREATE OR REPLACE FUNCTION inventory.node_as_of(ts timestamptz)
RETURNS SETOF inventory.node_current
LANGUAGE sql STABLE
AS $$
    SELECT cluster_id, node_uid, name, created_at,
           roles, ready, unschedulable,
           kubelet_version, container_runtime_version, os_image, kernel_version,
           architecture, operating_system,
           internal_ip, external_ip, provider_id, cloud_provider, region, zone, instance_type,
           cpu_capacity_millicores, memory_capacity_bytes, pods_capacity,
           ephemeral_storage_capacity_bytes, gpu_capacity,
           cpu_allocatable_millicores, memory_allocatable_bytes, pods_allocatable,
           capacity, allocatable, labels, taints, conditions, first_seen_at
    FROM inventory.node_history
    WHERE valid_from <= ts AND (valid_to IS NULL OR valid_to > ts)
$$;
COMMENT ON FUNCTION inventory.node_as_of(timestamptz) IS
    'Nodes as they were at ts (the columns of node_current).';
