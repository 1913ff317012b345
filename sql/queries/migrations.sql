-- Queries of the migrations runner (collector/store/migrating.py).

-- name: lock_migrations
-- Session advisory lock: one migrator at a time per database. $1: lock key.
SELECT pg_advisory_lock($1::bigint);

-- name: unlock_migrations
SELECT pg_advisory_unlock($1::bigint);

-- name: create_migration_table
CREATE SCHEMA IF NOT EXISTS inventory;
CREATE TABLE IF NOT EXISTS inventory.schema_migration (
    version       text PRIMARY KEY,
    name          text NOT NULL,
    checksum      text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    execution_ms  int NOT NULL
);

-- name: applied_migrations
SELECT version, name, checksum, applied_at FROM inventory.schema_migration ORDER BY version;

-- name: record_migration
INSERT INTO inventory.schema_migration (version, name, checksum, execution_ms)
VALUES ($1, $2, $3, $4);

-- name: has_grant_inventory_reader
-- Whether the read-only role's grant function exists yet (sql/schema/access/inventory_reader.sql).
SELECT to_regprocedure('inventory.grant_inventory_reader()') IS NOT NULL;

-- name: grant_inventory_reader
-- Grants inventory_reader read access to everything public in schema inventory; does nothing
-- (returns false) when that role does not exist.
SELECT inventory.grant_inventory_reader();
