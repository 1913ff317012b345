-- Each day from_day..to_day (not after today) and each cluster with nodes then: node count and
-- capacity sums at the end of the day (today: now), from the per-day summary
-- inventory.node_daily_delta (sql/schema/history/node_daily_delta.sql) for the days before
-- today, and from node_history's valid_from and valid_to indexes for today up to now. This
-- holds for a pretend now too (SET kubeinv.now): events after now never reach a day before
-- now's date. A sum over no GPU is 0 rather than NULL; callers coalesce it to 0 either way.
-- SECURITY DEFINER: node_daily_delta is bookkeeping, read here as its owner.
CREATE OR REPLACE FUNCTION inventory.node_totals_daily(from_day date, to_day date)
RETURNS TABLE (day date, cluster_id text, nodes bigint, cpu_capacity_millicores numeric,
               memory_capacity_bytes numeric, gpu_capacity numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := inventory.analytics_now();
    today date := inventory.analytics_today();
    d0 date := from_day;
    d1 date := least(to_day, inventory.analytics_today());
    today_start timestamptz := (inventory.analytics_today()::timestamp AT TIME ZONE 'UTC');
BEGIN
    IF d1 < d0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH events AS (
        -- whole days before today, up to the window's end
        SELECT x.cluster_id, x.day, x.nodes::numeric AS nodes, x.cpu_capacity_millicores AS cpu,
               x.memory_capacity_bytes AS mem, x.gpu_capacity AS gpu
        FROM inventory.node_daily_delta x
        WHERE x.day < today AND x.day <= d1
        UNION ALL
        -- today up to now: versions started in [today 00:00, now), ended in [today 00:00, now]
        SELECT t.cluster_id, today, sum(t.s), coalesce(sum(t.s * t.cpu), 0),
               coalesce(sum(t.s * t.mem), 0), coalesce(sum(t.s * t.gpu), 0)
        FROM (
            SELECT n.cluster_id, 1 AS s, n.cpu_capacity_millicores AS cpu,
                   n.memory_capacity_bytes AS mem, n.gpu_capacity AS gpu
            FROM inventory.node_history n
            WHERE n.valid_from >= today_start AND n.valid_from < now_ts
            UNION ALL
            SELECT n.cluster_id, -1, n.cpu_capacity_millicores, n.memory_capacity_bytes,
                   n.gpu_capacity
            FROM inventory.node_history n
            WHERE n.valid_to >= today_start AND n.valid_to <= now_ts
        ) t
        WHERE d1 = today
        GROUP BY t.cluster_id
    ), states AS (
        -- the state from each event day until the next one (exclusive)
        SELECT e.cluster_id, e.day,
               lead(e.day) OVER w AS next_day,
               sum(e.nodes) OVER w AS nodes, sum(e.cpu) OVER w AS cpu,
               sum(e.mem) OVER w AS mem, sum(e.gpu) OVER w AS gpu
        FROM events e
        WINDOW w AS (PARTITION BY e.cluster_id ORDER BY e.day)
    ), spans AS (
        SELECT st.*, greatest(st.day, d0) AS first_day,
               least(coalesce(st.next_day - 1, d1), d1) AS last_day
        FROM states st
        WHERE st.nodes <> 0 OR st.cpu <> 0 OR st.mem <> 0 OR st.gpu <> 0
    )
    SELECT sp.first_day + i, sp.cluster_id, sp.nodes::bigint, sp.cpu, sp.mem, sp.gpu
    FROM spans sp
    CROSS JOIN LATERAL generate_series(0, sp.last_day - sp.first_day) AS i
    WHERE sp.last_day >= sp.first_day;
END
$$;
COMMENT ON FUNCTION inventory.node_totals_daily(date, date) IS
    'Each day and cluster: node count and capacity sums at the end of that day (UTC).';
