-- Every version of every node (key: cluster_id, node_uid); see cluster_version_history.sql for
-- how history tables work. The collector writes it (collector/store/writing.py): a COPY of the
-- new versions into a temporary table, then one UPDATE that closes the versions they replace
-- (valid_to = now) and one INSERT of the new ones, at the same instant. Its columns are the
-- fields of collector.records.NodeRecord (tests/store/test_record_declaration.py checks it).
--
-- Statement triggers (node_history_triggers.sql) keep two derived tables in step with it, in
-- the writing transaction: node_daily_delta.sql (the daily series) and node_change.sql (the
-- node-changed rows of changes()).

CREATE TABLE inventory.node_history (
    cluster_id                        text NOT NULL,
    node_uid                          text NOT NULL,
    name                              text NOT NULL,
    created_at                        timestamptz,
    roles                             text[] NOT NULL DEFAULT '{}',
    ready                             boolean,
    unschedulable                     boolean NOT NULL DEFAULT false,
    kubelet_version                   text,
    container_runtime_version         text,
    os_image                          text,
    kernel_version                    text,
    architecture                      text,
    operating_system                  text,
    internal_ip                       inet,
    external_ip                       inet,
    provider_id                       text,
    cloud_provider                    text,
    region                            text,
    zone                              text,
    instance_type                     text,
    cpu_capacity_millicores           bigint,
    memory_capacity_bytes             bigint,
    pods_capacity                     bigint,
    ephemeral_storage_capacity_bytes  bigint,
    gpu_capacity                      bigint,
    cpu_allocatable_millicores        bigint,
    memory_allocatable_bytes          bigint,
    pods_allocatable                  bigint,
    capacity                          jsonb NOT NULL DEFAULT '{}',
    allocatable                       jsonb NOT NULL DEFAULT '{}',
    labels                            jsonb NOT NULL DEFAULT '{}',
    taints                            jsonb NOT NULL DEFAULT '[]',
    conditions                        jsonb NOT NULL DEFAULT '[]',
    first_seen_at                     timestamptz NOT NULL,   -- first version of this node_uid
    problems                          text[] NOT NULL DEFAULT '{}',  -- normalizer findings
    content_hash                      text NOT NULL,
    valid_from                        timestamptz NOT NULL,
    valid_to                          timestamptz,
    PRIMARY KEY (cluster_id, node_uid, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
)
-- A node version is ~2 KB, above the default TOAST threshold, so inserting one tried pglz on
-- its jsonb columns: ~13% of the bytes saved for ~12% of the server's CPU in a first store.
-- 8160 (the maximum) keeps rows under a page inline and uncompressed; a wider row (a node with
-- hundreds of labels) is still compressed and moved out of line.
WITH (toast_tuple_target = 8160);
COMMENT ON TABLE inventory.node_history IS
    'Every version of every node (key: cluster_id, node_uid). Current rows: valid_to IS NULL.';

-- Each index costs every stored node version its maintenance (measured ~0.05 s of server CPU
-- per 20,000 rows in a first store: benchmarks/README.md, "Store"), so there are few of them.

-- The current versions: the write path's diff reads (cluster_id, node_uid, content_hash), and
-- node_skew_current reads name and kubelet_version, both index-only.
CREATE UNIQUE INDEX node_history_current_idx
    ON inventory.node_history (cluster_id, node_uid) INCLUDE (content_hash, name, kubelet_version)
    WHERE valid_to IS NULL;
CREATE INDEX node_history_cluster_valid_from_idx
    ON inventory.node_history (cluster_id, valid_from);
CREATE INDEX node_history_valid_to_idx
    ON inventory.node_history (valid_to) WHERE valid_to IS NOT NULL;
-- The keys of the versions that start or end in a window, without the heap: changes() pairs
-- them, and node_totals_daily's today branch sums their capacity. The valid_to one is partial
-- (every reader asks for a valid_to in a window): a version enters it only when it is closed,
-- and the UPDATE that closes it writes a new tuple anyway.
CREATE INDEX node_history_valid_from_keys_idx ON inventory.node_history (valid_from)
    INCLUDE (cluster_id, node_uid, valid_to, cpu_capacity_millicores, memory_capacity_bytes,
             gpu_capacity);
CREATE INDEX node_history_valid_to_keys_idx ON inventory.node_history (valid_to)
    INCLUDE (cluster_id, node_uid, valid_from, cpu_capacity_millicores, memory_capacity_bytes,
             gpu_capacity)
    WHERE valid_to IS NOT NULL;
