-- node_skew_current parses each kubelet version once per row (the inlined helpers would be
-- repeated in every expression and sort key that uses them), and reads the current nodes from
-- node_history_current_idx, index-only.

CREATE OR REPLACE VIEW inventory.node_skew_current AS
SELECT n.cluster_id,
       n.name                                     AS node_name,
       n.kubelet_version,
       k.kubelet_minor,
       v.minor_version                            AS server_minor,
       s.skew,
       CASE WHEN s.skew IS NOT NULL
            THEN s.skew BETWEEN 0 AND inventory.allowed_kubelet_skew(v.minor_version)
       END                                        AS within_policy,
       inventory.allowed_kubelet_skew(v.minor_version) AS allowed_skew,
       v.git_version                              AS server_git_version,
       n.node_uid
FROM inventory.node_history n
LEFT JOIN inventory.cluster_version_history v
       ON v.cluster_id = n.cluster_id AND v.valid_to IS NULL
-- OFFSET 0 keeps each subquery from being flattened: the regexp runs once per row, not once
-- per expression (and sort key) that uses its result.
CROSS JOIN LATERAL (
    SELECT m[1]::int AS kubelet_major, m[2]::int AS kubelet_minor
    FROM (SELECT regexp_match(n.kubelet_version, '^\s*v?(\d+)\.(\d+)') AS m) r
    OFFSET 0
) k
CROSS JOIN LATERAL (
    SELECT CASE WHEN k.kubelet_major = coalesce(inventory.version_major(v.git_version), 1)
                THEN v.minor_version - k.kubelet_minor END AS skew
    OFFSET 0
) s
WHERE n.valid_to IS NULL;
COMMENT ON VIEW inventory.node_skew_current IS
    'Each current node: kubelet minor vs its cluster''s server minor, and whether the upstream '
    'version-skew policy allows it (0 <= skew <= 3 from 1.28 on, 2 before; newer kubelet: no).';
