-- 0011: views and functions for analysts and capacity planners (DESIGN.md, "SQL for analysts
-- and planners"; issue #7). All of them read the history tables, so the daily series and
-- changes() answer for any past window, not just now.
--
-- Conventions (binding, from DESIGN.md):
--   * days are UTC dates; a day shows the state at its end (the instant the next day starts),
--     or now for today; days still to come are not returned;
--   * a cluster whose last collection failed counts with its last known state (its history rows
--     stay open);
--   * skew = server minor - kubelet minor; allowed 3 minors from server 1.28 on, 2 before;
--     a kubelet newer than the server is out of policy; no kubelet version -> NULL skew;
--   * support_status: end-of-life after the date, ending-soon within 90 days of it, supported
--     otherwise, unknown for a minor missing from the reference data (0010).
--
-- "Now" is inventory.analytics_now(): now(), unless the session sets kubeinv.now
-- (SET kubeinv.now = '2026-01-31 12:00+00'), which evaluates the reports as if that were the
-- current time: what-if questions ("what will be end-of-life on March 1st?") and exact tests.

CREATE FUNCTION inventory.analytics_now() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('kubeinv.now', true), '')::timestamptz, now()) $$;
COMMENT ON FUNCTION inventory.analytics_now() IS
    'The current time for the analytics views: now(), or the session setting kubeinv.now.';

CREATE FUNCTION inventory.analytics_today() RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT (inventory.analytics_now() AT TIME ZONE 'UTC')::date $$;
COMMENT ON FUNCTION inventory.analytics_today() IS 'The current UTC date (see analytics_now).';

-- 'v1.28.3-eks-1234' -> 1 / 28 ; NULL when the text is not a Kubernetes version.
CREATE FUNCTION inventory.version_major(version text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$ SELECT (regexp_match(version, '^\s*v?(\d+)\.(\d+)'))[1]::int $$;

CREATE FUNCTION inventory.version_minor(version text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$ SELECT (regexp_match(version, '^\s*v?(\d+)\.(\d+)'))[2]::int $$;

-- The kubelet skew the upstream version-skew policy allows for a given server minor (1.x).
CREATE FUNCTION inventory.allowed_kubelet_skew(server_minor int) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$ SELECT CASE WHEN server_minor >= 28 THEN 3 ELSE 2 END $$;

CREATE FUNCTION inventory.api_resource_name(api_group text, api_version text, resource text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN api_group = '' THEN api_version
                  ELSE api_group || '/' || api_version END || '/' || resource $$;
COMMENT ON FUNCTION inventory.api_resource_name(text, text, text) IS
    'group/version/resource as kubectl spells it (core group: v1/pods).';

-- A cluster named by its cluster_id, or by a context name: one that reached it in its latest
-- run, else one that reached it in any earlier run. Errors name the problem.
CREATE FUNCTION inventory.resolve_cluster(name text) RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    matches text[];
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'no cluster named' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM inventory.cluster c WHERE c.cluster_id = name;
    IF FOUND THEN
        RETURN name;
    END IF;
    SELECT array_agg(c.cluster_id ORDER BY c.cluster_id) INTO matches
    FROM inventory.cluster c WHERE name = ANY (c.context_names);
    IF matches IS NULL THEN
        SELECT array_agg(DISTINCT cc.cluster_id ORDER BY cc.cluster_id) INTO matches
        FROM inventory.cluster_collection cc
        WHERE cc.context_name = name AND cc.cluster_id IS NOT NULL;
    END IF;
    IF matches IS NULL THEN
        RAISE EXCEPTION 'no cluster has the id or context name %', quote_literal(name)
            USING ERRCODE = 'no_data_found';
    ELSIF cardinality(matches) > 1 THEN
        RAISE EXCEPTION 'context name % reaches % clusters (%): name one by cluster id',
            quote_literal(name), cardinality(matches), array_to_string(matches, ', ')
            USING ERRCODE = 'cardinality_violation';
    END IF;
    RETURN matches[1];
END
$$;
COMMENT ON FUNCTION inventory.resolve_cluster(text) IS
    'cluster_id of a cluster named by its id or by a context name; raises when unknown/ambiguous.';

-- --- node_skew_current ------------------------------------------------------------------------

CREATE VIEW inventory.node_skew_current AS
SELECT n.cluster_id,
       n.name                                     AS node_name,
       n.kubelet_version,
       inventory.version_minor(n.kubelet_version) AS kubelet_minor,
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
CROSS JOIN LATERAL (
    SELECT CASE
             WHEN inventory.version_major(n.kubelet_version)
                  = coalesce(inventory.version_major(v.git_version), 1)
             THEN v.minor_version - inventory.version_minor(n.kubelet_version)
           END AS skew
) s
WHERE n.valid_to IS NULL;
COMMENT ON VIEW inventory.node_skew_current IS
    'Each current node: kubelet minor vs its cluster''s server minor, and whether the upstream '
    'version-skew policy allows it (0 <= skew <= 3 from 1.28 on, 2 before; newer kubelet: no).';

-- --- cluster_support ------------------------------------------------------------------------

CREATE VIEW inventory.cluster_support AS
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
      AND r.minor_version = v.minor_version;
COMMENT ON VIEW inventory.cluster_support IS
    'Each cluster''s server minor against the upstream end-of-life date (reference data, 0010).';

-- --- api_removal_readiness ------------------------------------------------------------------

CREATE VIEW inventory.api_removal_readiness AS
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

-- --- api_resource_diff ----------------------------------------------------------------------

CREATE FUNCTION inventory.api_resource_diff(cluster_a text, cluster_b text,
                                            at timestamptz DEFAULT NULL)
RETURNS TABLE (api_group text, api_version text, resource text, only_in text)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
DECLARE
    a_id text := inventory.resolve_cluster(cluster_a);
    b_id text := inventory.resolve_cluster(cluster_b);
BEGIN
    RETURN QUERY
    WITH served AS (
        SELECT h.cluster_id, h.api_group, h.api_version, h.resource
        FROM inventory.api_resource_history h
        WHERE h.cluster_id IN (a_id, b_id)
          AND CASE WHEN at IS NULL THEN h.valid_to IS NULL
                   ELSE h.valid_from <= at AND (h.valid_to IS NULL OR h.valid_to > at) END
    ),
    sa AS (SELECT s.api_group AS g, s.api_version AS v, s.resource AS r
           FROM served s WHERE s.cluster_id = a_id),
    sb AS (SELECT s.api_group AS g, s.api_version AS v, s.resource AS r
           FROM served s WHERE s.cluster_id = b_id)
    SELECT coalesce(sa.g, sb.g), coalesce(sa.v, sb.v), coalesce(sa.r, sb.r),
           CASE WHEN sb.r IS NULL THEN 'a' ELSE 'b' END
    FROM sa FULL JOIN sb ON sa.g = sb.g AND sa.v = sb.v AND sa.r = sb.r
    WHERE sa.r IS NULL OR sb.r IS NULL
    ORDER BY 1, 2, 3, 4;
END
$$;
COMMENT ON FUNCTION inventory.api_resource_diff(text, text, timestamptz) IS
    '(group, version, resource) served by only one of two clusters (named by id or context '
    'name), now or as of `at`. only_in: ''a'' or ''b''.';

-- --- daily series ---------------------------------------------------------------------------
--
-- A history row counts on day d when it was current at the end of d: valid_from < d+1 00:00 UTC
-- <= valid_to. That is the day range [date(valid_from), date(valid_to) - 1], open-ended for
-- current rows; today counts the rows current now (valid_from < now <= valid_to, or open).

CREATE FUNCTION inventory.cluster_minor_daily(from_day date, to_day date)
RETURNS TABLE (day date, cluster_id text, minor_version int)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH b AS (
        SELECT from_day AS d0,
               least(to_day, inventory.analytics_today()) AS d1,
               inventory.analytics_now() AS now_ts
    )
    SELECT b.d0 + i, v.cluster_id, v.minor_version
    FROM b
    JOIN inventory.cluster_version_history v
      ON v.valid_from < ((b.d1 + 1)::timestamp AT TIME ZONE 'UTC')
     AND v.valid_from < b.now_ts
     AND (v.valid_to IS NULL OR v.valid_to > b.now_ts
          OR v.valid_to >= ((b.d0 + 1)::timestamp AT TIME ZONE 'UTC'))
    CROSS JOIN LATERAL generate_series(
        greatest((v.valid_from AT TIME ZONE 'UTC')::date, b.d0) - b.d0,
        CASE WHEN v.valid_to IS NULL OR v.valid_to > b.now_ts THEN b.d1
             ELSE least((v.valid_to AT TIME ZONE 'UTC')::date - 1, b.d1) END - b.d0) AS i
$$;
COMMENT ON FUNCTION inventory.cluster_minor_daily(date, date) IS
    'Each day from_day..to_day (UTC, not after today) and each cluster known then: its minor.';

CREATE FUNCTION inventory.node_totals_daily(from_day date, to_day date)
RETURNS TABLE (day date, cluster_id text, nodes bigint, cpu_capacity_millicores numeric,
               memory_capacity_bytes numeric, gpu_capacity numeric)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH b AS (
        SELECT from_day AS d0,
               least(to_day, inventory.analytics_today()) AS d1,
               inventory.analytics_now() AS now_ts
    )
    SELECT b.d0 + i, n.cluster_id, count(*), sum(n.cpu_capacity_millicores),
           sum(n.memory_capacity_bytes), sum(n.gpu_capacity)
    FROM b
    JOIN inventory.node_history n
      ON n.valid_from < ((b.d1 + 1)::timestamp AT TIME ZONE 'UTC')
     AND n.valid_from < b.now_ts
     AND (n.valid_to IS NULL OR n.valid_to > b.now_ts
          OR n.valid_to >= ((b.d0 + 1)::timestamp AT TIME ZONE 'UTC'))
    CROSS JOIN LATERAL generate_series(
        greatest((n.valid_from AT TIME ZONE 'UTC')::date, b.d0) - b.d0,
        CASE WHEN n.valid_to IS NULL OR n.valid_to > b.now_ts THEN b.d1
             ELSE least((n.valid_to AT TIME ZONE 'UTC')::date - 1, b.d1) END - b.d0) AS i
    GROUP BY 1, 2
$$;
COMMENT ON FUNCTION inventory.node_totals_daily(date, date) IS
    'Each day and cluster: node count and capacity sums at the end of that day (UTC).';

CREATE FUNCTION inventory.fleet_versions_daily(from_day date, to_day date)
RETURNS TABLE (day date, minor_version int, clusters bigint, nodes bigint)
LANGUAGE sql STABLE
AS $$
    SELECT c.day, c.minor_version, count(*), coalesce(sum(n.nodes), 0)::bigint
    FROM inventory.cluster_minor_daily(from_day, to_day) c
    LEFT JOIN inventory.node_totals_daily(from_day, to_day) n
           ON n.day = c.day AND n.cluster_id = c.cluster_id
    GROUP BY c.day, c.minor_version
    ORDER BY c.day, c.minor_version NULLS LAST
$$;
COMMENT ON FUNCTION inventory.fleet_versions_daily(date, date) IS
    'Clusters and nodes per server minor at the end of each UTC day from_day..to_day '
    '(today: now; later days are not returned). Nodes count under their cluster''s minor.';

CREATE FUNCTION inventory.capacity_daily(from_day date, to_day date)
RETURNS TABLE (day date, cluster_id text, nodes bigint, cpu_capacity_millicores bigint,
               memory_capacity_bytes bigint, gpu_capacity bigint)
LANGUAGE sql STABLE
AS $$
    SELECT c.day, c.cluster_id, coalesce(n.nodes, 0)::bigint,
           coalesce(n.cpu_capacity_millicores, 0)::bigint,
           coalesce(n.memory_capacity_bytes, 0)::bigint,
           coalesce(n.gpu_capacity, 0)::bigint
    FROM inventory.cluster_minor_daily(from_day, to_day) c
    LEFT JOIN inventory.node_totals_daily(from_day, to_day) n
           ON n.day = c.day AND n.cluster_id = c.cluster_id
    ORDER BY c.day, c.cluster_id
$$;
COMMENT ON FUNCTION inventory.capacity_daily(date, date) IS
    'Each UTC day from_day..to_day and each cluster known then: nodes and capacity at the end '
    'of the day (today: now). Capacity in base units: millicores, bytes, GPUs.';

-- --- changes --------------------------------------------------------------------------------

CREATE FUNCTION inventory.changes(since timestamptz)
RETURNS TABLE (cluster_id text, at timestamptz, kind text, subject text, detail jsonb)
LANGUAGE sql STABLE
AS $$
    WITH first_collection AS (
        -- A cluster's first collection: its first stored version (the first_seen_at of the
        -- cluster row when no version was ever stored).
        SELECT c.cluster_id, c.context_names, c.server_url,
               coalesce((SELECT min(v.valid_from) FROM inventory.cluster_version_history v
                         WHERE v.cluster_id = c.cluster_id), c.first_seen_at) AS first_at
        FROM inventory.cluster c
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
    ),
    node_pairs AS (
        -- Versions of nodes that start at or after `since`, each with the version before it.
        SELECT n AS cur, p AS prev, f.first_at
        FROM inventory.node_history n
        JOIN first_collection f ON f.cluster_id = n.cluster_id
        LEFT JOIN LATERAL (
            SELECT pn FROM inventory.node_history pn
            WHERE pn.cluster_id = n.cluster_id AND pn.node_uid = n.node_uid
              AND pn.valid_from < n.valid_from
            ORDER BY pn.valid_from DESC LIMIT 1
        ) lp(p) ON true
        WHERE n.valid_from >= since
    ),
    node_added AS (
        SELECT (x.cur).cluster_id, (x.cur).valid_from AS at, 'node-added'::text AS kind,
               (x.cur).name AS subject,
               jsonb_build_object('node_uid', (x.cur).node_uid,
                                  'kubelet_version', (x.cur).kubelet_version,
                                  'roles', to_jsonb((x.cur).roles),
                                  'instance_type', (x.cur).instance_type,
                                  'cpu_capacity_millicores', (x.cur).cpu_capacity_millicores,
                                  'memory_capacity_bytes', (x.cur).memory_capacity_bytes) AS detail
        FROM node_pairs x
        WHERE ((x.prev) IS NULL OR (x.prev).valid_to < (x.cur).valid_from)  -- new, or back
          AND (x.cur).valid_from > x.first_at               -- not part of the first collection
    ),
    node_changed AS (
        SELECT n.cluster_id, n.valid_from AS at, 'node-changed'::text AS kind, n.name AS subject,
               d.detail
        FROM node_pairs x
        CROSS JOIN LATERAL (SELECT (x.cur).*) n
        CROSS JOIN LATERAL (SELECT (x.prev).*) p
        CROSS JOIN LATERAL (SELECT
'{}'::jsonb
        || CASE WHEN p.name IS DISTINCT FROM n.name
           THEN jsonb_build_object('name', jsonb_build_object('old', to_jsonb(p.name), 'new', to_jsonb(n.name))) ELSE '{}'::jsonb END
        || CASE WHEN p.created_at IS DISTINCT FROM n.created_at
           THEN jsonb_build_object('created_at', jsonb_build_object('old', to_jsonb(p.created_at), 'new', to_jsonb(n.created_at))) ELSE '{}'::jsonb END
        || CASE WHEN p.roles IS DISTINCT FROM n.roles
           THEN jsonb_build_object('roles', jsonb_build_object('old', to_jsonb(p.roles), 'new', to_jsonb(n.roles))) ELSE '{}'::jsonb END
        || CASE WHEN p.ready IS DISTINCT FROM n.ready
           THEN jsonb_build_object('ready', jsonb_build_object('old', to_jsonb(p.ready), 'new', to_jsonb(n.ready))) ELSE '{}'::jsonb END
        || CASE WHEN p.unschedulable IS DISTINCT FROM n.unschedulable
           THEN jsonb_build_object('unschedulable', jsonb_build_object('old', to_jsonb(p.unschedulable), 'new', to_jsonb(n.unschedulable))) ELSE '{}'::jsonb END
        || CASE WHEN p.kubelet_version IS DISTINCT FROM n.kubelet_version
           THEN jsonb_build_object('kubelet_version', jsonb_build_object('old', to_jsonb(p.kubelet_version), 'new', to_jsonb(n.kubelet_version))) ELSE '{}'::jsonb END
        || CASE WHEN p.container_runtime_version IS DISTINCT FROM n.container_runtime_version
           THEN jsonb_build_object('container_runtime_version', jsonb_build_object('old', to_jsonb(p.container_runtime_version), 'new', to_jsonb(n.container_runtime_version))) ELSE '{}'::jsonb END
        || CASE WHEN p.os_image IS DISTINCT FROM n.os_image
           THEN jsonb_build_object('os_image', jsonb_build_object('old', to_jsonb(p.os_image), 'new', to_jsonb(n.os_image))) ELSE '{}'::jsonb END
        || CASE WHEN p.kernel_version IS DISTINCT FROM n.kernel_version
           THEN jsonb_build_object('kernel_version', jsonb_build_object('old', to_jsonb(p.kernel_version), 'new', to_jsonb(n.kernel_version))) ELSE '{}'::jsonb END
        || CASE WHEN p.architecture IS DISTINCT FROM n.architecture
           THEN jsonb_build_object('architecture', jsonb_build_object('old', to_jsonb(p.architecture), 'new', to_jsonb(n.architecture))) ELSE '{}'::jsonb END
        || CASE WHEN p.operating_system IS DISTINCT FROM n.operating_system
           THEN jsonb_build_object('operating_system', jsonb_build_object('old', to_jsonb(p.operating_system), 'new', to_jsonb(n.operating_system))) ELSE '{}'::jsonb END
        || CASE WHEN p.internal_ip IS DISTINCT FROM n.internal_ip
           THEN jsonb_build_object('internal_ip', jsonb_build_object('old', to_jsonb(p.internal_ip), 'new', to_jsonb(n.internal_ip))) ELSE '{}'::jsonb END
        || CASE WHEN p.external_ip IS DISTINCT FROM n.external_ip
           THEN jsonb_build_object('external_ip', jsonb_build_object('old', to_jsonb(p.external_ip), 'new', to_jsonb(n.external_ip))) ELSE '{}'::jsonb END
        || CASE WHEN p.provider_id IS DISTINCT FROM n.provider_id
           THEN jsonb_build_object('provider_id', jsonb_build_object('old', to_jsonb(p.provider_id), 'new', to_jsonb(n.provider_id))) ELSE '{}'::jsonb END
        || CASE WHEN p.cloud_provider IS DISTINCT FROM n.cloud_provider
           THEN jsonb_build_object('cloud_provider', jsonb_build_object('old', to_jsonb(p.cloud_provider), 'new', to_jsonb(n.cloud_provider))) ELSE '{}'::jsonb END
        || CASE WHEN p.region IS DISTINCT FROM n.region
           THEN jsonb_build_object('region', jsonb_build_object('old', to_jsonb(p.region), 'new', to_jsonb(n.region))) ELSE '{}'::jsonb END
        || CASE WHEN p.zone IS DISTINCT FROM n.zone
           THEN jsonb_build_object('zone', jsonb_build_object('old', to_jsonb(p.zone), 'new', to_jsonb(n.zone))) ELSE '{}'::jsonb END
        || CASE WHEN p.instance_type IS DISTINCT FROM n.instance_type
           THEN jsonb_build_object('instance_type', jsonb_build_object('old', to_jsonb(p.instance_type), 'new', to_jsonb(n.instance_type))) ELSE '{}'::jsonb END
        || CASE WHEN p.cpu_capacity_millicores IS DISTINCT FROM n.cpu_capacity_millicores
           THEN jsonb_build_object('cpu_capacity_millicores', jsonb_build_object('old', to_jsonb(p.cpu_capacity_millicores), 'new', to_jsonb(n.cpu_capacity_millicores))) ELSE '{}'::jsonb END
        || CASE WHEN p.memory_capacity_bytes IS DISTINCT FROM n.memory_capacity_bytes
           THEN jsonb_build_object('memory_capacity_bytes', jsonb_build_object('old', to_jsonb(p.memory_capacity_bytes), 'new', to_jsonb(n.memory_capacity_bytes))) ELSE '{}'::jsonb END
        || CASE WHEN p.pods_capacity IS DISTINCT FROM n.pods_capacity
           THEN jsonb_build_object('pods_capacity', jsonb_build_object('old', to_jsonb(p.pods_capacity), 'new', to_jsonb(n.pods_capacity))) ELSE '{}'::jsonb END
        || CASE WHEN p.ephemeral_storage_capacity_bytes IS DISTINCT FROM n.ephemeral_storage_capacity_bytes
           THEN jsonb_build_object('ephemeral_storage_capacity_bytes', jsonb_build_object('old', to_jsonb(p.ephemeral_storage_capacity_bytes), 'new', to_jsonb(n.ephemeral_storage_capacity_bytes))) ELSE '{}'::jsonb END
        || CASE WHEN p.gpu_capacity IS DISTINCT FROM n.gpu_capacity
           THEN jsonb_build_object('gpu_capacity', jsonb_build_object('old', to_jsonb(p.gpu_capacity), 'new', to_jsonb(n.gpu_capacity))) ELSE '{}'::jsonb END
        || CASE WHEN p.cpu_allocatable_millicores IS DISTINCT FROM n.cpu_allocatable_millicores
           THEN jsonb_build_object('cpu_allocatable_millicores', jsonb_build_object('old', to_jsonb(p.cpu_allocatable_millicores), 'new', to_jsonb(n.cpu_allocatable_millicores))) ELSE '{}'::jsonb END
        || CASE WHEN p.memory_allocatable_bytes IS DISTINCT FROM n.memory_allocatable_bytes
           THEN jsonb_build_object('memory_allocatable_bytes', jsonb_build_object('old', to_jsonb(p.memory_allocatable_bytes), 'new', to_jsonb(n.memory_allocatable_bytes))) ELSE '{}'::jsonb END
        || CASE WHEN p.pods_allocatable IS DISTINCT FROM n.pods_allocatable
           THEN jsonb_build_object('pods_allocatable', jsonb_build_object('old', to_jsonb(p.pods_allocatable), 'new', to_jsonb(n.pods_allocatable))) ELSE '{}'::jsonb END
        || CASE WHEN p.capacity IS DISTINCT FROM n.capacity
           THEN jsonb_build_object('capacity', jsonb_build_object('old', to_jsonb(p.capacity), 'new', to_jsonb(n.capacity))) ELSE '{}'::jsonb END
        || CASE WHEN p.allocatable IS DISTINCT FROM n.allocatable
           THEN jsonb_build_object('allocatable', jsonb_build_object('old', to_jsonb(p.allocatable), 'new', to_jsonb(n.allocatable))) ELSE '{}'::jsonb END
        || CASE WHEN p.labels IS DISTINCT FROM n.labels
           THEN jsonb_build_object('labels', jsonb_build_object('old', to_jsonb(p.labels), 'new', to_jsonb(n.labels))) ELSE '{}'::jsonb END
        || CASE WHEN p.taints IS DISTINCT FROM n.taints
           THEN jsonb_build_object('taints', jsonb_build_object('old', to_jsonb(p.taints), 'new', to_jsonb(n.taints))) ELSE '{}'::jsonb END
        || CASE WHEN p.conditions IS DISTINCT FROM n.conditions
           THEN jsonb_build_object('conditions', jsonb_build_object('old', to_jsonb(p.conditions), 'new', to_jsonb(n.conditions))) ELSE '{}'::jsonb END
            AS detail) d
        WHERE p.valid_to = n.valid_from
          AND d.detail <> '{}'::jsonb
    ),
    node_removed AS (
        SELECT n.cluster_id, n.valid_to AS at, 'node-removed'::text AS kind, n.name AS subject,
               jsonb_build_object('node_uid', n.node_uid, 'kubelet_version', n.kubelet_version,
                                  'roles', to_jsonb(n.roles)) AS detail
        FROM inventory.node_history n
        WHERE n.valid_to >= since
          AND NOT EXISTS (
              SELECT 1 FROM inventory.node_history s
              WHERE s.cluster_id = n.cluster_id AND s.node_uid = n.node_uid
                AND s.valid_from = n.valid_to)
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
                AND p.valid_to = a.valid_from)
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
                AND s.valid_from = a.valid_to)
    )
    SELECT x.cluster_id, x.at, x.kind, x.subject, x.detail FROM (
        SELECT * FROM cluster_added
        UNION ALL SELECT * FROM version_changed
        UNION ALL SELECT * FROM node_added
        UNION ALL SELECT * FROM node_changed
        UNION ALL SELECT * FROM node_removed
        UNION ALL SELECT * FROM api_added
        UNION ALL SELECT * FROM api_removed
    ) x
    WHERE x.at <= inventory.analytics_now()
    ORDER BY x.at, x.cluster_id,
             array_position(ARRAY['cluster-added', 'version', 'node-added', 'node-changed',
                                  'node-removed', 'api-added', 'api-removed'], x.kind),
             x.subject
$$;
COMMENT ON FUNCTION inventory.changes(timestamptz) IS
    'What changed at or after `since`: cluster-added (one row for a cluster''s first '
    'collection), version, node-added, node-removed, node-changed (detail: each changed field '
    'as {"old", "new"}), api-added, api-removed.';
