-- 0018: what a first store costs the server per node version (issue #4: a 20,000-node cluster's
-- first store at >= 25,000 rows/s; benchmarks/README.md, "Store"). Same tables, columns, views
-- and results; fewer and narrower index entries per inserted row, and no compression attempt.
--
-- Measured with perf on the backend during that store (PostgreSQL 15, before this migration):
-- jsonb input ~30%, index insertion ~26%, TOAST compression ~12%, the statement triggers and
-- their transition tables ~10%, heap insert and WAL the rest.
--
-- 1. No compression attempt. A node version is ~2 KB, above the default TOAST threshold
--    (~2 KB), so heap_multi_insert tried pglz on the jsonb columns of most rows; it saved ~13%
--    of the bytes for ~12% of the server's CPU. toast_tuple_target = 8160 (the maximum) leaves
--    rows under a page inline and uncompressed; a wider row (a node with hundreds of labels) is
--    still compressed and moved out of line as before.
ALTER TABLE inventory.node_history SET (toast_tuple_target = 8160);

-- 2. node_history_valid_to_keys_idx (0014) indexed every version, current ones (valid_to NULL)
--    included, though every reader asks for a valid_to in a window (changes(), the daily
--    series' today branch), which implies NOT NULL. As a partial index, a version enters it only
--    when it is closed (the UPDATE writes a new tuple then anyway), not when it is inserted.
CREATE INDEX node_history_closed_keys_idx ON inventory.node_history (valid_to)
    INCLUDE (cluster_id, node_uid, valid_from, cpu_capacity_millicores, memory_capacity_bytes,
             gpu_capacity)
    WHERE valid_to IS NOT NULL;
DROP INDEX inventory.node_history_valid_to_keys_idx;
ALTER INDEX inventory.node_history_closed_keys_idx RENAME TO node_history_valid_to_keys_idx;

-- 3. Two partial indexes on the current versions, one for the write path's diff (0001:
--    (cluster_id, node_uid) INCLUDE (content_hash), unique) and one for node_skew_current
--    (0014: (cluster_id) INCLUDE (name, kubelet_version, node_uid)), become one: the unique
--    index also carries name and kubelet_version, so both still read current nodes index-only,
--    and an inserted version enters one index instead of two.
CREATE UNIQUE INDEX node_history_current_wide_idx
    ON inventory.node_history (cluster_id, node_uid) INCLUDE (content_hash, name, kubelet_version)
    WHERE valid_to IS NULL;
DROP INDEX inventory.node_history_current_skew_idx;
DROP INDEX inventory.node_history_current_idx;
ALTER INDEX inventory.node_history_current_wide_idx RENAME TO node_history_current_idx;
