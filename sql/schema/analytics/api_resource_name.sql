CREATE OR REPLACE FUNCTION inventory.api_resource_name(api_group text, api_version text, resource text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN api_group = '' THEN api_version
                  ELSE api_group || '/' || api_version END || '/' || resource $$;
COMMENT ON FUNCTION inventory.api_resource_name(text, text, text) IS
    'group/version/resource as kubectl spells it (core group: v1/pods).';
