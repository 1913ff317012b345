-- Clusters: the current row of each cluster ever collected, and the claims that say which run
-- collects it in the current interval. Versioned parts live in the history tables
-- (sql/schema/history/).

CREATE TABLE inventory.cluster (
    cluster_id         text PRIMARY KEY,
    cluster_id_source  text NOT NULL DEFAULT 'kube-system-uid'
                       CHECK (cluster_id_source IN ('kube-system-uid', 'server-ca-hash')),
    server_url         text,
    provider           text NOT NULL DEFAULT 'other',
    context_names      text[] NOT NULL DEFAULT '{}',
    discovery_mode     text,
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    last_collected_at  timestamptz,          -- last time its inventory was stored
    last_attempt_at    timestamptz,          -- last run that tried it (stored or failed)
    last_status        text CHECK (last_status IN ('ok', 'partial', 'failed')),
    last_error         text,                 -- error class and redacted message; NULL when ok
    last_run_id        bigint,
    last_reached_at    timestamptz,          -- start of the latest run that reached it
    last_reached_run_id bigint
);

COMMENT ON TABLE inventory.cluster IS
    'One row per cluster ever collected (key: kube-system namespace UID, or sha256 fallback).';
COMMENT ON COLUMN inventory.cluster.context_names IS
    'Contexts that reached the cluster in the latest run that reached it.';
COMMENT ON COLUMN inventory.cluster.last_reached_at IS
    'Start of the latest run that reached the cluster (identified it, or ran a target that '
    'identified it before); retirement counts retire_after from here.';

CREATE INDEX cluster_last_collected_at_idx ON inventory.cluster (last_collected_at);

-- Claims: which run collects a cluster in the current interval (see Store.claim_cluster).
CREATE TABLE inventory.cluster_claim (
    cluster_id  text PRIMARY KEY,
    run_id      bigint NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);

