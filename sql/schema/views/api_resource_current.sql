-- API resources served now, and as they were served at any instant (the same columns).

CREATE OR REPLACE VIEW inventory.api_resource_current AS
SELECT cluster_id, api_group, api_version, resource, kind, namespaced,
       verbs, short_names, categories, preferred, singular_name
FROM inventory.api_resource_history h
WHERE valid_to IS NULL
  AND NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = h.cluster_id AND r.returned_at IS NULL);
COMMENT ON VIEW inventory.api_resource_current IS
    'API resources served now by clusters that are not retired, every served version; '
    'preferred marks the preferred version.';

CREATE OR REPLACE FUNCTION inventory.api_resource_as_of(ts timestamptz)
RETURNS SETOF inventory.api_resource_current
LANGUAGE sql STABLE
AS $$
    SELECT cluster_id, api_group, api_version, resource, kind, namespaced,
           verbs, short_names, categories, preferred, singular_name
    FROM inventory.api_resource_history
    WHERE valid_from <= ts AND (valid_to IS NULL OR valid_to > ts)
$$;
COMMENT ON FUNCTION inventory.api_resource_as_of(timestamptz) IS
    'API resources as they were served at ts (the columns of api_resource_current).';
