-- Queries of the write path and the ledger (collector/store/writing.py, database.py).
-- Every history merge is set-based: per table and cluster, one UPDATE closes the versions whose
-- content hash changed or whose key vanished, and one COPY (asyncpg copy_records_to_table,
-- straight into the history table, see writing.py) inserts the new versions. Unchanged rows are
-- never touched.

-- name: lock_cluster
-- Transaction-scoped advisory lock on one cluster: stores and claims of a cluster serialize.
SELECT pg_advisory_xact_lock(hashtextextended('kubeinv.cluster:' || $1, 0));

-- name: store_memory
-- Memory for this store transaction only (see collector/store/writing.py). The statement
-- triggers on node_history (sql/schema/history/node_history_triggers.sql) keep every row a
-- statement inserts in one transition table; within work_mem it stays in memory, beyond it
-- spills to a temporary file that is written once and read back by the trigger. Each row is counted at its allocation size, the next power of two: a ~2.2 KB node
-- version takes 4 KB, so a first store of 20,000 nodes needs ~82 MB (it spilled at 64 MB: 5,197
-- writes and 10,396 reads of 8 KB under strace). 256 MB holds ~60,000 such versions; memory is
-- only taken as rows arrive, so small stores use little.
SELECT set_config('work_mem', '256MB', true);

-- name: upsert_cluster
-- $1 cluster_id, $2 cluster_id_source, $3 server_url, $4 provider, $5 context_names,
-- $6 discovery_mode, $7 at, $8 status, $9 error, $10 run_id
INSERT INTO inventory.cluster AS c (
    cluster_id, cluster_id_source, server_url, provider, context_names, discovery_mode,
    first_seen_at, last_collected_at, last_attempt_at, last_status, last_error, last_run_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, $8, $9, $10)
ON CONFLICT (cluster_id) DO UPDATE SET
    cluster_id_source = EXCLUDED.cluster_id_source,
    server_url        = EXCLUDED.server_url,
    provider          = EXCLUDED.provider,
    context_names     = EXCLUDED.context_names,
    discovery_mode    = coalesce(EXCLUDED.discovery_mode, c.discovery_mode),
    last_collected_at = EXCLUDED.last_collected_at,
    last_attempt_at   = EXCLUDED.last_attempt_at,
    last_status       = EXCLUDED.last_status,
    last_error        = EXCLUDED.last_error,
    last_run_id       = EXCLUDED.last_run_id;

-- name: version_time
-- The time of the versions a store writes. Read after lock_cluster, not now(): a transaction
-- that began earlier but waited for the lock must still write later than the one it waited for.
SELECT clock_timestamp();

-- ---- cluster version ----------------------------------------------------------------------

-- name: current_version_hash
SELECT content_hash FROM inventory.cluster_version_history
WHERE cluster_id = $1 AND valid_to IS NULL;

-- name: close_version
UPDATE inventory.cluster_version_history SET valid_to = $2
WHERE cluster_id = $1 AND valid_to IS NULL;

-- name: insert_version
-- The columns of collector.store.writing.VERSION_COLUMNS: VersionRecord's fields, in order.
INSERT INTO inventory.cluster_version_history (
    cluster_id, major, minor, minor_version, git_version, git_commit, git_tree_state,
    build_date, go_version, compiler, platform, emulation_major, emulation_minor,
    content_hash, valid_from)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15);

-- ---- nodes (key: node_uid) ----------------------------------------------------------------

-- name: current_node_hashes
SELECT node_uid, content_hash, first_seen_at FROM inventory.node_history
WHERE cluster_id = $1 AND valid_to IS NULL;

-- name: has_node_history
SELECT EXISTS (SELECT 1 FROM inventory.node_history WHERE cluster_id = $1);

-- name: earlier_first_seen
-- Nodes that come back after they disappeared keep their first_seen_at. $2: node_uids.
SELECT node_uid, min(first_seen_at) FROM inventory.node_history
WHERE cluster_id = $1 AND node_uid = ANY($2::text[])
GROUP BY node_uid;

-- name: close_nodes
-- $1 cluster_id, $2 at, $3 node_uids whose current version changed or disappeared
UPDATE inventory.node_history SET valid_to = $2
WHERE cluster_id = $1 AND valid_to IS NULL AND node_uid = ANY($3::text[]);

-- ---- API resources (key: api_group, api_version, resource) --------------------------------

-- name: current_api_resource_hashes
SELECT api_group, api_version, resource, content_hash FROM inventory.api_resource_history
WHERE cluster_id = $1 AND valid_to IS NULL;

-- name: close_api_resources
-- $3, $4, $5: parallel arrays of the (group, version, resource) keys to close
UPDATE inventory.api_resource_history h SET valid_to = $2
FROM unnest($3::text[], $4::text[], $5::text[]) AS k(api_group, api_version, resource)
WHERE h.cluster_id = $1 AND h.valid_to IS NULL
  AND h.api_group = k.api_group AND h.api_version = k.api_version AND h.resource = k.resource;

-- ---- cluster services (key: namespace, name) ----------------------------------------------

-- name: current_service_hashes
SELECT namespace, name, content_hash FROM inventory.cluster_service_history
WHERE cluster_id = $1 AND valid_to IS NULL;

-- name: close_services
UPDATE inventory.cluster_service_history h SET valid_to = $2
FROM unnest($3::text[], $4::text[]) AS k(namespace, name)
WHERE h.cluster_id = $1 AND h.valid_to IS NULL
  AND h.namespace = k.namespace AND h.name = k.name;

-- name: insert_services
-- Services are a handful per cluster: inserted from arrays, no staging table.
INSERT INTO inventory.cluster_service_history (
    cluster_id, namespace, name, proxy_url, content_hash, valid_from)
SELECT $1, s.namespace, s.name, s.proxy_url, s.content_hash, $2
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])
     AS s(namespace, name, proxy_url, content_hash);

-- ---- claims -------------------------------------------------------------------------------

-- name: claim_cluster
-- Take the cluster for run $2 unless another run holds a live claim. A claim blocks while
--   * its run is still collecting: not finished, its collector alive (it holds its run lock,
--     see sql/schema/tables/run_ledger.sql) and the claim younger than $4 (a hung collector's claim
--     expires), or
--   * the claim is younger than $3 (the daemon's "collected in this interval") and its run
--     either finished normally or stored the cluster after claiming it.
-- The claim of a dead collector (SIGKILL, crash) blocks nothing, unless that collector stored
-- the cluster before it died. Claiming again for the same run is allowed. Returns a row when
-- claimed.
INSERT INTO inventory.cluster_claim AS cl (cluster_id, run_id, claimed_at)
VALUES ($1, $2, now())
ON CONFLICT (cluster_id) DO UPDATE SET run_id = EXCLUDED.run_id, claimed_at = EXCLUDED.claimed_at
WHERE cl.run_id = EXCLUDED.run_id
   OR NOT EXISTS (
       SELECT 1 FROM inventory.collection_run r
       WHERE r.run_id = cl.run_id
         AND ((r.finished_at IS NULL AND cl.claimed_at >= now() - $4::interval
               AND inventory.run_is_live(r.run_id))
              OR (cl.claimed_at >= now() - $3::interval
                  AND (r.status IN ('ok', 'partial', 'failed')
                       OR EXISTS (SELECT 1 FROM inventory.cluster c
                                  WHERE c.cluster_id = cl.cluster_id
                                    AND c.last_collected_at >= cl.claimed_at)))))
RETURNING run_id;

-- name: claim_holder
-- alive: the holding run is not finished and its collector still holds its run lock.
SELECT cl.run_id, cl.claimed_at, r.started_at, r.finished_at, r.status, r.hostname, r.pid,
       (r.finished_at IS NULL AND inventory.run_is_live(r.run_id)) AS alive
FROM inventory.cluster_claim cl
LEFT JOIN inventory.collection_run r ON r.run_id = cl.run_id
WHERE cl.cluster_id = $1;

-- ---- ledger -------------------------------------------------------------------------------

-- name: start_run
-- Run on the run's own connection: the new run takes its session-level run lock in the same
-- statement, so that no other session ever sees it without the lock (see run_is_live).
WITH r AS (
    INSERT INTO inventory.collection_run (hostname, pid, kubeinv_version)
    VALUES ($1, $2, $3)
    RETURNING run_id, started_at
)
SELECT r.run_id, r.started_at, pg_advisory_lock(inventory.run_lock_key(r.run_id))
FROM r;

-- name: run_is_live
SELECT inventory.run_is_live($1);

-- name: abandon_dead_runs
-- Runs whose collector died (not finished, run lock not held): 'abandoned'. Their finished
-- clusters were committed one transaction each; the rest kept their state. A run that is in
-- fact alive but lost its connection (a database restart) sets its own status when it ends.
UPDATE inventory.collection_run SET status = 'abandoned', finished_at = now()
WHERE finished_at IS NULL AND NOT inventory.run_is_live(run_id)
RETURNING run_id;

-- name: finish_run
UPDATE inventory.collection_run SET finished_at = now(), status = $2
WHERE run_id = $1
RETURNING run_id;

-- name: insert_outcome
INSERT INTO inventory.cluster_collection (
    run_id, kubeconfig_path, context_name, cluster_id, server_url, status, deduplicated,
    error_class, error_message, duration_ms, discovery_mode, insecure_skip_tls_verify,
    node_count, api_resource_count, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (run_id, kubeconfig_path, context_name) DO UPDATE SET
    cluster_id = EXCLUDED.cluster_id, server_url = EXCLUDED.server_url,
    status = EXCLUDED.status, deduplicated = EXCLUDED.deduplicated,
    error_class = EXCLUDED.error_class, error_message = EXCLUDED.error_message,
    duration_ms = EXCLUDED.duration_ms, discovery_mode = EXCLUDED.discovery_mode,
    insecure_skip_tls_verify = EXCLUDED.insecure_skip_tls_verify,
    node_count = EXCLUDED.node_count, api_resource_count = EXCLUDED.api_resource_count,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at;

-- name: apply_outcomes_to_clusters
-- After the ledger rows of run $1 are written: set each touched cluster's last status.
-- A context that could not identify its cluster (unreachable, auth failure) is attributed to
-- the cluster it identified last time (inventory.target_cluster, which this run updates only
-- afterwards, and which outlives the pruned ledger), so that a cluster that went down shows
-- 'failed'. A cluster collected through one context is 'ok' even if another of its contexts
-- failed.
WITH outcome AS (
    SELECT cc.*, coalesce(cc.cluster_id, prev.cluster_id) AS resolved_id
    FROM inventory.cluster_collection cc
    LEFT JOIN inventory.target_cluster prev
           ON cc.cluster_id IS NULL
          AND prev.kubeconfig_path = cc.kubeconfig_path AND prev.context_name = cc.context_name
          AND prev.run_id < cc.run_id
    WHERE cc.run_id = $1
), per_cluster AS (
    SELECT resolved_id AS cluster_id,
           CASE WHEN bool_or(status = 'ok' AND NOT deduplicated) THEN 'ok'
                WHEN bool_or(status = 'partial' AND NOT deduplicated) THEN 'partial'
                WHEN bool_or(status <> 'failed') THEN NULL   -- collected elsewhere: keep
                ELSE 'failed' END AS status,
           (array_agg(error_class || ': ' || coalesce(error_message, '')
                      ORDER BY deduplicated, context_name)
                FILTER (WHERE error_class IS NOT NULL AND status <> 'ok'))[1] AS error,
           array_agg(DISTINCT context_name ORDER BY context_name)
                FILTER (WHERE cluster_id IS NOT NULL) AS reached
    FROM outcome
    WHERE resolved_id IS NOT NULL
    GROUP BY resolved_id
)
UPDATE inventory.cluster c SET
    last_status     = coalesce(p.status, c.last_status),
    last_error      = CASE WHEN p.status IS NULL THEN c.last_error
                           WHEN p.status = 'ok' THEN NULL
                           ELSE p.error END,
    last_attempt_at = now(),
    last_run_id     = $1,
    context_names   = coalesce(p.reached, c.context_names)
FROM per_cluster p
WHERE c.cluster_id = p.cluster_id;
