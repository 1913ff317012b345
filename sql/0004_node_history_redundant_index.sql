-- 0004: drop node_history_valid_from_idx (0001), an index on (valid_from) alone.
--
-- Every query it could serve is served by node_history_valid_from_keys_idx (0014), which has
-- the same key, valid_from, and covers more columns. Each index on node_history costs every
-- stored node version its maintenance: measured ~0.05 s of server CPU per 20,000 rows in a
-- first store (benchmarks/README.md, "Store"). On a new database this runs before 0014 creates
-- its replacement; both paths end with the same indexes.

DROP INDEX IF EXISTS inventory.node_history_valid_from_idx;
