-- Clusters come and go: retirement, and the bookkeeping it needs.
--
-- A cluster is *reached* by a run when a target of that run identified it, or when a target of
-- that run (same kubeconfig path and context name) identified it the last time it identified
-- anything: a cluster that is down but still configured is reached, and stays `stale`. A
-- cluster that no run has reached for longer than `lifecycle.retire_after` is *retired* at the
-- end of a run (collector/store/database.py, Store.retire_unreached), or by hand
-- (`kubeinv clusters retire`). Retiring closes every open version of the cluster's version,
-- nodes, API resources and services at the retirement time, in one transaction, and records
-- the retirement here; history is never rewritten and nothing is deleted. A retired cluster
-- whose inventory is stored again comes back: the store ends its retirement (returned_at) and
-- writes new versions from that run on.
--
-- Daily series need no change: they read the history, whose versions end at the retirement
-- time, so a cluster retired on day d no longer counts from d on (a day shows the state at its
-- end) and counts again from the day it comes back.

-- --- which cluster each target identified last -----------------------------------------------
--
-- Kept at the end of every run from its ledger rows. It is not the ledger: the ledger is pruned
-- after retention.ledger, and a target that has been failing for longer must still reach the
-- cluster it identified.

CREATE TABLE inventory.target_cluster (
    kubeconfig_path  text NOT NULL,
    context_name     text NOT NULL,
    cluster_id       text NOT NULL,
    identified_at    timestamptz NOT NULL,
    run_id           bigint NOT NULL,
    PRIMARY KEY (kubeconfig_path, context_name)
);
CREATE INDEX target_cluster_cluster_idx ON inventory.target_cluster (cluster_id);
COMMENT ON TABLE inventory.target_cluster IS
    'The cluster each target (kubeconfig path, context) identified the last time it identified '
    'one. A failing target still reaches that cluster, which then stays stale, never retired.';

-- --- retirements -----------------------------------------------------------------------------

CREATE TABLE inventory.cluster_retirement (
    cluster_id       text NOT NULL,
    retired_at       timestamptz NOT NULL,
    retired_by       text NOT NULL CHECK (retired_by IN ('unseen', 'manual')),
    run_id           bigint,          -- the run at whose end it was retired ('unseen')
    last_reached_at  timestamptz,     -- when a run last reached it, as of the retirement
    returned_at      timestamptz,     -- when its inventory was stored again; NULL: retired
    PRIMARY KEY (cluster_id, retired_at),
    CHECK (returned_at IS NULL OR returned_at > retired_at)
);
CREATE UNIQUE INDEX cluster_retirement_open_idx
    ON inventory.cluster_retirement (cluster_id) WHERE returned_at IS NULL;
CREATE INDEX cluster_retirement_retired_at_idx ON inventory.cluster_retirement (retired_at);
CREATE INDEX cluster_retirement_returned_at_idx
    ON inventory.cluster_retirement (returned_at) WHERE returned_at IS NOT NULL;
COMMENT ON TABLE inventory.cluster_retirement IS
    'Every retirement of a cluster: when, why (unseen: no run reached it for retire_after; '
    'manual: kubeinv clusters retire), and when it came back (returned_at; NULL while retired).';

-- Retire one cluster at `at` (the caller holds the cluster's lock: sql/queries/store.sql
-- lock_cluster). Closes every open version of the cluster; returns false when it was retired
-- already. One call is one cluster; the caller's transaction makes it atomic.
CREATE OR REPLACE FUNCTION inventory.retire_cluster(cid text, at timestamptz, why text,
                                         by_run bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inventory.cluster_retirement r
               WHERE r.cluster_id = cid AND r.returned_at IS NULL) THEN
        RETURN false;
    END IF;
    UPDATE inventory.cluster_version_history SET valid_to = at
    WHERE cluster_id = cid AND valid_to IS NULL;
    UPDATE inventory.node_history SET valid_to = at
    WHERE cluster_id = cid AND valid_to IS NULL;
    UPDATE inventory.api_resource_history SET valid_to = at
    WHERE cluster_id = cid AND valid_to IS NULL;
    UPDATE inventory.cluster_service_history SET valid_to = at
    WHERE cluster_id = cid AND valid_to IS NULL;
    INSERT INTO inventory.cluster_retirement (cluster_id, retired_at, retired_by, run_id,
                                              last_reached_at)
    SELECT cid, at, why, by_run, c.last_reached_at
    FROM inventory.cluster c WHERE c.cluster_id = cid;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION inventory.retire_cluster(text, timestamptz, text, bigint) IS
    'Retire a cluster at `at`: close its open versions and record the retirement (kubeinv '
    'calls it, holding the cluster lock, one transaction per cluster).';

-- --- clusters a demo made -------------------------------------------------------------------
--
-- `kubeinv demo` works in a scratch database of its own. Only `kubeinv demo --database-url DSN`
-- writes elsewhere, and it refuses a database holding any cluster not listed here.

CREATE TABLE inventory.demo_cluster (
    cluster_id  text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE inventory.demo_cluster IS
    'Clusters that kubeinv demo created (simulated): a demo may write only where every '
    'cluster is one of these.';
