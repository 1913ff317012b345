-- The statement triggers on inventory.node_history: one function, for INSERT, UPDATE, DELETE and
-- TRUNCATE alike, keeps the two tables derived from it in step, in the writing transaction,
-- with work proportional to the rows the statement changed (the write path stays set-based):
--
-- * node_daily_delta (node_daily_delta.sql), for the daily series: per cluster and UTC day, the
--   sum of the versions' events. A row the statement added counts +1 (and +capacity) on the day
--   of its valid_from and -1 on the day of its valid_to, a row it removed the opposite; an
--   UPDATE removes its old rows and adds its new ones.
-- * node_change (node_change.sql), the node-changed rows of changes(): the pairs of consecutive
--   versions of a node whose fields differ (node_diff), recomputed from node_history at the
--   (node, instant) keys the statement's rows touch, their valid_from and valid_to. A version
--   that an UPDATE leaves with its key and fields (the store's close: only valid_to moves) keeps
--   its pair with its predecessor, so it touches only its old and new valid_to. A statement that
--   touches no pair (a first store, new nodes, a close before the successors are inserted)
--   stops at a few index probes (node_change_touches).
--
-- A transition table is visible only inside the trigger function itself, not in the functions
-- it calls, and exists only for its own event: the function reads new_rows and old_rows with
-- dynamic SQL chosen by TG_OP, in one statement that updates node_daily_delta and returns
-- node_change's keys. It carries only the columns it needs, not whole node rows (labels,
-- conditions...): when the daily series' trigger carried whole rows through its union, closing
-- 10,000 node versions took 0.9 s instead of 0.5-0.65 s.
--
-- Hash joins whatever the statistics say: a table just written (a new database, a first big
-- store) has none, and statistics gathered while the versions were current expect no version
-- to end at t. Both make a join on valid_to = t alone look cheap, and it is quadratic (one
-- instant shared by all the versions a store closed): a nested loop of index probes, or a merge
-- join on t with the node keys as a filter (PostgreSQL 16, after an ANALYZE: a store that
-- changed all of 5,000 nodes took 27 s instead of 1.1 s, 2,000 nodes 2.5 s instead of 0.5 s).
-- No JIT: compiling costs more than a store's statement (measured: 1.4 s for one close).
--
-- The triggers are written CREATE OR REPLACE, as the functions are: adopting a pre-release
-- database runs them again (collector/store/migrating.py).

CREATE OR REPLACE FUNCTION inventory.node_history_derive() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_nestloop = off
SET enable_mergejoin = off
AS $$
DECLARE
    cols constant text := 'r.cluster_id, r.node_uid, r.valid_from, r.valid_to, '
                          'r.cpu_capacity_millicores, r.memory_capacity_bytes, r.gpu_capacity';
    changed text;
    cids text[];
    uids text[];
    ats timestamptz[];
    ts timestamptz[];
    cs text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM inventory.node_daily_delta;
        DELETE FROM inventory.node_change;
        RETURN NULL;
    END IF;
    -- The rows the statement added (sign 1) and removed (-1); `kept`: an updated version whose
    -- key and fields are unchanged (empty node_diff), one join of the old and new rows.
    changed := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS sign, false AS kept, ' || cols || ' FROM new_rows r'
        WHEN 'DELETE' THEN 'SELECT -1 AS sign, false AS kept, ' || cols || ' FROM old_rows r'
        ELSE 'WITH kept AS (
                  SELECT o.cluster_id, o.node_uid, o.valid_from
                  FROM old_rows o JOIN new_rows n USING (cluster_id, node_uid, valid_from)
                  WHERE inventory.node_diff(o::inventory.node_history,
                                            n::inventory.node_history) = ''{}'')
              SELECT 1 AS sign, k.node_uid IS NOT NULL AS kept, ' || cols || '
              FROM new_rows r LEFT JOIN kept k USING (cluster_id, node_uid, valid_from)
              UNION ALL
              SELECT -1, k.node_uid IS NOT NULL, ' || cols || '
              FROM old_rows r LEFT JOIN kept k USING (cluster_id, node_uid, valid_from)'
    END;
    -- node_daily_delta: each row its sign on valid_from's day, the opposite on valid_to's day.
    -- Closing a version (valid_to NULL -> t) leaves one event: -1 on t's day; sums of zero are
    -- not written. node_change: the keys, each row's instants but a kept version's valid_from.
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
        ), delta AS (
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
                    memory_capacity_bytes = d.memory_capacity_bytes
                                            + excluded.memory_capacity_bytes,
                    gpu_capacity = d.gpu_capacity + excluded.gpu_capacity
        )
        SELECT array_agg(k.cluster_id), array_agg(k.node_uid), array_agg(k.at)
        FROM (SELECT c.cluster_id, c.node_uid, c.valid_from AS at FROM changed c WHERE NOT c.kept
              UNION ALL
              SELECT c.cluster_id, c.node_uid, c.valid_to FROM changed c
              WHERE c.valid_to IS NOT NULL) k
    $q$, changed) INTO cids, uids, ats;

    -- node_change at the keys (cids[i], uids[i], ats[i]): their instants and clusters first.
    ts := ARRAY(SELECT DISTINCT t FROM unnest(ats) t);
    cs := ARRAY(SELECT DISTINCT c FROM unnest(cids) c);
    IF NOT inventory.node_change_touches(ts, cs) THEN
        RETURN NULL;
    END IF;
    -- Dynamic SQL: planned for these very arrays each time (index range scans of the instants).
    EXECUTE $q$
        DELETE FROM inventory.node_change c
        USING (SELECT DISTINCT k.cluster_id, k.node_uid, k.at
               FROM unnest($1, $2, $3) AS k(cluster_id, node_uid, at)) k
        WHERE c.at = ANY ($4)
          AND c.at = k.at AND c.cluster_id = k.cluster_id AND c.node_uid = k.node_uid
    $q$ USING cids, uids, ats, ts;
    -- Each pair's diff once (OFFSET 0 keeps the subquery, so that the filter does not compute
    -- it again); a pair whose diff is empty is no change.
    EXECUTE $q$
        INSERT INTO inventory.node_change (cluster_id, node_uid, at, name, detail,
                                           created_at_changed, old_created_at, new_created_at)
        SELECT d.cluster_id, d.node_uid, d.at, d.name, d.diff - 'created_at',
               d.diff ? 'created_at', d.old_created_at, d.new_created_at
        FROM (SELECT n.cluster_id, n.node_uid, n.valid_from AS at, n.name,
                     p.created_at AS old_created_at, n.created_at AS new_created_at,
                     inventory.node_diff(p, n) AS diff
              FROM (SELECT DISTINCT k.cluster_id, k.node_uid, k.at
                    FROM unnest($1, $2, $3) AS k(cluster_id, node_uid, at)) k
              JOIN inventory.node_history n
                ON n.cluster_id = k.cluster_id AND n.node_uid = k.node_uid AND n.valid_from = k.at
               AND n.valid_from = ANY ($4) AND n.cluster_id = ANY ($5)
              JOIN inventory.node_history p
                ON p.cluster_id = k.cluster_id AND p.node_uid = k.node_uid AND p.valid_to = k.at
               AND p.valid_to = ANY ($4) AND p.cluster_id = ANY ($5)
              OFFSET 0) d
        WHERE d.diff <> '{}'
    $q$ USING cids, uids, ats, ts, cs;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION inventory.node_history_derive() IS
    'Trigger: keeps inventory.node_daily_delta and inventory.node_change in step with '
    'node_history (statement level).';

CREATE OR REPLACE TRIGGER derive_insert AFTER INSERT ON inventory.node_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_history_derive();
CREATE OR REPLACE TRIGGER derive_update AFTER UPDATE ON inventory.node_history
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_history_derive();
CREATE OR REPLACE TRIGGER derive_delete AFTER DELETE ON inventory.node_history
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_history_derive();
CREATE OR REPLACE TRIGGER derive_truncate AFTER TRUNCATE ON inventory.node_history
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_history_derive();
