CREATE OR REPLACE VIEW inventory.api_removal_readiness AS
WITH group_version_removal AS (
    -- A group/version stops being served entirely with its last listed removal: a served
    -- resource of that group/version the guide does not list goes with it.
    SELECT r.api_group, r.api_version, max(r.removed_in_minor) AS removed_in_minor
    FROM inventory.kubernetes_api_removal r
    GROUP BY r.api_group, r.api_version
)
SELECT a.cluster_id,
       a.api_group,
       a.api_version,
       a.resource,
       x.removed_in_minor,
       x.removed_in_minor - v.minor_version AS minors_left,
       v.minor_version                      AS server_minor,
       v.git_version,
       a.kind,
       rr.replacement
FROM inventory.api_resource_history a
JOIN inventory.cluster_version_history v
  ON v.cluster_id = a.cluster_id AND v.valid_to IS NULL
LEFT JOIN inventory.kubernetes_api_removal rr
  ON rr.api_group = a.api_group AND rr.api_version = a.api_version AND rr.resource = a.resource
LEFT JOIN group_version_removal gv
  ON gv.api_group = a.api_group AND gv.api_version = a.api_version
CROSS JOIN LATERAL (
    SELECT coalesce(rr.removed_in_minor, gv.removed_in_minor) AS removed_in_minor
) x
WHERE a.valid_to IS NULL
  AND coalesce(inventory.version_major(v.git_version), 1) = 1
  AND x.removed_in_minor > v.minor_version;
COMMENT ON VIEW inventory.api_removal_readiness IS
    'Served API versions that a later upstream minor removes: what breaks on upgrade. '
    'minors_left = removed_in_minor - server minor (1: the next minor upgrade removes it).';
