-- 0020: `inventory_reader`, a read-only role for analysts (issue #6).
--
-- What it may do: read the public interface of schema `inventory` (DESIGN.md, "SQL: schema
-- inventory"): every view, every function, and the tables that interface documents and that
-- its functions read: the history tables, the run ledger, the reference data, and
-- `inventory.cluster` (the current row of each cluster; it holds no credential).
-- What it may not do: write anything (no INSERT, UPDATE, DELETE, TRUNCATE anywhere), create
-- objects in the schema, use the sequence, or read the collector's own bookkeeping
-- (`cluster_claim`, `schema_migration`).
--
-- It is a NOLOGIN group role: grant it to people, e.g.
--     CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE inventory_reader;
--     GRANT inventory_reader TO grafana;
--
-- Roles belong to the whole PostgreSQL cluster, grants to one database. So the role is created
-- only when missing (two databases migrating at once both tolerate the other creating it), and
-- the grants are made in every database that is migrated. When the migrating user may not
-- create roles and the role does not exist yet, the grants are skipped with a NOTICE; a DBA can
-- then run `CREATE ROLE inventory_reader NOLOGIN; SELECT inventory.grant_inventory_reader();`.
-- A later migration that adds a view or a public table calls inventory.grant_inventory_reader()
-- (or grants the object itself); tests/security checks that every view stays readable.

CREATE FUNCTION inventory.grant_inventory_reader() RETURNS boolean
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
    -- every view of the schema
    FOR obj IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'inventory' AND c.relkind IN ('v', 'm')
    LOOP
        EXECUTE format('GRANT SELECT ON inventory.%I TO inventory_reader', obj.relname);
    END LOOP;
    -- the documented tables (history, run ledger, reference data, clusters)
    FOR obj IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'inventory' AND c.relkind IN ('r', 'p')
          AND c.relname IN ('cluster', 'cluster_version_history', 'node_history',
                            'api_resource_history', 'cluster_service_history',
                            'collection_run', 'cluster_collection',
                            'kubernetes_release', 'kubernetes_api_removal', 'reference_source')
    LOOP
        EXECUTE format('GRANT SELECT ON inventory.%I TO inventory_reader', obj.relname);
    END LOOP;
    -- every function (PUBLIC has EXECUTE by default; explicit, in case a DBA revokes that)
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
COMMENT ON FUNCTION inventory.grant_inventory_reader() IS
    'Grants role inventory_reader read access to the public interface of schema inventory '
    '(views, functions, documented tables); false when the role does not exist.';
REVOKE ALL ON FUNCTION inventory.grant_inventory_reader() FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'inventory_reader') THEN
        IF EXISTS (SELECT 1 FROM pg_roles
                   WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
            BEGIN
                CREATE ROLE inventory_reader NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
                    NOREPLICATION NOBYPASSRLS;
                COMMENT ON ROLE inventory_reader IS
                    'kubeinv: read-only access to the inventory schema (views, history, ledger)';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it at the same moment
            END;
        END IF;
    END IF;
END;
$$;

SELECT inventory.grant_inventory_reader();
