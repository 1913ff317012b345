-- inventory.node_change: the node-changed rows of changes(), kept at write time by statement
-- triggers on node_history instead of joining the window's whole node versions and building
-- their details on every call (at 200 clusters x 50 nodes x 7 days: ~1.0 s for the join and
-- 1.2-1.5 s for the 77,600 details; benchmarks/README.md, "Report queries").
--
-- A node change happens at an instant t between two versions of one node (cluster_id, node_uid):
-- p, with p.valid_to = t, and n, with n.valid_from = t, when some field differs. node_change
-- holds exactly those pairs, their `detail` built field by field (node_change_refresh: the one
-- place where the node diff is written), one row per pair. Its contents are a function of
-- node_history alone: a statement that writes history recomputes the pairs at the (node, t)
-- keys its rows touch (their valid_from and valid_to), whatever the order of writes (the store
-- closes the current versions, then inserts their successors, at the same instant and in the
-- same transaction: collector/store/writing.py, sql/queries/store.sql close_nodes).
--
-- created_at is a timestamptz: its JSON text depends on the reader's TimeZone, so it is kept as
-- old/new timestamps and added to the detail when read (changes()).
--
-- Write cost: an INSERT whose rows have no predecessor (a cluster's first store, new nodes)
-- costs one pass over the inserted rows and two or three index probes; a close (UPDATE
-- valid_to) a hash join of its old and new rows and the same probes; only real changes build
-- their details, once, instead of on every read.

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

-- Recompute the pairs at the keys (cids[i], uids[i], ats[i]) from node_history.
-- Hash joins whatever the statistics say: a table just written (a new database, a first big
-- store) has none, and statistics gathered while the versions were current expect no version
-- to end at t. Both make a join on valid_to = t alone look cheap, and it is quadratic (one
-- instant shared by all the versions a store closed): a nested loop of index probes, or a merge
-- join on t with the node keys as a filter (PostgreSQL 16, after an ANALYZE: a store that
-- changed all of 5,000 nodes took 27 s instead of 1.1 s, 2,000 nodes 2.5 s instead of 0.5 s).
-- No JIT in these functions: compiling costs more than a store's statement (measured: 1.4 s for
-- one close).
CREATE OR REPLACE FUNCTION inventory.node_change_refresh(cids text[], uids text[], ats timestamptz[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_nestloop = off
SET enable_mergejoin = off
AS $$
DECLARE
    ts timestamptz[] := ARRAY(SELECT DISTINCT t FROM unnest(ats) t WHERE t IS NOT NULL);
    cs text[] := ARRAY(SELECT DISTINCT c FROM unnest(cids) c);
BEGIN
    IF NOT inventory.node_change_touches(ts, cs) THEN
        RETURN;
    END IF;
    -- Dynamic SQL: planned for these very arrays each time (index range scans of the instants).
    EXECUTE $q$
        DELETE FROM inventory.node_change c
        USING (SELECT DISTINCT k.cluster_id, k.node_uid, k.at
               FROM unnest($1, $2, $3) AS k(cluster_id, node_uid, at)) k
        WHERE c.at = ANY ($4)
          AND c.at = k.at AND c.cluster_id = k.cluster_id AND c.node_uid = k.node_uid
    $q$ USING cids, uids, ats, ts;
    EXECUTE $q$
    INSERT INTO inventory.node_change (cluster_id, node_uid, at, name, detail,
                                       created_at_changed, old_created_at, new_created_at)
    SELECT n.cluster_id, n.node_uid, n.valid_from, n.name,
               CASE WHEN (p.name, p.created_at, p.roles, p.ready, p.unschedulable,
                          p.kubelet_version, p.container_runtime_version, p.os_image,
                          p.kernel_version, p.architecture, p.operating_system, p.internal_ip,
                          p.external_ip, p.provider_id, p.cloud_provider, p.region, p.zone,
                          p.instance_type, p.cpu_capacity_millicores, p.memory_capacity_bytes,
                          p.pods_capacity, p.ephemeral_storage_capacity_bytes, p.gpu_capacity,
                          p.cpu_allocatable_millicores, p.memory_allocatable_bytes,
                          p.pods_allocatable)
                         IS NOT DISTINCT FROM
                         (n.name, n.created_at, n.roles, n.ready, n.unschedulable,
                          n.kubelet_version, n.container_runtime_version, n.os_image,
                          n.kernel_version, n.architecture, n.operating_system, n.internal_ip,
                          n.external_ip, n.provider_id, n.cloud_provider, n.region, n.zone,
                          n.instance_type, n.cpu_capacity_millicores, n.memory_capacity_bytes,
                          n.pods_capacity, n.ephemeral_storage_capacity_bytes, n.gpu_capacity,
                          n.cpu_allocatable_millicores, n.memory_allocatable_bytes,
                          n.pods_allocatable)
                    THEN '{}'::jsonb
                    ELSE '{}'::jsonb
                    || CASE WHEN p.name IS DISTINCT FROM n.name
           THEN jsonb_build_object('name', jsonb_build_object('old', to_jsonb(p.name), 'new', to_jsonb(n.name))) ELSE '{}'::jsonb END
                    || CASE WHEN p.roles IS DISTINCT FROM n.roles
           THEN jsonb_build_object('roles', jsonb_build_object('old', to_jsonb(p.roles), 'new', to_jsonb(n.roles))) ELSE '{}'::jsonb END
                    || CASE WHEN p.ready IS DISTINCT FROM n.ready
           THEN jsonb_build_object('ready', jsonb_build_object('old', to_jsonb(p.ready), 'new', to_jsonb(n.ready))) ELSE '{}'::jsonb END
                    || CASE WHEN p.unschedulable IS DISTINCT FROM n.unschedulable
           THEN jsonb_build_object('unschedulable', jsonb_build_object('old', to_jsonb(p.unschedulable), 'new', to_jsonb(n.unschedulable))) ELSE '{}'::jsonb END
                    || CASE WHEN p.kubelet_version IS DISTINCT FROM n.kubelet_version
           THEN jsonb_build_object('kubelet_version', jsonb_build_object('old', to_jsonb(p.kubelet_version), 'new', to_jsonb(n.kubelet_version))) ELSE '{}'::jsonb END
                    || CASE WHEN p.container_runtime_version IS DISTINCT FROM n.container_runtime_version
           THEN jsonb_build_object('container_runtime_version', jsonb_build_object('old', to_jsonb(p.container_runtime_version), 'new', to_jsonb(n.container_runtime_version))) ELSE '{}'::jsonb END
                    || CASE WHEN p.os_image IS DISTINCT FROM n.os_image
           THEN jsonb_build_object('os_image', jsonb_build_object('old', to_jsonb(p.os_image), 'new', to_jsonb(n.os_image))) ELSE '{}'::jsonb END
                    || CASE WHEN p.kernel_version IS DISTINCT FROM n.kernel_version
           THEN jsonb_build_object('kernel_version', jsonb_build_object('old', to_jsonb(p.kernel_version), 'new', to_jsonb(n.kernel_version))) ELSE '{}'::jsonb END
                    || CASE WHEN p.architecture IS DISTINCT FROM n.architecture
           THEN jsonb_build_object('architecture', jsonb_build_object('old', to_jsonb(p.architecture), 'new', to_jsonb(n.architecture))) ELSE '{}'::jsonb END
                    || CASE WHEN p.operating_system IS DISTINCT FROM n.operating_system
           THEN jsonb_build_object('operating_system', jsonb_build_object('old', to_jsonb(p.operating_system), 'new', to_jsonb(n.operating_system))) ELSE '{}'::jsonb END
                    || CASE WHEN p.internal_ip IS DISTINCT FROM n.internal_ip
           THEN jsonb_build_object('internal_ip', jsonb_build_object('old', to_jsonb(p.internal_ip), 'new', to_jsonb(n.internal_ip))) ELSE '{}'::jsonb END
                    || CASE WHEN p.external_ip IS DISTINCT FROM n.external_ip
           THEN jsonb_build_object('external_ip', jsonb_build_object('old', to_jsonb(p.external_ip), 'new', to_jsonb(n.external_ip))) ELSE '{}'::jsonb END
                    || CASE WHEN p.provider_id IS DISTINCT FROM n.provider_id
           THEN jsonb_build_object('provider_id', jsonb_build_object('old', to_jsonb(p.provider_id), 'new', to_jsonb(n.provider_id))) ELSE '{}'::jsonb END
                    || CASE WHEN p.cloud_provider IS DISTINCT FROM n.cloud_provider
           THEN jsonb_build_object('cloud_provider', jsonb_build_object('old', to_jsonb(p.cloud_provider), 'new', to_jsonb(n.cloud_provider))) ELSE '{}'::jsonb END
                    || CASE WHEN p.region IS DISTINCT FROM n.region
           THEN jsonb_build_object('region', jsonb_build_object('old', to_jsonb(p.region), 'new', to_jsonb(n.region))) ELSE '{}'::jsonb END
                    || CASE WHEN p.zone IS DISTINCT FROM n.zone
           THEN jsonb_build_object('zone', jsonb_build_object('old', to_jsonb(p.zone), 'new', to_jsonb(n.zone))) ELSE '{}'::jsonb END
                    || CASE WHEN p.instance_type IS DISTINCT FROM n.instance_type
           THEN jsonb_build_object('instance_type', jsonb_build_object('old', to_jsonb(p.instance_type), 'new', to_jsonb(n.instance_type))) ELSE '{}'::jsonb END
                    || CASE WHEN p.cpu_capacity_millicores IS DISTINCT FROM n.cpu_capacity_millicores
           THEN jsonb_build_object('cpu_capacity_millicores', jsonb_build_object('old', to_jsonb(p.cpu_capacity_millicores), 'new', to_jsonb(n.cpu_capacity_millicores))) ELSE '{}'::jsonb END
                    || CASE WHEN p.memory_capacity_bytes IS DISTINCT FROM n.memory_capacity_bytes
           THEN jsonb_build_object('memory_capacity_bytes', jsonb_build_object('old', to_jsonb(p.memory_capacity_bytes), 'new', to_jsonb(n.memory_capacity_bytes))) ELSE '{}'::jsonb END
                    || CASE WHEN p.pods_capacity IS DISTINCT FROM n.pods_capacity
           THEN jsonb_build_object('pods_capacity', jsonb_build_object('old', to_jsonb(p.pods_capacity), 'new', to_jsonb(n.pods_capacity))) ELSE '{}'::jsonb END
                    || CASE WHEN p.ephemeral_storage_capacity_bytes IS DISTINCT FROM n.ephemeral_storage_capacity_bytes
           THEN jsonb_build_object('ephemeral_storage_capacity_bytes', jsonb_build_object('old', to_jsonb(p.ephemeral_storage_capacity_bytes), 'new', to_jsonb(n.ephemeral_storage_capacity_bytes))) ELSE '{}'::jsonb END
                    || CASE WHEN p.gpu_capacity IS DISTINCT FROM n.gpu_capacity
           THEN jsonb_build_object('gpu_capacity', jsonb_build_object('old', to_jsonb(p.gpu_capacity), 'new', to_jsonb(n.gpu_capacity))) ELSE '{}'::jsonb END
                    || CASE WHEN p.cpu_allocatable_millicores IS DISTINCT FROM n.cpu_allocatable_millicores
           THEN jsonb_build_object('cpu_allocatable_millicores', jsonb_build_object('old', to_jsonb(p.cpu_allocatable_millicores), 'new', to_jsonb(n.cpu_allocatable_millicores))) ELSE '{}'::jsonb END
                    || CASE WHEN p.memory_allocatable_bytes IS DISTINCT FROM n.memory_allocatable_bytes
           THEN jsonb_build_object('memory_allocatable_bytes', jsonb_build_object('old', to_jsonb(p.memory_allocatable_bytes), 'new', to_jsonb(n.memory_allocatable_bytes))) ELSE '{}'::jsonb END
                    || CASE WHEN p.pods_allocatable IS DISTINCT FROM n.pods_allocatable
           THEN jsonb_build_object('pods_allocatable', jsonb_build_object('old', to_jsonb(p.pods_allocatable), 'new', to_jsonb(n.pods_allocatable))) ELSE '{}'::jsonb END
               END
               || CASE WHEN p.capacity IS DISTINCT FROM n.capacity
           THEN jsonb_build_object('capacity', jsonb_build_object('old', p.capacity, 'new', n.capacity)) ELSE '{}'::jsonb END
               || CASE WHEN p.allocatable IS DISTINCT FROM n.allocatable
           THEN jsonb_build_object('allocatable', jsonb_build_object('old', p.allocatable, 'new', n.allocatable)) ELSE '{}'::jsonb END
               || CASE WHEN p.labels IS DISTINCT FROM n.labels
           THEN jsonb_build_object('labels', jsonb_build_object('old', p.labels, 'new', n.labels)) ELSE '{}'::jsonb END
               || CASE WHEN p.taints IS DISTINCT FROM n.taints
           THEN jsonb_build_object('taints', jsonb_build_object('old', p.taints, 'new', n.taints)) ELSE '{}'::jsonb END
               || CASE WHEN p.conditions IS DISTINCT FROM n.conditions
           THEN jsonb_build_object('conditions', jsonb_build_object('old', p.conditions, 'new', n.conditions)) ELSE '{}'::jsonb END,
           p.created_at IS DISTINCT FROM n.created_at, p.created_at, n.created_at
    FROM (SELECT DISTINCT k.cluster_id, k.node_uid, k.at
          FROM unnest($1, $2, $3) AS k(cluster_id, node_uid, at)) k
    JOIN (SELECT h.* FROM inventory.node_history h
          WHERE h.valid_from = ANY ($4) AND h.cluster_id = ANY ($5)) n
      ON n.cluster_id = k.cluster_id AND n.node_uid = k.node_uid AND n.valid_from = k.at
    JOIN (SELECT h.* FROM inventory.node_history h
          WHERE h.valid_to = ANY ($4) AND h.cluster_id = ANY ($5)) p
      ON p.cluster_id = k.cluster_id AND p.node_uid = k.node_uid AND p.valid_to = k.at
    WHERE (p.name, p.created_at, p.roles, p.ready, p.unschedulable, p.kubelet_version,
          p.container_runtime_version, p.os_image, p.kernel_version, p.architecture,
          p.operating_system, p.internal_ip, p.external_ip, p.provider_id, p.cloud_provider,
          p.region, p.zone, p.instance_type, p.cpu_capacity_millicores,
          p.memory_capacity_bytes, p.pods_capacity, p.ephemeral_storage_capacity_bytes,
          p.gpu_capacity, p.cpu_allocatable_millicores, p.memory_allocatable_bytes,
          p.pods_allocatable, p.capacity, p.allocatable, p.labels, p.taints, p.conditions)
          IS DISTINCT FROM
          (n.name, n.created_at, n.roles, n.ready, n.unschedulable, n.kubelet_version,
          n.container_runtime_version, n.os_image, n.kernel_version, n.architecture,
          n.operating_system, n.internal_ip, n.external_ip, n.provider_id, n.cloud_provider,
          n.region, n.zone, n.instance_type, n.cpu_capacity_millicores,
          n.memory_capacity_bytes, n.pods_capacity, n.ephemeral_storage_capacity_bytes,
          n.gpu_capacity, n.cpu_allocatable_millicores, n.memory_allocatable_bytes,
          n.pods_allocatable, n.capacity, n.allocatable, n.labels, n.taints, n.conditions)
    $q$ USING cids, uids, ats, ts, cs;
END
$$;
COMMENT ON FUNCTION inventory.node_change_refresh(text[], text[], timestamptz[]) IS
    'Recomputes inventory.node_change at the given (cluster_id, node_uid, at) keys.';

-- The keys a statement that inserted or deleted the versions (cids[i], uids[i], froms[i],
-- tos[i]) touched: each version's valid_from (it may be an n) and valid_to (it may be a p).
-- Their clusters and instants (usually one of each) first: most statements touch no pair.
CREATE OR REPLACE FUNCTION inventory.node_change_refresh_versions(
    cids text[], uids text[], froms timestamptz[], tos timestamptz[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    IF inventory.node_change_touches(ARRAY(SELECT unnest(froms) UNION SELECT unnest(tos)),
                                     ARRAY(SELECT DISTINCT unnest(cids))) THEN
        PERFORM inventory.node_change_refresh(array_agg(k.cluster_id), array_agg(k.node_uid),
                                              array_agg(t.at))
        FROM unnest(cids, uids, froms, tos) AS k(cluster_id, node_uid, valid_from, valid_to)
        CROSS JOIN LATERAL (VALUES (k.valid_from), (k.valid_to)) t(at)
        WHERE t.at IS NOT NULL;
    END IF;
END
$$;
COMMENT ON FUNCTION inventory.node_change_refresh_versions(text[], text[], timestamptz[], timestamptz[]) IS
    'Recomputes inventory.node_change at the keys of the given versions (inserted or deleted).';

-- A transition table exists only for its own event, hence one trigger function per event, each
-- passing its rows' keys on.
CREATE OR REPLACE FUNCTION inventory.node_change_after_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    PERFORM inventory.node_change_refresh_versions(array_agg(r.cluster_id),
        array_agg(r.node_uid), array_agg(r.valid_from), array_agg(r.valid_to))
    FROM new_rows r;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION inventory.node_change_after_delete() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    PERFORM inventory.node_change_refresh_versions(array_agg(r.cluster_id),
        array_agg(r.node_uid), array_agg(r.valid_from), array_agg(r.valid_to))
    FROM old_rows r;
    RETURN NULL;
END
$$;

-- An UPDATE: a version whose key and fields are unchanged (the store's close: only valid_to
-- moves) keeps its pair with its predecessor; only its old and new valid_to are touched.
-- Every other old or new row touches both of its instants.
CREATE OR REPLACE FUNCTION inventory.node_change_after_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_nestloop = off
AS $$
DECLARE
    cids text[];
    uids text[];
    ats timestamptz[];
BEGIN
    WITH same AS (
        SELECT o.cluster_id, o.node_uid, o.valid_from, o.valid_to AS old_to, n.valid_to AS new_to
        FROM old_rows o
        JOIN new_rows n
          ON n.cluster_id = o.cluster_id AND n.node_uid = o.node_uid
         AND n.valid_from = o.valid_from
        WHERE (o.name, o.created_at, o.roles, o.ready, o.unschedulable, o.kubelet_version,
              o.container_runtime_version, o.os_image, o.kernel_version, o.architecture,
              o.operating_system, o.internal_ip, o.external_ip, o.provider_id, o.cloud_provider,
              o.region, o.zone, o.instance_type, o.cpu_capacity_millicores,
              o.memory_capacity_bytes, o.pods_capacity, o.ephemeral_storage_capacity_bytes,
              o.gpu_capacity, o.cpu_allocatable_millicores, o.memory_allocatable_bytes,
              o.pods_allocatable, o.capacity, o.allocatable, o.labels, o.taints, o.conditions)
              IS NOT DISTINCT FROM
              (n.name, n.created_at, n.roles, n.ready, n.unschedulable, n.kubelet_version,
              n.container_runtime_version, n.os_image, n.kernel_version, n.architecture,
              n.operating_system, n.internal_ip, n.external_ip, n.provider_id, n.cloud_provider,
              n.region, n.zone, n.instance_type, n.cpu_capacity_millicores,
              n.memory_capacity_bytes, n.pods_capacity, n.ephemeral_storage_capacity_bytes,
              n.gpu_capacity, n.cpu_allocatable_millicores, n.memory_allocatable_bytes,
              n.pods_allocatable, n.capacity, n.allocatable, n.labels, n.taints, n.conditions)
    ), changed AS (
        SELECT r.cluster_id, r.node_uid, r.valid_from, r.valid_to FROM old_rows r
        WHERE NOT EXISTS (SELECT 1 FROM same s WHERE s.cluster_id = r.cluster_id
                            AND s.node_uid = r.node_uid AND s.valid_from = r.valid_from)
        UNION ALL
        SELECT r.cluster_id, r.node_uid, r.valid_from, r.valid_to FROM new_rows r
        WHERE NOT EXISTS (SELECT 1 FROM same s WHERE s.cluster_id = r.cluster_id
                            AND s.node_uid = r.node_uid AND s.valid_from = r.valid_from)
    )
    SELECT array_agg(k.cluster_id), array_agg(k.node_uid), array_agg(k.at)
    INTO cids, uids, ats
    FROM (SELECT c.cluster_id, c.node_uid, c.valid_from AS at FROM changed c
          UNION ALL
          SELECT c.cluster_id, c.node_uid, c.valid_to FROM changed c
          WHERE c.valid_to IS NOT NULL
          UNION ALL
          SELECT s.cluster_id, s.node_uid, t.at
          FROM same s CROSS JOIN LATERAL (VALUES (s.old_to), (s.new_to)) t(at)
          WHERE s.old_to IS DISTINCT FROM s.new_to AND t.at IS NOT NULL) k;
    PERFORM inventory.node_change_refresh(cids, uids, ats);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION inventory.node_change_after_truncate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    DELETE FROM inventory.node_change;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION inventory.node_change_after_insert() IS
    'Trigger: keeps inventory.node_change in step with node_history (statement level).';
COMMENT ON FUNCTION inventory.node_change_after_update() IS
    'Trigger: keeps inventory.node_change in step with node_history (statement level).';
COMMENT ON FUNCTION inventory.node_change_after_delete() IS
    'Trigger: keeps inventory.node_change in step with node_history (statement level).';
COMMENT ON FUNCTION inventory.node_change_after_truncate() IS
    'Trigger: keeps inventory.node_change in step with node_history (statement level).';

CREATE TRIGGER node_change_insert AFTER INSERT ON inventory.node_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_change_after_insert();
CREATE TRIGGER node_change_update AFTER UPDATE ON inventory.node_history
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_change_after_update();
CREATE TRIGGER node_change_delete AFTER DELETE ON inventory.node_history
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_change_after_delete();
CREATE TRIGGER node_change_truncate AFTER TRUNCATE ON inventory.node_history
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.node_change_after_truncate();
