-- inventory.node_daily_delta: the daily series (fleet_versions_daily, capacity_daily) read a
-- per-day summary of node history events instead of every node version of the window (900,000
-- rows for 200 clusters x 50 nodes x 90 days: over a second however node_history is indexed).
--
-- A node version counts on day d when valid_from < end of d <= valid_to. So the state at the
-- end of day d is the sum of the version's events up to d: +1 (and +capacity) on the UTC day of
-- valid_from, -1 (and -capacity) on the UTC day of valid_to. node_daily_delta keeps those
-- events summed per (cluster, day); statement-level triggers on node_history
-- (node_history_triggers.sql) keep it exact for every INSERT, UPDATE, DELETE and TRUNCATE, in
-- the writing transaction, with work proportional to the rows the statement changed (the write
-- path stays set-based).
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
