-- changes(since): what changed at or after `since`, one row per change, in time order. A
-- retirement is one cluster-retired row and a return one cluster-returned row, instead of a
-- removal (addition) row per node, API resource and version closed (opened) at that instant.
--
-- How it stays fast (200 clusters x 50 nodes x 90 days of daily changes; benchmarks/README.md,
-- "Report queries"):
-- * node-changed rows are read from inventory.node_change, kept at write time by triggers
--   (sql/schema/history/node_change.sql, node_history_triggers.sql): one range scan of its
--   (at, ...) index.
-- * node-added and node-removed come from the window's node versions, paired by their keys
--   alone from the covering indexes node_history_valid_from_keys_idx and
--   node_history_valid_to_keys_idx (index-only); only the unpaired versions are read whole, by
--   primary key.
-- * A version's neighbour is the version of the same key that ends (or starts) exactly when it
--   starts (ends): the write path closes and opens versions at the same instant. plpgsql plans
--   the query with the actual `since`.
-- * Each kind applies `at <= now` itself; the result is sorted once, in memory (work_mem is
--   raised for this function only: 77,600 changes with their details are ~100 MB). No JIT:
--   compiling costs seconds for a query that runs in a fraction of that.

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
    -- A retirement or a return, with what the cluster held then: the versions the retirement
    -- closed (valid_to = at), or those the return opened (valid_from = at).
    cluster_retired_or_returned AS (
        SELECT r.cluster_id, e.at, e.kind,
               coalesce(c.context_names[1], c.server_url, c.cluster_id) AS subject,
               e.detail || jsonb_build_object(
                   'context_names', to_jsonb(c.context_names),
                   'git_version', (SELECT v.git_version FROM inventory.cluster_version_history v
                                   WHERE v.cluster_id = r.cluster_id
                                     AND (v.valid_to = e.closed OR v.valid_from = e.opened)
                                   LIMIT 1),
                   'nodes', (SELECT count(*) FROM inventory.node_history n
                             WHERE n.cluster_id = r.cluster_id
                               AND (n.valid_to = e.closed OR n.valid_from = e.opened)),
                   'api_resources', (SELECT count(*) FROM inventory.api_resource_history a
                                     WHERE a.cluster_id = r.cluster_id
                                       AND (a.valid_to = e.closed OR a.valid_from = e.opened))
               ) AS detail
        FROM retirement r
        JOIN inventory.cluster c ON c.cluster_id = r.cluster_id
        CROSS JOIN LATERAL (VALUES
            ('cluster-retired'::text, r.retired_at, r.retired_at, NULL::timestamptz,
             jsonb_build_object('retired_by', r.retired_by,
                                'last_reached_at', r.last_reached_at)),
            ('cluster-returned', r.returned_at, NULL, r.returned_at,
             jsonb_build_object('retired_at', r.retired_at, 'retired_by', r.retired_by))
        ) AS e (kind, at, closed, opened, detail)
        WHERE e.at >= since AND e.at <= now_ts
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
               -- each field that differs from the previous version: {"old", "new"}
               (SELECT coalesce(jsonb_object_agg(f.field, jsonb_build_object('old', f.old,
                                                                            'new', f.new)),
                                '{}')
                FROM (VALUES ('git_version',   to_jsonb(p.git_version),   to_jsonb(v.git_version)),
                             ('minor_version', to_jsonb(p.minor_version), to_jsonb(v.minor_version)),
                             ('platform',      to_jsonb(p.platform),      to_jsonb(v.platform)),
                             ('git_commit',    to_jsonb(p.git_commit),    to_jsonb(v.git_commit)),
                             ('build_date',    to_jsonb(p.build_date),    to_jsonb(v.build_date)),
                             ('go_version',    to_jsonb(p.go_version),    to_jsonb(v.go_version))
                     ) AS f (field, old, new)
                WHERE f.old IS DISTINCT FROM f.new)
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
        -- alone from the covering indexes (index-only): n alone is an addition (first
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
    -- The API resource versions starting (n) or ending (p) in the window, paired by their keys:
    -- n alone is an addition (a), p alone a removal, unless a return opened it or a retirement
    -- closed it (those have a row of their own), or it came with the cluster's first collection.
    api_added_or_removed AS (
        SELECT a.cluster_id, a.at, a.change AS kind,
               inventory.api_resource_name(a.api_group, a.api_version, a.resource) AS subject,
               jsonb_build_object('api_group', a.api_group, 'api_version', a.api_version,
                                  'resource', a.resource, 'kind', a.kind,
                                  'preferred', a.preferred) AS detail
        FROM (SELECT 'api-added'::text AS change, h.valid_from AS at, h.*
              FROM inventory.api_resource_history h WHERE h.valid_from >= since) n
        FULL JOIN (SELECT 'api-removed'::text AS change, h.valid_to AS at, h.*
                   FROM inventory.api_resource_history h WHERE h.valid_to >= since) p
          ON (p.cluster_id, p.api_group, p.api_version, p.resource, p.at)
           = (n.cluster_id, n.api_group, n.api_version, n.resource, n.at)
        CROSS JOIN LATERAL (SELECT n.* WHERE p.cluster_id IS NULL
                            UNION ALL
                            SELECT p.* WHERE n.cluster_id IS NULL) a
        LEFT JOIN first_collection f ON f.cluster_id = a.cluster_id
        WHERE (a.change = 'api-removed' OR a.at > f.first_at)
          AND NOT EXISTS (SELECT 1 FROM retirement r
                          WHERE r.cluster_id = a.cluster_id
                            AND a.at = CASE a.change WHEN 'api-added' THEN r.returned_at
                                                     ELSE r.retired_at END)
    )
    SELECT x.cluster_id, x.at, x.kind, x.subject, x.detail FROM (
        SELECT * FROM cluster_added
        UNION ALL SELECT * FROM cluster_retired_or_returned
        UNION ALL SELECT * FROM version_changed
        UNION ALL SELECT * FROM node_added
        UNION ALL SELECT * FROM node_changed
        UNION ALL SELECT * FROM node_removed
        UNION ALL SELECT * FROM api_added_or_removed
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
