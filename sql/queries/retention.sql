-- Pruning the run ledger (setting retention.ledger; collector/store/database.py:
-- Store.prune_ledger). Each statement deletes one small batch and commits on its own, so that
-- pruning a large backlog never holds many row locks or one long transaction. History (the
-- *_history tables) is never touched.
--
-- Kept whatever their age:
--   * runs not finished (still running, or a dead collector's not yet marked abandoned);
--   * the run each cluster was last attempted by (inventory.cluster.last_run_id) and the run
--     holding each cluster's claim (inventory.cluster_claim): current state refers to them;
--   * per target (kubeconfig_path, context_name), its latest row that identified a cluster:
--     apply_outcomes_to_clusters attributes a failing target to that cluster, and
--     inventory.resolve_cluster() finds clusters by context name through it;
--   * a run that still has ledger rows (the foreign key of cluster_collection).

-- name: prune_ledger_rows
-- Delete up to $2 cluster_collection rows of finished runs that started before now() - $1.
WITH doomed AS (
    SELECT cc.run_id, cc.kubeconfig_path, cc.context_name
    FROM inventory.collection_run r
    JOIN inventory.cluster_collection cc ON cc.run_id = r.run_id
    WHERE r.started_at < now() - $1::interval
      AND r.finished_at IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM inventory.cluster c WHERE c.last_run_id = r.run_id)
      AND NOT EXISTS (SELECT 1 FROM inventory.cluster_claim cl WHERE cl.run_id = r.run_id)
      AND (cc.cluster_id IS NULL
           OR EXISTS (SELECT 1 FROM inventory.cluster_collection newer
                      WHERE newer.kubeconfig_path = cc.kubeconfig_path
                        AND newer.context_name = cc.context_name
                        AND newer.run_id > cc.run_id
                        AND newer.cluster_id IS NOT NULL))
    ORDER BY r.run_id
    LIMIT $2
)
DELETE FROM inventory.cluster_collection cc
USING doomed d
WHERE cc.run_id = d.run_id AND cc.kubeconfig_path = d.kubeconfig_path
  AND cc.context_name = d.context_name;

-- name: prune_ledger_runs
-- Delete up to $2 collection_run rows of finished runs that started before now() - $1 and
-- have no ledger rows left.
DELETE FROM inventory.collection_run r
WHERE r.run_id IN (
    SELECT old.run_id
    FROM inventory.collection_run old
    WHERE old.started_at < now() - $1::interval
      AND old.finished_at IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM inventory.cluster_collection cc WHERE cc.run_id = old.run_id)
      AND NOT EXISTS (SELECT 1 FROM inventory.cluster c WHERE c.last_run_id = old.run_id)
      AND NOT EXISTS (SELECT 1 FROM inventory.cluster_claim cl WHERE cl.run_id = old.run_id)
    ORDER BY old.run_id
    LIMIT $2
);
