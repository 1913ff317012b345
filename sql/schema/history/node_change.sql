-- inventory.node_change: the node-changed rows of changes(), kept at write time by statement
-- triggers on node_history (node_history_triggers.sql) instead of joining the window's whole
-- node versions and building their details on every call (at 200 clusters x 50 nodes x 7 days:
-- ~1.0 s for the join and 1.2-1.5 s for the 77,600 details; benchmarks/README.md, "Report
-- queries").
--
-- A node change happens at an instant t between two versions of one node (cluster_id, node_uid):
-- p, with p.valid_to = t, and n, with n.valid_from = t, when some field differs. node_change
-- holds exactly those pairs, their `detail` built by node_diff (the one place where the node
-- diff is written), one row per pair. Its contents are a function of node_history alone: a
-- statement that writes history recomputes the pairs at the (node, t) keys its rows touch (their
-- valid_from and valid_to), whatever the order of writes (the store closes the current versions,
-- then inserts their successors, at the same instant and in the same transaction:
-- collector/store/writing.py, sql/queries/store.sql close_nodes).
--
-- created_at is a timestamptz: its JSON text depends on the reader's TimeZone, so it is kept as
-- old/new timestamps and added to the detail when read (changes()).
--
-- Write cost: an INSERT whose rows have no predecessor (a cluster's first store, new nodes)
-- costs one pass over the inserted rows and two or three index probes; a close (UPDATE
-- valid_to) a hash join of its old and new rows and the same probes; only the pairs at the
-- touched keys build their details, once, instead of on every read.

CREATE TABLE inventory.node_change (
    cluster_id          text        NOT NULL,
    node_uid            text        NOT NULL,
    at                  timestamptz NOT NULL,   -- p.valid_to = n.valid_from
    name                text        NOT NULL,   -- n.name
    detail              jsonb       NOT NULL,   -- each changed field but created_at: {old, new}
    created_at_changed  boolean     NOT NULL,
    old_created_at      timestamptz,
    new_created_at      timestamptz
);
-- Not unique: history has no constraint against two versions of a node ending at the same
-- instant, and changes() gives a row per pair.
CREATE INDEX node_change_at_idx ON inventory.node_change (at, cluster_id, node_uid);
COMMENT ON TABLE inventory.node_change IS
    'Bookkeeping for changes(): each pair of consecutive versions of a node (p.valid_to = '
    'n.valid_from = at) whose fields differ, with the node-changed detail (created_at apart). '
    'Kept by triggers on node_history; read by inventory.changes.';

-- The node diff: each field of n that differs from p's, as {"field": {"old", "new"}}; '{}' when
-- they are the same node version but for the key, validity and the collector's bookkeeping
-- (first_seen_at, problems, content_hash). The fields are collector.records.NodeRecord's
-- content, in order (tests/store/test_record_declaration.py checks it); each is compared as its
-- SQL value and shown through to_jsonb (the jsonb columns as they are). node_change keeps the
-- detail without created_at (above). Used by the triggers on node_history for both of their
-- comparisons: whether a pair is a change, and whether an UPDATE left a version's fields alone.
-- One expression over its arguments, without SET clauses: the planner inlines it into the
-- calling query, where the comparisons read the columns directly (a function returning `record`
-- is never inlined, and would be called once per row). STABLE: created_at's JSON text follows
-- TimeZone.
CREATE OR REPLACE FUNCTION inventory.node_diff(p inventory.node_history, n inventory.node_history)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT '{}'::jsonb
    || CASE WHEN p.name IS DISTINCT FROM n.name
            THEN jsonb_build_object('name', jsonb_build_object('old', to_jsonb(p.name), 'new', to_jsonb(n.name))) ELSE '{}' END
    || CASE WHEN p.created_at IS DISTINCT FROM n.created_at
            THEN jsonb_build_object('created_at', jsonb_build_object('old', to_jsonb(p.created_at), 'new', to_jsonb(n.created_at))) ELSE '{}' END
    || CASE WHEN p.roles IS DISTINCT FROM n.roles
            THEN jsonb_build_object('roles', jsonb_build_object('old', to_jsonb(p.roles), 'new', to_jsonb(n.roles))) ELSE '{}' END
    || CASE WHEN p.ready IS DISTINCT FROM n.ready
            THEN jsonb_build_object('ready', jsonb_build_object('old', to_jsonb(p.ready), 'new', to_jsonb(n.ready))) ELSE '{}' END
    || CASE WHEN p.unschedulable IS DISTINCT FROM n.unschedulable
            THEN jsonb_build_object('unschedulable', jsonb_build_object('old', to_jsonb(p.unschedulable), 'new', to_jsonb(n.unschedulable))) ELSE '{}' END
    || CASE WHEN p.kubelet_version IS DISTINCT FROM n.kubelet_version
            THEN jsonb_build_object('kubelet_version', jsonb_build_object('old', to_jsonb(p.kubelet_version), 'new', to_jsonb(n.kubelet_version))) ELSE '{}' END
    || CASE WHEN p.container_runtime_version IS DISTINCT FROM n.container_runtime_version
            THEN jsonb_build_object('container_runtime_version', jsonb_build_object('old', to_jsonb(p.container_runtime_version), 'new', to_jsonb(n.container_runtime_version))) ELSE '{}' END
    || CASE WHEN p.os_image IS DISTINCT FROM n.os_image
            THEN jsonb_build_object('os_image', jsonb_build_object('old', to_jsonb(p.os_image), 'new', to_jsonb(n.os_image))) ELSE '{}' END
    || CASE WHEN p.kernel_version IS DISTINCT FROM n.kernel_version
            THEN jsonb_build_object('kernel_version', jsonb_build_object('old', to_jsonb(p.kernel_version), 'new', to_jsonb(n.kernel_version))) ELSE '{}' END
    || CASE WHEN p.architecture IS DISTINCT FROM n.architecture
            THEN jsonb_build_object('architecture', jsonb_build_object('old', to_jsonb(p.architecture), 'new', to_jsonb(n.architecture))) ELSE '{}' END
    || CASE WHEN p.operating_system IS DISTINCT FROM n.operating_system
            THEN jsonb_build_object('operating_system', jsonb_build_object('old', to_jsonb(p.operating_system), 'new', to_jsonb(n.operating_system))) ELSE '{}' END
    || CASE WHEN p.internal_ip IS DISTINCT FROM n.internal_ip
            THEN jsonb_build_object('internal_ip', jsonb_build_object('old', to_jsonb(p.internal_ip), 'new', to_jsonb(n.internal_ip))) ELSE '{}' END
    || CASE WHEN p.external_ip IS DISTINCT FROM n.external_ip
            THEN jsonb_build_object('external_ip', jsonb_build_object('old', to_jsonb(p.external_ip), 'new', to_jsonb(n.external_ip))) ELSE '{}' END
    || CASE WHEN p.provider_id IS DISTINCT FROM n.provider_id
            THEN jsonb_build_object('provider_id', jsonb_build_object('old', to_jsonb(p.provider_id), 'new', to_jsonb(n.provider_id))) ELSE '{}' END
    || CASE WHEN p.cloud_provider IS DISTINCT FROM n.cloud_provider
            THEN jsonb_build_object('cloud_provider', jsonb_build_object('old', to_jsonb(p.cloud_provider), 'new', to_jsonb(n.cloud_provider))) ELSE '{}' END
    || CASE WHEN p.region IS DISTINCT FROM n.region
            THEN jsonb_build_object('region', jsonb_build_object('old', to_jsonb(p.region), 'new', to_jsonb(n.region))) ELSE '{}' END
    || CASE WHEN p.zone IS DISTINCT FROM n.zone
            THEN jsonb_build_object('zone', jsonb_build_object('old', to_jsonb(p.zone), 'new', to_jsonb(n.zone))) ELSE '{}' END
    || CASE WHEN p.instance_type IS DISTINCT FROM n.instance_type
            THEN jsonb_build_object('instance_type', jsonb_build_object('old', to_jsonb(p.instance_type), 'new', to_jsonb(n.instance_type))) ELSE '{}' END
    || CASE WHEN p.cpu_capacity_millicores IS DISTINCT FROM n.cpu_capacity_millicores
            THEN jsonb_build_object('cpu_capacity_millicores', jsonb_build_object('old', to_jsonb(p.cpu_capacity_millicores), 'new', to_jsonb(n.cpu_capacity_millicores))) ELSE '{}' END
    || CASE WHEN p.memory_capacity_bytes IS DISTINCT FROM n.memory_capacity_bytes
            THEN jsonb_build_object('memory_capacity_bytes', jsonb_build_object('old', to_jsonb(p.memory_capacity_bytes), 'new', to_jsonb(n.memory_capacity_bytes))) ELSE '{}' END
    || CASE WHEN p.pods_capacity IS DISTINCT FROM n.pods_capacity
            THEN jsonb_build_object('pods_capacity', jsonb_build_object('old', to_jsonb(p.pods_capacity), 'new', to_jsonb(n.pods_capacity))) ELSE '{}' END
    || CASE WHEN p.ephemeral_storage_capacity_bytes IS DISTINCT FROM n.ephemeral_storage_capacity_bytes
            THEN jsonb_build_object('ephemeral_storage_capacity_bytes', jsonb_build_object('old', to_jsonb(p.ephemeral_storage_capacity_bytes), 'new', to_jsonb(n.ephemeral_storage_capacity_bytes))) ELSE '{}' END
    || CASE WHEN p.gpu_capacity IS DISTINCT FROM n.gpu_capacity
            THEN jsonb_build_object('gpu_capacity', jsonb_build_object('old', to_jsonb(p.gpu_capacity), 'new', to_jsonb(n.gpu_capacity))) ELSE '{}' END
    || CASE WHEN p.cpu_allocatable_millicores IS DISTINCT FROM n.cpu_allocatable_millicores
            THEN jsonb_build_object('cpu_allocatable_millicores', jsonb_build_object('old', to_jsonb(p.cpu_allocatable_millicores), 'new', to_jsonb(n.cpu_allocatable_millicores))) ELSE '{}' END
    || CASE WHEN p.memory_allocatable_bytes IS DISTINCT FROM n.memory_allocatable_bytes
            THEN jsonb_build_object('memory_allocatable_bytes', jsonb_build_object('old', to_jsonb(p.memory_allocatable_bytes), 'new', to_jsonb(n.memory_allocatable_bytes))) ELSE '{}' END
    || CASE WHEN p.pods_allocatable IS DISTINCT FROM n.pods_allocatable
            THEN jsonb_build_object('pods_allocatable', jsonb_build_object('old', to_jsonb(p.pods_allocatable), 'new', to_jsonb(n.pods_allocatable))) ELSE '{}' END
    || CASE WHEN p.capacity IS DISTINCT FROM n.capacity
            THEN jsonb_build_object('capacity', jsonb_build_object('old', p.capacity, 'new', n.capacity)) ELSE '{}' END
    || CASE WHEN p.allocatable IS DISTINCT FROM n.allocatable
            THEN jsonb_build_object('allocatable', jsonb_build_object('old', p.allocatable, 'new', n.allocatable)) ELSE '{}' END
    || CASE WHEN p.labels IS DISTINCT FROM n.labels
            THEN jsonb_build_object('labels', jsonb_build_object('old', p.labels, 'new', n.labels)) ELSE '{}' END
    || CASE WHEN p.taints IS DISTINCT FROM n.taints
            THEN jsonb_build_object('taints', jsonb_build_object('old', p.taints, 'new', n.taints)) ELSE '{}' END
    || CASE WHEN p.conditions IS DISTINCT FROM n.conditions
            THEN jsonb_build_object('conditions', jsonb_build_object('old', p.conditions, 'new', n.conditions)) ELSE '{}' END
$$;
COMMENT ON FUNCTION inventory.node_diff(inventory.node_history, inventory.node_history) IS
    'The fields of node version n that differ from p''s: {"field": {"old", "new"}} ({} when none).';

-- Whether a statement that wrote versions of clusters cs starting or ending at instants ts can
-- touch any pair: node_change has a row at one of them, or versions both end and start there.
-- Index probes, one instant at a time (a store writes at one instant; a generic plan for
-- `= ANY (array)` reads the whole table): false for a first store, new nodes, and a close
-- before its successors are inserted.
CREATE OR REPLACE FUNCTION inventory.node_change_touches(ts timestamptz[], cs text[])
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    t timestamptz;
BEGIN
    FOREACH t IN ARRAY coalesce(ts, '{}') LOOP
        IF EXISTS (SELECT 1 FROM inventory.node_change c
                   WHERE c.at = t AND c.cluster_id = ANY (cs))
           OR (EXISTS (SELECT 1 FROM inventory.node_history h
                       WHERE h.valid_to = t AND h.cluster_id = ANY (cs))
               AND EXISTS (SELECT 1 FROM inventory.node_history h
                           WHERE h.valid_from = t AND h.cluster_id = ANY (cs))) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
