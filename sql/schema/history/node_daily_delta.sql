-- inventory.node_daily_delta: the daily series (fleet_versions_daily, capacity_daily) read a
-- per-day summary of node history events instead of every node version of the window (900,000
-- rows for 200 clusters x 50 nodes x 90 days: over a second however node_history is indexed).
--
-- A node version counts on day d when valid_from < end of d <= valid_to. So the state at the
-- end of day d is the sum of the version's events up to d: +1 (and +capacity) on the UTC day of
-- valid_from, -1 (and -capacity) on the UTC day of valid_to. node_daily_delta keeps those
-- events summed per (cluster, day); statement-level triggers on node_history keep it exact for
-- every INSERT, UPDATE, DELETE and TRUNCATE, in the writing transaction, with work proportional
-- to the rows the statement changed (the write path stays set-based). The triggers carry only
-- the columns they sum through their union, not whole node rows (labels, conditions...):
-- closing 10,000 node versions cost 0.9 s with whole rows, 0.5-0.65 s without the trigger.
--
-- The summary is the collector's bookkeeping; inventory.node_totals_daily reads it (as its
-- owner: SECURITY DEFINER, fixed search_path).

CREATE TABLE inventory.node_daily_delta (
    cluster_id  text    NOT NULL,
    day         date    NOT NULL,
    nodes       bigint  NOT NULL DEFAULT 0,
    cpu_capacity_millicores numeric NOT NULL DEFAULT 0,
    memory_capacity_bytes   numeric NOT NULL DEFAULT 0,
    gpu_capacity            numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (cluster_id, day)
);
COMMENT ON TABLE inventory.node_daily_delta IS
    'Bookkeeping for the daily series: per cluster and UTC day, the sum of node history events '
    '(+1/+capacity on valid_from''s day, -1/-capacity on valid_to''s day). Kept by triggers on '
    'node_history; read through inventory.node_totals_daily.';
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
COMMENT ON FUNCTION inventory.node_daily_delta_apply() IS
    'Trigger: keeps inventory.node_daily_delta in step with node_history (statement level).';

CREATE TRIGGER node_daily_delta_insert AFTER INSERT ON inventory.node_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_daily_delta_apply();
CREATE TRIGGER node_daily_delta_update AFTER UPDATE ON inventory.node_history
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_daily_delta_apply();
CREATE TRIGGER node_daily_delta_delete AFTER DELETE ON inventory.node_history
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_daily_delta_apply();
CREATE TRIGGER node_daily_delta_truncate AFTER TRUNCATE ON inventory.node_history
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_daily_delta_apply();
