-- 0022: clusters come and go (issue 14): retirement, the cluster registry, and what the
-- current views and changes() make of a retired cluster.
--
-- A cluster is *reached* by a run when a target of that run identified it, or when a target of
-- that run (same kubeconfig path and context name) identified it the last time it identified
-- anything: a cluster that is down but still configured is reached, and stays `stale`. A
-- cluster that no run has reached for longer than `lifecycle.retire_after` is *retired* at the
-- end of a run (collector/store/database.py, Store.retire_unreached), or by hand
-- (`kubeinv clusters retire`). Retiring closes every open version of the cluster's version,
-- nodes, API resources and services at the retirement time, in one transaction, and records
-- the retirement here; history is never rewritten and nothing is deleted. A retired cluster
-- whose inventory is stored again comes back: the store ends its retirement (returned_at) and
-- writes new versions from that run on.
--
-- Daily series need no change: they read the history, whose versions end at the retirement
-- time, so a cluster retired on day d no longer counts from d on (a day shows the state at its
-- end) and counts again from the day it comes back.

-- --- when each cluster was last reached ------------------------------------------------------

ALTER TABLE inventory.cluster
    ADD COLUMN last_reached_at timestamptz,
    ADD COLUMN last_reached_run_id bigint;
COMMENT ON COLUMN inventory.cluster.last_reached_at IS
    'Start of the latest run that reached the cluster (identified it, or ran a target that '
    'identified it before); retirement counts retire_after from here.';

-- Before this migration, every run that touched a cluster set last_attempt_at.
UPDATE inventory.cluster
SET last_reached_at = coalesce(last_attempt_at, last_collected_at, first_seen_at),
    last_reached_run_id = last_run_id;

-- --- which cluster each target identified last -----------------------------------------------
--
-- Kept at the end of every run from its ledger rows. It is not the ledger: the ledger is pruned
-- after retention.ledger, and a target that has been failing for longer must still reach the
-- cluster it identified.

CREATE TABLE inventory.target_cluster (
    kubeconfig_path  text NOT NULL,
    context_name     text NOT NULL,
    cluster_id       text NOT NULL,
    identified_at    timestamptz NOT NULL,
    run_id           bigint NOT NULL,
    PRIMARY KEY (kubeconfig_path, context_name)
);
CREATE INDEX target_cluster_cluster_idx ON inventory.target_cluster (cluster_id);
COMMENT ON TABLE inventory.target_cluster IS
    'The cluster each target (kubeconfig path, context) identified the last time it identified '
    'one. A failing target still reaches that cluster, which then stays stale, never retired.';

INSERT INTO inventory.target_cluster (kubeconfig_path, context_name, cluster_id,
                                      identified_at, run_id)
SELECT DISTINCT ON (cc.kubeconfig_path, cc.context_name)
       cc.kubeconfig_path, cc.context_name, cc.cluster_id,
       coalesce(cc.finished_at, r.started_at), cc.run_id
FROM inventory.cluster_collection cc
JOIN inventory.collection_run r ON r.run_id = cc.run_id
WHERE cc.cluster_id IS NOT NULL
ORDER BY cc.kubeconfig_path, cc.context_name, cc.run_id DESC;

-- --- retirements -----------------------------------------------------------------------------

CREATE TABLE inventory.cluster_retirement (
    cluster_id       text NOT NULL,
    retired_at       timestamptz NOT NULL,
    retired_by       text NOT NULL CHECK (retired_by IN ('unseen', 'manual')),
    run_id           bigint,          -- the run at whose end it was retired ('unseen')
    last_reached_at  timestamptz,     -- when a run last reached it, as of the retirement
    returned_at      timestamptz,     -- when its inventory was stored again; NULL: retired
    PRIMARY KEY (cluster_id, retired_at),
    CHECK (returned_at IS NULL OR returned_at > retired_at)
);
CREATE UNIQUE INDEX cluster_retirement_open_idx
    ON inventory.cluster_retirement (cluster_id) WHERE returned_at IS NULL;
CREATE INDEX cluster_retirement_retired_at_idx ON inventory.cluster_retirement (retired_at);
CREATE INDEX cluster_retirement_returned_at_idx
    ON inventory.cluster_retirement (returned_at) WHERE returned_at IS NOT NULL;
COMMENT ON TABLE inventory.cluster_retirement IS
    'Every retirement of a cluster: when, why (unseen: no run reached it for retire_after; '
    'manual: kubeinv clusters retire), and when it came back (returned_at; NULL while retired).';

-- Retire one cluster at `at` (the caller holds the cluster's lock: sql/queries/store.sql
-- lock_cluster). Closes every open version of the cluster; returns false when it was retired
-- already. One call is one cluster; the caller's transaction makes it atomic.
CREATE FUNCTION inventory.retire_cluster(cid text, at timestamptz, why text,
                                         by_run bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inventory.cluster_retirement r
               WHERE r.cluster_id = cid AND r.returned_at IS NULL) THEN
        RETURN false;
    END IF;
    UPDATE inventory.cluster_version_history SET valid_to = at
    WHERE cluster_id = cid AND valid_to IS NULL;
    UPDATE inventory.node_history SET valid_to = at
    WHERE cluster_id = cid AND valid_to IS NULL;
    UPDATE inventory.api_resource_history SET valid_to = at
    WHERE cluster_id = cid AND valid_to IS NULL;
    UPDATE inventory.cluster_service_history SET valid_to = at
    WHERE cluster_id = cid AND valid_to IS NULL;
    INSERT INTO inventory.cluster_retirement (cluster_id, retired_at, retired_by, run_id,
                                              last_reached_at)
    SELECT cid, at, why, by_run, c.last_reached_at
    FROM inventory.cluster c WHERE c.cluster_id = cid;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION inventory.retire_cluster(text, timestamptz, text, bigint) IS
    'Retire a cluster at `at`: close its open versions and record the retirement (kubeinv '
    'calls it, holding the cluster lock, one transaction per cluster).';

-- --- clusters a demo made -------------------------------------------------------------------
--
-- `kubeinv demo` works in a scratch database of its own. Only `kubeinv demo --database-url DSN`
-- writes elsewhere, and it refuses a database holding any cluster not listed here.

CREATE TABLE inventory.demo_cluster (
    cluster_id  text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE inventory.demo_cluster IS
    'Clusters that kubeinv demo created (simulated): a demo may write only where every '
    'cluster is one of these.';

-- --- the registry ----------------------------------------------------------------------------

CREATE VIEW inventory.cluster_registry AS
SELECT c.cluster_id,
       c.context_names,
       c.first_seen_at,
       c.last_collected_at,
       c.last_status,
       r.retired_at,
       r.retired_by,
       CASE WHEN r.retired_at IS NOT NULL THEN 'retired'
            WHEN c.last_status = 'failed'
              OR c.last_reached_run_id IS DISTINCT FROM (
                     SELECT max(cr.run_id) FROM inventory.collection_run cr
                     WHERE cr.status IN ('ok', 'partial', 'failed'))
            THEN 'stale'
            ELSE 'active' END                       AS state,
       c.last_reached_at,
       c.last_attempt_at,
       c.last_error,
       c.server_url,
       c.provider,
       v.git_version,
       c.cluster_id_source
FROM inventory.cluster c
LEFT JOIN inventory.cluster_retirement r
       ON r.cluster_id = c.cluster_id AND r.returned_at IS NULL
LEFT JOIN LATERAL (
    -- The current version; for a retired cluster, the last one it had.
    SELECT h.git_version FROM inventory.cluster_version_history h
    WHERE h.cluster_id = c.cluster_id
    ORDER BY h.valid_from DESC LIMIT 1
) v ON true;
COMMENT ON VIEW inventory.cluster_registry IS
    'Every cluster ever seen, retired ones included: state active (reached and collected by '
    'the latest run), stale (its last collection failed, or the latest run did not reach it) '
    'or retired (retired_at, retired_by: unseen or manual).';

-- --- current views: retired clusters are hidden ----------------------------------------------
-- Retiring closes the history rows the *_current views read, so they drop a retired cluster
-- anyway; the views also say so, for a cluster whose rows another writer left open.

CREATE OR REPLACE VIEW inventory.node_current AS
SELECT cluster_id, node_uid, name, created_at,
       roles, ready, unschedulable,
       kubelet_version, container_runtime_version, os_image, kernel_version,
       architecture, operating_system,
       internal_ip, external_ip, provider_id, cloud_provider, region, zone, instance_type,
       cpu_capacity_millicores, memory_capacity_bytes, pods_capacity,
       ephemeral_storage_capacity_bytes, gpu_capacity,
       cpu_allocatable_millicores, memory_allocatable_bytes, pods_allocatable,
       capacity, allocatable, labels, taints, conditions, first_seen_at
FROM inventory.node_history h
WHERE valid_to IS NULL
  AND NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = h.cluster_id AND r.returned_at IS NULL);
COMMENT ON VIEW inventory.node_current IS
    'Current nodes of every cluster that is not retired (last known state).';

CREATE OR REPLACE VIEW inventory.api_resource_current AS
SELECT cluster_id, api_group, api_version, resource, kind, namespaced,
       verbs, short_names, categories, preferred, singular_name
FROM inventory.api_resource_history h
WHERE valid_to IS NULL
  AND NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = h.cluster_id AND r.returned_at IS NULL);
COMMENT ON VIEW inventory.api_resource_current IS
    'API resources served now by clusters that are not retired, every served version; '
    'preferred marks the preferred version.';

CREATE OR REPLACE VIEW inventory.cluster_service_current AS
SELECT cluster_id, namespace, name, proxy_url
FROM inventory.cluster_service_history h
WHERE valid_to IS NULL
  AND NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = h.cluster_id AND r.returned_at IS NULL);

CREATE OR REPLACE VIEW inventory.cluster_current AS
SELECT c.cluster_id, c.context_names, c.server_url,
       v.git_version, v.minor_version, v.platform,
       c.provider,
       coalesce(n.node_count, 0)        AS node_count,
       coalesce(n.ready_node_count, 0)  AS ready_node_count,
       n.cpu_capacity_millicores, n.memory_capacity_bytes,
       n.cpu_allocatable_millicores, n.memory_allocatable_bytes,
       c.last_collected_at, c.last_status, c.last_error,
       c.cluster_id_source, c.first_seen_at, c.discovery_mode,
       v.major, n.gpu_capacity,
       (c.last_status = 'failed') AS stale
FROM inventory.cluster c
LEFT JOIN inventory.cluster_version_history v
       ON v.cluster_id = c.cluster_id AND v.valid_to IS NULL
LEFT JOIN LATERAL (
    SELECT count(*)                                   AS node_count,
           count(*) FILTER (WHERE nh.ready)           AS ready_node_count,
           sum(nh.cpu_capacity_millicores)::bigint    AS cpu_capacity_millicores,
           sum(nh.memory_capacity_bytes)::bigint      AS memory_capacity_bytes,
           sum(nh.cpu_allocatable_millicores)::bigint AS cpu_allocatable_millicores,
           sum(nh.memory_allocatable_bytes)::bigint   AS memory_allocatable_bytes,
           sum(nh.gpu_capacity)::bigint               AS gpu_capacity
    FROM inventory.node_history nh
    WHERE nh.cluster_id = c.cluster_id AND nh.valid_to IS NULL
) n ON true
WHERE NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = c.cluster_id AND r.returned_at IS NULL);
COMMENT ON VIEW inventory.cluster_current IS
    'One row per cluster that is not retired: last known version, node totals, last '
    'collection status. Every cluster, retired ones too: inventory.cluster_registry.';

CREATE OR REPLACE VIEW inventory.cluster_support AS
SELECT c.cluster_id,
       v.git_version,
       v.minor_version,
       r.end_of_life,
       r.end_of_life - inventory.analytics_today()            AS days_left,
       CASE
         WHEN r.end_of_life IS NULL THEN 'unknown'
         WHEN inventory.analytics_today() > r.end_of_life THEN 'end-of-life'
         WHEN r.end_of_life - inventory.analytics_today() <= 90 THEN 'ending-soon'
         ELSE 'supported'
       END                                                     AS support_status,
       r.end_of_life_kind,
       r.released_on,
       c.context_names,
       c.last_status
FROM inventory.cluster c
LEFT JOIN inventory.cluster_version_history v
       ON v.cluster_id = c.cluster_id AND v.valid_to IS NULL
LEFT JOIN inventory.kubernetes_release r
       ON r.major_version = coalesce(inventory.version_major(v.git_version), 1)
      AND r.minor_version = v.minor_version
WHERE NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement x
                  WHERE x.cluster_id = c.cluster_id AND x.returned_at IS NULL);
COMMENT ON VIEW inventory.cluster_support IS
    'Each cluster''s server minor against the upstream end-of-life date (reference data, 0010); '
    'retired clusters are left out.';

-- node_skew_current and api_removal_readiness read the open versions of node_history,
-- api_resource_history and cluster_version_history, which retirement closes: unchanged.

-- --- changes(): cluster-retired and cluster-returned -----------------------------------------

CREATE OR REPLACE FUNCTION inventory.changes(since timestamptz)
RETURNS TABLE (cluster_id text, at timestamptz, kind text, subject text, detail jsonb)
LANGUAGE plpgsql STABLE
SET jit = off
SET work_mem = '256MB'
AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := inventory.analytics_now();
BEGIN
    RETURN QUERY
    WITH first_collection AS MATERIALIZED (
        SELECT c.cluster_id, c.context_names, c.server_url,
               coalesce((SELECT min(v.valid_from) FROM inventory.cluster_version_history v
                         WHERE v.cluster_id = c.cluster_id), c.first_seen_at) AS first_at
        FROM inventory.cluster c
    ),
    -- Retirements and returns in the window: one row each, instead of a removal (addition) row
    -- per node, API resource and version closed (opened) at that instant.
    retirement AS MATERIALIZED (
        SELECT r.cluster_id, r.retired_at, r.retired_by, r.returned_at, r.last_reached_at
        FROM inventory.cluster_retirement r
        WHERE (r.retired_at >= since AND r.retired_at <= now_ts)
           OR (r.returned_at >= since AND r.returned_at <= now_ts)
    ),
    retire_instant AS (
        SELECT r.cluster_id, r.retired_at AS at FROM retirement r
        WHERE r.retired_at >= since
    ),
    return_instant AS (
        SELECT r.cluster_id, r.returned_at AS at FROM retirement r
        WHERE r.returned_at >= since
    ),
    cluster_retired AS (
        SELECT r.cluster_id, r.retired_at AS at, 'cluster-retired'::text AS kind,
               coalesce(c.context_names[1], c.server_url, c.cluster_id) AS subject,
               jsonb_build_object(
                   'retired_by', r.retired_by,
                   'last_reached_at', r.last_reached_at,
                   'context_names', to_jsonb(c.context_names),
                   'git_version', (SELECT v.git_version FROM inventory.cluster_version_history v
                                   WHERE v.cluster_id = r.cluster_id
                                     AND v.valid_to = r.retired_at LIMIT 1),
                   'nodes', (SELECT count(*) FROM inventory.node_history n
                             WHERE n.cluster_id = r.cluster_id AND n.valid_to = r.retired_at),
                   'api_resources', (SELECT count(*) FROM inventory.api_resource_history a
                                     WHERE a.cluster_id = r.cluster_id
                                       AND a.valid_to = r.retired_at)
               ) AS detail
        FROM retirement r
        JOIN inventory.cluster c ON c.cluster_id = r.cluster_id
        WHERE r.retired_at >= since AND r.retired_at <= now_ts
    ),
    cluster_returned AS (
        SELECT r.cluster_id, r.returned_at AS at, 'cluster-returned'::text AS kind,
               coalesce(c.context_names[1], c.server_url, c.cluster_id) AS subject,
               jsonb_build_object(
                   'retired_at', r.retired_at,
                   'retired_by', r.retired_by,
                   'context_names', to_jsonb(c.context_names),
                   'git_version', (SELECT v.git_version FROM inventory.cluster_version_history v
                                   WHERE v.cluster_id = r.cluster_id
                                     AND v.valid_from = r.returned_at LIMIT 1),
                   'nodes', (SELECT count(*) FROM inventory.node_history n
                             WHERE n.cluster_id = r.cluster_id
                               AND n.valid_from = r.returned_at),
                   'api_resources', (SELECT count(*) FROM inventory.api_resource_history a
                                     WHERE a.cluster_id = r.cluster_id
                                       AND a.valid_from = r.returned_at)
               ) AS detail
        FROM retirement r
        JOIN inventory.cluster c ON c.cluster_id = r.cluster_id
        WHERE r.returned_at >= since AND r.returned_at <= now_ts
    ),
    cluster_added AS (
        SELECT f.cluster_id, f.first_at AS at, 'cluster-added'::text AS kind,
               coalesce(f.context_names[1], f.server_url, f.cluster_id) AS subject,
               jsonb_build_object(
                   'context_names', to_jsonb(f.context_names),
                   'server_url', f.server_url,
                   'git_version', (SELECT v.git_version FROM inventory.cluster_version_history v
                                   WHERE v.cluster_id = f.cluster_id AND v.valid_from = f.first_at
                                   LIMIT 1),
                   'nodes', (SELECT count(*) FROM inventory.node_history n
                             WHERE n.cluster_id = f.cluster_id AND n.valid_from <= f.first_at
                               AND (n.valid_to IS NULL OR n.valid_to > f.first_at)),
                   'api_resources', (SELECT count(*) FROM inventory.api_resource_history a
                                     WHERE a.cluster_id = f.cluster_id
                                       AND a.valid_from <= f.first_at
                                       AND (a.valid_to IS NULL OR a.valid_to > f.first_at))
               ) AS detail
        FROM first_collection f
        WHERE f.first_at >= since
    ),
    version_changed AS (
        SELECT v.cluster_id, v.valid_from AS at, 'version'::text AS kind,
               v.git_version AS subject,
               '{}'::jsonb
               || CASE WHEN p.git_version IS DISTINCT FROM v.git_version
                  THEN jsonb_build_object('git_version', jsonb_build_object(
                       'old', p.git_version, 'new', v.git_version)) ELSE '{}' END
               || CASE WHEN p.minor_version IS DISTINCT FROM v.minor_version
                  THEN jsonb_build_object('minor_version', jsonb_build_object(
                       'old', p.minor_version, 'new', v.minor_version)) ELSE '{}' END
               || CASE WHEN p.platform IS DISTINCT FROM v.platform
                  THEN jsonb_build_object('platform', jsonb_build_object(
                       'old', p.platform, 'new', v.platform)) ELSE '{}' END
               || CASE WHEN p.git_commit IS DISTINCT FROM v.git_commit
                  THEN jsonb_build_object('git_commit', jsonb_build_object(
                       'old', p.git_commit, 'new', v.git_commit)) ELSE '{}' END
               || CASE WHEN p.build_date IS DISTINCT FROM v.build_date
                  THEN jsonb_build_object('build_date', jsonb_build_object(
                       'old', p.build_date, 'new', v.build_date)) ELSE '{}' END
               || CASE WHEN p.go_version IS DISTINCT FROM v.go_version
                  THEN jsonb_build_object('go_version', jsonb_build_object(
                       'old', p.go_version, 'new', v.go_version)) ELSE '{}' END
               AS detail
        FROM inventory.cluster_version_history v
        JOIN LATERAL (
            SELECT pv.* FROM inventory.cluster_version_history pv
            WHERE pv.cluster_id = v.cluster_id AND pv.valid_from < v.valid_from
            ORDER BY pv.valid_from DESC LIMIT 1
        ) p ON true
        WHERE v.valid_from >= since
          AND NOT EXISTS (SELECT 1 FROM return_instant x
                          WHERE x.cluster_id = v.cluster_id AND x.at = v.valid_from)
    ),
    node_keys AS (
        -- The node versions starting (n) or ending (p) in [since, now], paired by their keys
        -- alone from the covering indexes of 0014 (index-only): n alone is an addition (first
        -- version, or back after a gap), p alone a removal. Pairs are node_change's business.
        SELECT coalesce(n.cluster_id, p.cluster_id) AS cluster_id,
               coalesce(n.node_uid, p.node_uid) AS node_uid,
               n.valid_from AS n_from, p.valid_from AS p_from
        FROM (SELECT h.cluster_id, h.node_uid, h.valid_from FROM inventory.node_history h
              WHERE h.valid_from >= since AND h.valid_from <= now_ts) n
        FULL JOIN (SELECT h.cluster_id, h.node_uid, h.valid_from, h.valid_to
                   FROM inventory.node_history h
                   WHERE h.valid_to >= since AND h.valid_to <= now_ts) p
          ON p.cluster_id = n.cluster_id AND p.node_uid = n.node_uid AND p.valid_to = n.valid_from
        WHERE n.cluster_id IS NULL OR p.cluster_id IS NULL
    ),
    node_added AS (
        SELECT n.cluster_id, n.valid_from AS at, 'node-added'::text AS kind, n.name AS subject,
               jsonb_build_object('node_uid', n.node_uid, 'kubelet_version', n.kubelet_version,
                                  'roles', to_jsonb(n.roles), 'instance_type', n.instance_type,
                                  'cpu_capacity_millicores', n.cpu_capacity_millicores,
                                  'memory_capacity_bytes', n.memory_capacity_bytes) AS detail
        FROM node_keys k
        JOIN inventory.node_history n
          ON n.cluster_id = k.cluster_id AND n.node_uid = k.node_uid AND n.valid_from = k.n_from
        LEFT JOIN first_collection f ON f.cluster_id = n.cluster_id
        WHERE k.p_from IS NULL
          AND n.valid_from > f.first_at                   -- not part of the first collection
          AND NOT EXISTS (SELECT 1 FROM return_instant x
                          WHERE x.cluster_id = n.cluster_id AND x.at = n.valid_from)
    ),
    node_removed AS (
        SELECT p.cluster_id, p.valid_to AS at, 'node-removed'::text AS kind, p.name AS subject,
               jsonb_build_object('node_uid', p.node_uid, 'kubelet_version', p.kubelet_version,
                                  'roles', to_jsonb(p.roles)) AS detail
        FROM node_keys k
        JOIN inventory.node_history p
          ON p.cluster_id = k.cluster_id AND p.node_uid = k.node_uid AND p.valid_from = k.p_from
        WHERE k.n_from IS NULL
          AND NOT EXISTS (SELECT 1 FROM retire_instant x
                          WHERE x.cluster_id = p.cluster_id AND x.at = p.valid_to)
    ),
    node_changed AS (
        -- kept at write time (node_change): one range scan of its (at, ...) index
        SELECT c.cluster_id, c.at, 'node-changed'::text AS kind, c.name AS subject,
               CASE WHEN c.created_at_changed
                    THEN c.detail || jsonb_build_object('created_at', jsonb_build_object(
                         'old', to_jsonb(c.old_created_at), 'new', to_jsonb(c.new_created_at)))
                    ELSE c.detail END AS detail
        FROM inventory.node_change c
        WHERE c.at >= since AND c.at <= now_ts
    ),
    api_added AS (
        SELECT a.cluster_id, a.valid_from AS at, 'api-added'::text AS kind,
               inventory.api_resource_name(a.api_group, a.api_version, a.resource) AS subject,
               jsonb_build_object('api_group', a.api_group, 'api_version', a.api_version,
                                  'resource', a.resource, 'kind', a.kind,
                                  'preferred', a.preferred) AS detail
        FROM inventory.api_resource_history a
        JOIN first_collection f ON f.cluster_id = a.cluster_id
        WHERE a.valid_from >= since
          AND a.valid_from > f.first_at
          AND NOT EXISTS (
              SELECT 1 FROM inventory.api_resource_history p
              WHERE p.cluster_id = a.cluster_id AND p.api_group = a.api_group
                AND p.api_version = a.api_version AND p.resource = a.resource
                AND p.valid_to = a.valid_from AND p.valid_to >= since)
          AND NOT EXISTS (SELECT 1 FROM return_instant x
                          WHERE x.cluster_id = a.cluster_id AND x.at = a.valid_from)
    ),
    api_removed AS (
        SELECT a.cluster_id, a.valid_to AS at, 'api-removed'::text AS kind,
               inventory.api_resource_name(a.api_group, a.api_version, a.resource) AS subject,
               jsonb_build_object('api_group', a.api_group, 'api_version', a.api_version,
                                  'resource', a.resource, 'kind', a.kind,
                                  'preferred', a.preferred) AS detail
        FROM inventory.api_resource_history a
        WHERE a.valid_to >= since
          AND NOT EXISTS (
              SELECT 1 FROM inventory.api_resource_history s
              WHERE s.cluster_id = a.cluster_id AND s.api_group = a.api_group
                AND s.api_version = a.api_version AND s.resource = a.resource
                AND s.valid_from = a.valid_to AND s.valid_from >= since)
          AND NOT EXISTS (SELECT 1 FROM retire_instant x
                          WHERE x.cluster_id = a.cluster_id AND x.at = a.valid_to)
    )
    SELECT x.cluster_id, x.at, x.kind, x.subject, x.detail FROM (
        SELECT * FROM cluster_added
        UNION ALL SELECT * FROM cluster_returned
        UNION ALL SELECT * FROM version_changed
        UNION ALL SELECT * FROM node_added
        UNION ALL SELECT * FROM node_changed
        UNION ALL SELECT * FROM node_removed
        UNION ALL SELECT * FROM api_added
        UNION ALL SELECT * FROM api_removed
        UNION ALL SELECT * FROM cluster_retired
    ) x
    WHERE x.at <= inventory.analytics_now()
    ORDER BY x.at, x.cluster_id,
             array_position(ARRAY['cluster-added', 'cluster-returned', 'version',
                                  'node-added', 'node-changed', 'node-removed', 'api-added',
                                  'api-removed', 'cluster-retired'], x.kind),
             x.subject;
END
$$;

COMMENT ON FUNCTION inventory.changes(timestamptz) IS
    'What changed at or after `since`: cluster-added (one row for a cluster''s first '
    'collection), version, node-added, node-removed, node-changed (detail: each changed field '
    'as {"old", "new"}), api-added, api-removed, cluster-retired (one row for a retirement, '
    'instead of a removal per node and API) and cluster-returned (one row when a retired '
    'cluster is collected again).';

SELECT inventory.grant_inventory_reader();
