-- Current nodes (of clusters that are not retired), and nodes as they were at any instant. Both
-- show a node version through inventory.node_shown, so they have the same columns by
-- construction: those of node_history but its bookkeeping (problems, content_hash) and its
-- validity (valid_from, valid_to).

-- A node version as the readers see it. Called in FROM (CROSS JOIN LATERAL), it is inlined and
-- flattened by the planner: the views read node_history's columns directly, with its indexes.
CREATE OR REPLACE FUNCTION inventory.node_shown(h inventory.node_history)
RETURNS TABLE (cluster_id text, node_uid text, name text, created_at timestamptz, roles text[],
               ready boolean, unschedulable boolean, kubelet_version text,
               container_runtime_version text, os_image text, kernel_version text,
               architecture text, operating_system text, internal_ip inet, external_ip inet,
               provider_id text, cloud_provider text, region text, zone text,
               instance_type text, cpu_capacity_millicores bigint,
               memory_capacity_bytes bigint, pods_capacity bigint,
               ephemeral_storage_capacity_bytes bigint, gpu_capacity bigint,
               cpu_allocatable_millicores bigint, memory_allocatable_bytes bigint,
               pods_allocatable bigint, capacity jsonb, allocatable jsonb, labels jsonb,
               taints jsonb, conditions jsonb, first_seen_at timestamptz)
LANGUAGE sql IMMUTABLE
AS $$
    SELECT h.cluster_id, h.node_uid, h.name, h.created_at,
           h.roles, h.ready, h.unschedulable,
           h.kubelet_version, h.container_runtime_version, h.os_image, h.kernel_version,
           h.architecture, h.operating_system,
           h.internal_ip, h.external_ip, h.provider_id, h.cloud_provider, h.region, h.zone,
           h.instance_type,
           h.cpu_capacity_millicores, h.memory_capacity_bytes, h.pods_capacity,
           h.ephemeral_storage_capacity_bytes, h.gpu_capacity,
           h.cpu_allocatable_millicores, h.memory_allocatable_bytes, h.pods_allocatable,
           h.capacity, h.allocatable, h.labels, h.taints, h.conditions, h.first_seen_at
$$;
COMMENT ON FUNCTION inventory.node_shown(inventory.node_history) IS
    'A node version with the columns of node_current and node_as_of (inlined where it is used).';

CREATE OR REPLACE VIEW inventory.node_current AS
SELECT n.*
FROM inventory.node_history h
CROSS JOIN LATERAL inventory.node_shown(h) n
WHERE h.valid_to IS NULL
  AND NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = h.cluster_id AND r.returned_at IS NULL);
COMMENT ON VIEW inventory.node_current IS
    'Current nodes of every cluster that is not retired (last known state).';

CREATE OR REPLACE FUNCTION inventory.node_as_of(ts timestamptz)
RETURNS SETOF inventory.node_current
LANGUAGE sql STABLE
AS $$
    SELECT n.*
    FROM inventory.node_history h
    CROSS JOIN LATERAL inventory.node_shown(h) n
    WHERE h.valid_from <= ts AND (h.valid_to IS NULL OR h.valid_to > ts)
$$;
COMMENT ON FUNCTION inventory.node_as_of(timestamptz) IS
    'Nodes as they were at ts (the columns of node_current).';
