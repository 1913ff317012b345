CREATE OR REPLACE FUNCTION inventory.capacity_daily(from_day date, to_day date)
RETURNS TABLE (day date, cluster_id text, nodes bigint, cpu_capacity_millicores bigint,
               memory_capacity_bytes bigint, gpu_capacity bigint)
LANGUAGE sql STABLE
SET jit = off
AS $$
    SELECT c.day, c.cluster_id, coalesce(n.nodes, 0)::bigint,
           coalesce(n.cpu_capacity_millicores, 0)::bigint,
           coalesce(n.memory_capacity_bytes, 0)::bigint,
           coalesce(n.gpu_capacity, 0)::bigint
    FROM inventory.cluster_minor_daily(from_day, to_day) c
    LEFT JOIN inventory.node_totals_daily(from_day, to_day) n
           ON n.day = c.day AND n.cluster_id = c.cluster_id
    ORDER BY c.day, c.cluster_id
$$;
COMMENT ON FUNCTION inventory.capacity_daily(date, date) IS
    'Each UTC day from_day..to_day and each cluster known then: nodes and capacity at the end '
    'of the day (today: now). Capacity in base units: millicores, bytes, GPUs.';
