-- Queries of the report commands (collector/store/reports.py, collector/report.py). Each reads
-- one public view or function of schema inventory (sql/schema/): the JSON output of a report is
-- keyed by that view's columns. $n = NULL means "every cluster".

-- name: report_now
SELECT inventory.analytics_now() AS now, inventory.analytics_today() AS today;

-- name: report_resolve_cluster
SELECT inventory.resolve_cluster($1);

-- name: report_fleet
SELECT cluster_id, context_names, server_url, git_version, minor_version, platform, provider,
       node_count, ready_node_count, cpu_capacity_millicores, memory_capacity_bytes,
       cpu_allocatable_millicores, memory_allocatable_bytes, last_collected_at, last_status,
       last_error
FROM inventory.cluster_current
WHERE $1::text IS NULL OR cluster_id = $1
ORDER BY coalesce(context_names[1], cluster_id), cluster_id;

-- name: report_version_history
SELECT cluster_id, git_version, valid_from, valid_to
FROM inventory.cluster_version_history
ORDER BY cluster_id, valid_from;

-- name: report_versions
SELECT day, minor_version, clusters, nodes
FROM inventory.fleet_versions_daily($1, $2);

-- name: report_capacity
SELECT day, cluster_id, nodes, cpu_capacity_millicores, memory_capacity_bytes, gpu_capacity
FROM inventory.capacity_daily($1, $2)
WHERE $3::text IS NULL OR cluster_id = $3;

-- name: report_skew
-- $2: true for the nodes the policy does not allow (or that cannot be checked) only
SELECT cluster_id, node_name, kubelet_version, kubelet_minor, server_minor, skew, within_policy
FROM inventory.node_skew_current
WHERE ($1::text IS NULL OR cluster_id = $1)
  AND (NOT $2::bool OR within_policy IS NOT TRUE)
ORDER BY cluster_id, within_policy NULLS FIRST, skew DESC NULLS FIRST, node_name;

-- name: report_changes
SELECT cluster_id, at, kind, subject, detail
FROM inventory.changes($1)
WHERE $2::text IS NULL OR cluster_id = $2;

-- name: report_changes_raw
-- The same rows with detail as JSON text: --output json passes it through without decoding
-- (66 MB for a week of a 10,000-node fleet whose nodes all change daily).
SELECT cluster_id, at, kind, subject, detail::text AS detail
FROM inventory.changes($1)
WHERE $2::text IS NULL OR cluster_id = $2;

-- name: report_changes_page
-- The first $3 rows (in the function's order) and how many there are in all: the terminal
-- table shows a page, and only that page crosses the wire.
SELECT cluster_id, at, kind, subject, detail, count(*) OVER () AS total
FROM inventory.changes($1)
WHERE $2::text IS NULL OR cluster_id = $2
LIMIT $3;

-- name: report_api_diff
SELECT api_group, api_version, resource, only_in
FROM inventory.api_resource_diff($1, $2);

-- name: report_eol
SELECT cluster_id, git_version, minor_version, end_of_life, days_left, support_status
FROM inventory.cluster_support
WHERE $1::text IS NULL OR cluster_id = $1
ORDER BY days_left NULLS LAST, cluster_id;

-- name: report_removals
SELECT cluster_id, api_group, api_version, resource, removed_in_minor, minors_left
FROM inventory.api_removal_readiness
WHERE $1::text IS NULL OR cluster_id = $1
ORDER BY minors_left, cluster_id, api_group, api_version, resource;
