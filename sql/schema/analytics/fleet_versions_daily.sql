CREATE OR REPLACE FUNCTION inventory.fleet_versions_daily(from_day date, to_day date)
RETURNS TABLE (day date, minor_version int, clusters bigint, nodes bigint)
LANGUAGE sql STABLE
SET jit = off
AS $$
    SELECT c.day, c.minor_version, count(*), coalesce(sum(n.nodes), 0)::bigint
    FROM inventory.cluster_minor_daily(from_day, to_day) c
    LEFT JOIN inventory.node_totals_daily(from_day, to_day) n
           ON n.day = c.day AND n.cluster_id = c.cluster_id
    GROUP BY c.day, c.minor_version
    ORDER BY c.day, c.minor_version NULLS LAST
$$;
COMMENT ON FUNCTION inventory.fleet_versions_daily(date, date) IS
    'Clusters and nodes per server minor at the end of each UTC day from_day..to_day '
    '(today: now; later days are not returned). Nodes count under their cluster''s minor.';
