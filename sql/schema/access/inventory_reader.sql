-- `inventory_reader`, a read-only role for analysts.
--
-- What it may do: read every view and every table of schema `inventory` (history, run ledger,
-- reference data, `inventory.cluster`, and the derived tables the analytics functions read; no
-- table of this schema holds a credential) and execute every function.
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
-- The migration runner (collector/store/migrating.py) calls inventory.grant_inventory_reader()
-- after the schema and after every migration, so a new view, table or function is readable at
-- once; tests/security checks that every view stays readable.

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
