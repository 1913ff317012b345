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
