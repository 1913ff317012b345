-- The run ledger: one row per collection run and one per (run, kubeconfig, context) target.
--
-- A run holds a session-level advisory lock, keyed by its run_id, on a connection of its own
-- for its whole life (Store.start_run). PostgreSQL releases that lock when the session ends,
-- so when the collector dies (SIGKILL, OOM, power loss), its run is seen as dead as soon as the
-- server notices the closed connection, instead of looking 'running' until a timeout. Claims
-- of a dead run no longer block other collectors (sql/queries/store.sql, claim_cluster).
--
-- Key: the bigint advisory lock (0x6B72756E = 'krun' << 32) | (run_id mod 2^32). pg_locks shows
-- it as classid = 0x6B72756E, objid = run_id mod 2^32, objsubid = 1. Two runs 2^32 apart would
-- share a key; only if both were alive at the same time would one look alive for the other.

CREATE TABLE inventory.collection_run (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'ok', 'partial', 'failed', 'abandoned')),
    hostname     text,
    pid          int,
    kubeinv_version text
);
CREATE INDEX collection_run_started_at_idx ON inventory.collection_run (started_at);

CREATE TABLE inventory.cluster_collection (
    run_id                    bigint NOT NULL REFERENCES inventory.collection_run (run_id),
    kubeconfig_path           text NOT NULL,
    context_name              text NOT NULL,
    cluster_id                text,      -- NULL when the cluster could not be identified
    server_url                text,
    status                    text NOT NULL CHECK (status IN ('ok', 'partial', 'failed')),
    deduplicated              boolean NOT NULL DEFAULT false,
    error_class               text,
    error_message             text,      -- redacted before it reaches the database
    duration_ms               int NOT NULL DEFAULT 0,
    discovery_mode            text,
    insecure_skip_tls_verify  boolean NOT NULL DEFAULT false,
    node_count                int,
    api_resource_count        int,
    started_at                timestamptz,
    finished_at               timestamptz,
    PRIMARY KEY (run_id, kubeconfig_path, context_name)
);
CREATE INDEX cluster_collection_cluster_idx ON inventory.cluster_collection (cluster_id, run_id);
CREATE INDEX cluster_collection_target_idx
    ON inventory.cluster_collection (kubeconfig_path, context_name, run_id);


CREATE OR REPLACE FUNCTION inventory.run_lock_key(run_id bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (x'6B72756E'::bigint << 32) | (run_id & x'FFFFFFFF'::bigint) $$;
COMMENT ON FUNCTION inventory.run_lock_key(bigint) IS
    'The session advisory lock a collection run holds while its collector is alive.';

CREATE OR REPLACE FUNCTION inventory.run_is_live(run_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                            WHERE d.datname = pg_catalog.current_database())
          AND l.classid = x'6B72756E'::bigint::oid
          AND l.objid = (run_id & x'FFFFFFFF'::bigint)::oid)
$$;
COMMENT ON FUNCTION inventory.run_is_live(bigint) IS
    'True while the collector of this run is connected and holds its run lock.';
