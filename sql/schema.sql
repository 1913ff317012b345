-- kubeinv's database: schema `inventory`, one file per object, in the order they are created.
--
-- The migration runner (collector/store/migrating.py) applies these files, in this order and in
-- one transaction, to an empty database, and records the result as version 0100 ("schema") in
-- inventory.schema_migration. By hand: psql -v ON_ERROR_STOP=1 -1 -f sql/schema.sql
--
-- Changes after the first release: edit the object's file here AND add a migration to
-- sql/migrations/ that brings an existing database to the same state (sql/migrations/README.md).
-- tests/store/test_schema.py checks that both paths give the same catalog.
--
-- Functions, views and triggers are written CREATE OR REPLACE (and nothing else is): a database
-- built by the pre-release migrations is adopted by dropping what it has and the schema no
-- longer has (sql/migrations/pre_release_drop.sql), then running those statements, and the
-- COMMENT ON FUNCTION | VIEW ones, again (collector/store/migrating.py,
-- sql/migrations/README.md).

-- The schema, clusters and their retirements, the run ledger and the upstream reference data.
\ir schema/inventory.sql
\ir schema/tables/cluster.sql
\ir schema/tables/cluster_lifecycle.sql
\ir schema/tables/run_ledger.sql
\ir schema/tables/reference_data.sql

-- History tables (change-only), each beside the derived tables its triggers keep (node_history's
-- triggers last: they keep node_daily_delta and node_change).
\ir schema/history/cluster_version_history.sql
\ir schema/history/node_history.sql
\ir schema/history/node_daily_delta.sql
\ir schema/history/node_change.sql
\ir schema/history/node_history_triggers.sql
\ir schema/history/api_resource_history.sql
\ir schema/history/cluster_service_history.sql

-- The current state and point-in-time views of the history.
\ir schema/views/node_current.sql
\ir schema/views/api_resource_current.sql
\ir schema/views/cluster_service_current.sql
\ir schema/views/cluster_current.sql
\ir schema/views/cluster_registry.sql

-- Analytics: one file per view or function (conventions in analytics_now.sql).
\ir schema/analytics/analytics_now.sql
\ir schema/analytics/kubernetes_version.sql
\ir schema/analytics/api_resource_name.sql
\ir schema/analytics/resolve_cluster.sql
\ir schema/analytics/node_skew_current.sql
\ir schema/analytics/cluster_support.sql
\ir schema/analytics/api_removal_readiness.sql
\ir schema/analytics/api_resource_diff.sql
\ir schema/analytics/cluster_minor_daily.sql
\ir schema/analytics/node_totals_daily.sql
\ir schema/analytics/fleet_versions_daily.sql
\ir schema/analytics/capacity_daily.sql
\ir schema/analytics/changes.sql

-- The read-only role, last: it grants what exists.
\ir schema/access/inventory_reader.sql
