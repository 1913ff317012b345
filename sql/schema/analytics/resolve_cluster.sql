-- A cluster named by its cluster_id, or by a context name: one that reached it in its latest
-- run, else one that reached it in any earlier run. Errors name the problem.
CREATE OR REPLACE FUNCTION inventory.resolve_cluster(name text) RETURNS text
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
