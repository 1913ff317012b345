-- Schema `inventory`: everything kubeinv stores lives here.

CREATE SCHEMA IF NOT EXISTS inventory;

COMMENT ON SCHEMA inventory IS
    'kubeinv: Kubernetes clusters, nodes and API resources with change-only history.';
