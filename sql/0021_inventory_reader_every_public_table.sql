-- 0021: inventory_reader reads every table of schema inventory except the collector's
-- bookkeeping (cluster_claim, schema_migration), instead of a fixed list (0020): tables that
-- analytics functions read (e.g. derived tables kept by triggers) are then readable too, and no
-- table of this schema holds a credential. A later migration that adds a view, a table or a
-- function ends with `SELECT inventory.grant_inventory_reader();`.

CREATE OR REPLACE FUNCTION inventory.grant_inventory_reader() RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'inventory_reader') THEN
        RAISE NOTICE 'role inventory_reader does not exist: read-only grants skipped';
        RETURN false;
    END IF;
    EXECUTE 'GRANT USAGE ON SCHEMA inventory TO inventory_reader';
    FOR obj IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'inventory' AND c.relkind IN ('v', 'm', 'r', 'p')
          AND c.relname NOT IN ('cluster_claim', 'schema_migration')
    LOOP
        EXECUTE format('GRANT SELECT ON inventory.%I TO inventory_reader', obj.relname);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure AS signature
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'inventory' AND p.prokind = 'f'
          AND p.proname <> 'grant_inventory_reader'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO inventory_reader', obj.signature);
    END LOOP;
    RETURN true;
END;
$$;
REVOKE ALL ON FUNCTION inventory.grant_inventory_reader() FROM PUBLIC;

SELECT inventory.grant_inventory_reader();
