-- Every cluster ever seen, retired ones included, with its state.

CREATE OR REPLACE VIEW inventory.cluster_registry AS
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
