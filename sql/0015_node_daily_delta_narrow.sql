-- 0015: the node_daily_delta triggers (0013) carry only the columns they sum through their
-- union, not whole node rows (labels, conditions...): closing 10,000 node versions cost 0.9 s
-- with the trigger against 0.5-0.65 s without it; see benchmarks/README.md. Same sums.

CREATE OR REPLACE FUNCTION inventory.node_daily_delta_apply() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed text;
    cols constant text := 'r.cluster_id, r.valid_from, r.valid_to, r.cpu_capacity_millicores, '
                          'r.memory_capacity_bytes, r.gpu_capacity';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM inventory.node_daily_delta;
        RETURN NULL;
    END IF;
    -- The rows the statement added (+1) and removed (-1); an UPDATE is both. A transition table
    -- exists only for its own event, hence one source text per event.
    changed := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS sign, ' || cols || ' FROM new_rows r'
        WHEN 'DELETE' THEN 'SELECT -1 AS sign, ' || cols || ' FROM old_rows r'
        ELSE 'SELECT 1 AS sign, ' || cols || ' FROM new_rows r'
             || ' UNION ALL SELECT -1, ' || cols || ' FROM old_rows r'
    END;
    -- Each row: its sign on valid_from's day, the opposite on valid_to's day. Closing a version
    -- (valid_to NULL -> t) leaves one event: -1 on t's day; sums of zero are not written.
    EXECUTE format($q$
        WITH changed AS (%s),
        events AS (
            SELECT c.cluster_id, (c.valid_from AT TIME ZONE 'UTC')::date AS day, c.sign AS s,
                   c.cpu_capacity_millicores AS cpu, c.memory_capacity_bytes AS mem,
                   c.gpu_capacity AS gpu
            FROM changed c
            UNION ALL
            SELECT c.cluster_id, (c.valid_to AT TIME ZONE 'UTC')::date, -c.sign,
                   c.cpu_capacity_millicores, c.memory_capacity_bytes, c.gpu_capacity
            FROM changed c WHERE c.valid_to IS NOT NULL
        ), summed AS (
            SELECT e.cluster_id, e.day, sum(e.s)::bigint AS nodes,
                   coalesce(sum(e.s * e.cpu), 0) AS cpu, coalesce(sum(e.s * e.mem), 0) AS mem,
                   coalesce(sum(e.s * e.gpu), 0) AS gpu
            FROM events e
            GROUP BY e.cluster_id, e.day
        )
        INSERT INTO inventory.node_daily_delta AS d (cluster_id, day, nodes,
            cpu_capacity_millicores, memory_capacity_bytes, gpu_capacity)
        SELECT s.cluster_id, s.day, s.nodes, s.cpu, s.mem, s.gpu
        FROM summed s
        WHERE s.nodes <> 0 OR s.cpu <> 0 OR s.mem <> 0 OR s.gpu <> 0
        ORDER BY s.cluster_id, s.day
        ON CONFLICT (cluster_id, day) DO UPDATE
            SET nodes = d.nodes + excluded.nodes,
                cpu_capacity_millicores = d.cpu_capacity_millicores
                                          + excluded.cpu_capacity_millicores,
                memory_capacity_bytes = d.memory_capacity_bytes + excluded.memory_capacity_bytes,
                gpu_capacity = d.gpu_capacity + excluded.gpu_capacity
    $q$, changed);
    RETURN NULL;
END
$$;
