-- Queries of cluster retirement and the cluster registry (collector/store/database.py:
-- Store.retire_unreached, Store.retire_clusters, Store.cluster_registry;
-- sql/schema/tables/cluster_lifecycle.sql).

-- name: remember_target_clusters
-- After the ledger rows of run $1 are written and applied (apply_outcomes_to_clusters, which
-- reads the identities of earlier runs): the cluster each target of the run identified.
INSERT INTO inventory.target_cluster AS t (kubeconfig_path, context_name, cluster_id,
                                           identified_at, run_id)
SELECT cc.kubeconfig_path, cc.context_name, cc.cluster_id,
       coalesce(cc.finished_at, now()), cc.run_id
FROM inventory.cluster_collection cc
WHERE cc.run_id = $1 AND cc.cluster_id IS NOT NULL
ON CONFLICT (kubeconfig_path, context_name) DO UPDATE SET
    cluster_id = EXCLUDED.cluster_id,
    identified_at = EXCLUDED.identified_at,
    run_id = EXCLUDED.run_id;

-- name: mark_reached
-- The clusters run $1 reached: identified by one of its targets, or identified before by a
-- target of the run (same kubeconfig path and context) that did not identify anything now,
-- or by any context of a kubeconfig file that could not be read in this run (a file-level
-- ledger row has the context name ''), or identified by a context that the run's --context /
-- --exclude-context left out ($2 kubeconfig paths, $3 context names: still configured, like a
-- cluster that is down). Sets their last_reached_at to the run's start.
WITH run AS (
    SELECT r.run_id, r.started_at FROM inventory.collection_run r WHERE r.run_id = $1
), reached AS (
    SELECT cc.cluster_id FROM inventory.cluster_collection cc
    WHERE cc.run_id = $1 AND cc.cluster_id IS NOT NULL
    UNION
    SELECT t.cluster_id
    FROM inventory.cluster_collection cc
    JOIN inventory.target_cluster t
      ON t.kubeconfig_path = cc.kubeconfig_path AND t.context_name = cc.context_name
    WHERE cc.run_id = $1 AND cc.cluster_id IS NULL
    UNION
    SELECT t.cluster_id
    FROM inventory.cluster_collection cc
    JOIN inventory.target_cluster t ON t.kubeconfig_path = cc.kubeconfig_path
    WHERE cc.run_id = $1 AND cc.cluster_id IS NULL AND cc.context_name = ''
    UNION
    SELECT t.cluster_id
    FROM unnest($2::text[], $3::text[]) AS f(kubeconfig_path, context_name)
    JOIN inventory.target_cluster t
      ON t.kubeconfig_path = f.kubeconfig_path AND t.context_name = f.context_name
)
UPDATE inventory.cluster c
SET last_reached_at = greatest(c.last_reached_at, run.started_at),
    last_reached_run_id = greatest(c.last_reached_run_id, run.run_id)
FROM reached, run
WHERE c.cluster_id = reached.cluster_id
RETURNING c.cluster_id;

-- name: retirement_candidates
-- Clusters not retired that run $1 did not reach and no run reached for longer than $2.
SELECT c.cluster_id, c.last_reached_at
FROM inventory.cluster c
WHERE c.last_reached_run_id IS DISTINCT FROM $1
  AND coalesce(c.last_reached_at, c.last_collected_at, c.first_seen_at) <= now() - $2::interval
  AND NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = c.cluster_id AND r.returned_at IS NULL)
ORDER BY c.cluster_id;

-- name: still_unseen
-- A candidate, checked again under its cluster lock: another collector may have reached or
-- stored it meanwhile. $1 cluster_id, $2 retire_after, $3 run_id.
SELECT true
FROM inventory.cluster c
WHERE c.cluster_id = $1
  AND c.last_reached_run_id IS DISTINCT FROM $3
  AND coalesce(c.last_reached_at, c.last_collected_at, c.first_seen_at) <= now() - $2::interval
  AND (c.last_collected_at IS NULL
       OR c.last_collected_at < (SELECT r.started_at FROM inventory.collection_run r
                                 WHERE r.run_id = $3));

-- name: retire_cluster
-- Under the cluster lock (lock_cluster), $2 read after taking it (version_time): closes every
-- open version of cluster $1 at $2 and records the retirement. False when retired already.
-- $3 'unseen' or 'manual', $4 the run retiring it (NULL by hand).
SELECT inventory.retire_cluster($1, $2, $3, $4);

-- name: retirement_of
SELECT retired_at, retired_by FROM inventory.cluster_retirement
WHERE cluster_id = $1 AND returned_at IS NULL;

-- name: end_retirement
-- A retired cluster whose inventory is stored again at $2 comes back (collector/store/writing.py).
UPDATE inventory.cluster_retirement SET returned_at = $2
WHERE cluster_id = $1 AND returned_at IS NULL
RETURNING retired_at;

-- name: resolve_cluster
SELECT inventory.resolve_cluster($1);

-- name: cluster_registry
SELECT cluster_id, context_names, state, first_seen_at, last_collected_at, last_status,
       last_reached_at, retired_at, retired_by, git_version, server_url, last_error
FROM inventory.cluster_registry
ORDER BY CASE state WHEN 'active' THEN 0 WHEN 'stale' THEN 1 ELSE 2 END,
         coalesce(context_names[1], cluster_id), cluster_id;

-- ---- the demo (collector/demo.py) ---------------------------------------------------------

-- name: demo_schema_tables
-- Whether the inventory and the demo's bookkeeping exist yet (before any migration is applied).
SELECT to_regclass('inventory.cluster') IS NOT NULL AS has_inventory,
       to_regclass('inventory.demo_cluster') IS NOT NULL AS has_demo_clusters;

-- name: all_clusters
SELECT cluster_id FROM inventory.cluster ORDER BY cluster_id;

-- name: non_demo_clusters
SELECT c.cluster_id FROM inventory.cluster c
WHERE NOT EXISTS (SELECT 1 FROM inventory.demo_cluster d WHERE d.cluster_id = c.cluster_id)
ORDER BY c.cluster_id;

-- name: mark_demo_clusters
INSERT INTO inventory.demo_cluster (cluster_id)
SELECT unnest($1::text[])
ON CONFLICT (cluster_id) DO NOTHING;

-- name: database_status
SELECT current_setting('server_version') AS server_version,
       current_database() AS database,
       pg_database_size(current_database()) AS size_bytes,
       inet_server_addr()::text AS address,
       inet_server_port() AS port;
