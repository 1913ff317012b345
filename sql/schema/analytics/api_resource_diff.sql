CREATE OR REPLACE FUNCTION inventory.api_resource_diff(cluster_a text, cluster_b text,
                                            at timestamptz DEFAULT NULL)
RETURNS TABLE (api_group text, api_version text, resource text, only_in text)
LANGUAGE plpgsql STABLE
SET jit = off
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
