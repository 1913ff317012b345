-- Every version of each cluster's API server (/version).
--
-- History tables hold one row per version of a thing: valid_from is when that content was
-- first stored, valid_to when it stopped being current (NULL while current). A new version is
-- written only when `content_hash` (the hash of the normalized record, computed by the
-- collector) changes, so re-collecting an unchanged fleet writes nothing.
--
-- No history table has a foreign key to inventory.cluster: the per-row referential check was
-- ~40% of the database's CPU when storing a 20,000-node cluster (1.33 s -> 0.82 s, measured
-- with benchmarks/store_bench.py). Integrity holds without it: the store upserts the cluster
-- row first, in the same transaction, and nothing ever deletes a cluster.

CREATE TABLE inventory.cluster_version_history (
    cluster_id      text NOT NULL,
    git_version     text NOT NULL,
    major           text,
    minor           text,                    -- as served, e.g. '28+'
    minor_version   int,                     -- parsed: '28+' -> 28
    git_commit      text,
    git_tree_state  text,
    build_date      timestamptz,
    go_version      text,
    compiler        text,
    platform        text,
    emulation_major text,
    emulation_minor text,
    content_hash    text NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    PRIMARY KEY (cluster_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX cluster_version_history_current_idx
    ON inventory.cluster_version_history (cluster_id) WHERE valid_to IS NULL;
CREATE INDEX cluster_version_history_valid_to_idx
    ON inventory.cluster_version_history (valid_to) WHERE valid_to IS NOT NULL;
-- Index-only scans for cluster_minor_daily (sql/schema/analytics/).
CREATE INDEX cluster_version_history_window_idx ON inventory.cluster_version_history (valid_to)
    INCLUDE (cluster_id, valid_from, minor_version);
