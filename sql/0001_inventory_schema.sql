-- 0001: schema `inventory`: clusters, change-only history, run ledger, public views.
--
-- History tables hold one row per version of a thing: valid_from is when that content was
-- first stored, valid_to when it stopped being current (NULL while current). A new version is
-- written only when `content_hash` (the hash of the normalized record, computed by the
-- collector) changes, so re-collecting an unchanged fleet writes nothing.
--
-- Never edit this file once applied: the migrations runner refuses to start when an applied
-- migration's checksum changed. Add a new numbered file instead.

CREATE SCHEMA IF NOT EXISTS inventory;

COMMENT ON SCHEMA inventory IS
    'kubeinv: Kubernetes clusters, nodes and API resources with change-only history.';

-- --- clusters (current state only; versioned parts live in the *_history tables) ----------

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
    last_run_id        bigint
);

COMMENT ON TABLE inventory.cluster IS
    'One row per cluster ever collected (key: kube-system namespace UID, or sha256 fallback).';
COMMENT ON COLUMN inventory.cluster.context_names IS
    'Contexts that reached the cluster in the latest run that reached it.';

CREATE INDEX cluster_last_collected_at_idx ON inventory.cluster (last_collected_at);

-- Claims: which run collects a cluster in the current interval (see Store.claim_cluster).
CREATE TABLE inventory.cluster_claim (
    cluster_id  text PRIMARY KEY,
    run_id      bigint NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);

-- --- history ---------------------------------------------------------------------------------

CREATE TABLE inventory.cluster_version_history (
    cluster_id      text NOT NULL REFERENCES inventory.cluster (cluster_id),
    git_version     text NOT NULL,
    major           text,
    minor           text,                    -- as served, e.g. '28+'
    minor_version   int,                     -- parsed: '28+' -> 28
    git_commit      text,
    git_tree_state  text,
    build_date      timestamptz,
    go_version      text,
    compiler        text,
    platform        text,
    emulation_major text,
    emulation_minor text,
    content_hash    text NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    PRIMARY KEY (cluster_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX cluster_version_history_current_idx
    ON inventory.cluster_version_history (cluster_id) WHERE valid_to IS NULL;
CREATE INDEX cluster_version_history_valid_to_idx
    ON inventory.cluster_version_history (valid_to) WHERE valid_to IS NOT NULL;

CREATE TABLE inventory.node_history (
    cluster_id                        text NOT NULL REFERENCES inventory.cluster (cluster_id),
    node_uid                          text NOT NULL,
    name                              text NOT NULL,
    created_at                        timestamptz,
    roles                             text[] NOT NULL DEFAULT '{}',
    ready                             boolean,
    unschedulable                     boolean NOT NULL DEFAULT false,
    kubelet_version                   text,
    container_runtime_version         text,
    os_image                          text,
    kernel_version                    text,
    architecture                      text,
    operating_system                  text,
    internal_ip                       inet,
    external_ip                       inet,
    provider_id                       text,
    cloud_provider                    text,
    region                            text,
    zone                              text,
    instance_type                     text,
    cpu_capacity_millicores           bigint,
    memory_capacity_bytes             bigint,
    pods_capacity                     bigint,
    ephemeral_storage_capacity_bytes  bigint,
    gpu_capacity                      bigint,
    cpu_allocatable_millicores        bigint,
    memory_allocatable_bytes          bigint,
    pods_allocatable                  bigint,
    capacity                          jsonb NOT NULL DEFAULT '{}',
    allocatable                       jsonb NOT NULL DEFAULT '{}',
    labels                            jsonb NOT NULL DEFAULT '{}',
    taints                            jsonb NOT NULL DEFAULT '[]',
    conditions                        jsonb NOT NULL DEFAULT '[]',
    first_seen_at                     timestamptz NOT NULL,   -- first version of this node_uid
    problems                          text[] NOT NULL DEFAULT '{}',  -- normalizer findings
    content_hash                      text NOT NULL,
    valid_from                        timestamptz NOT NULL,
    valid_to                          timestamptz,
    PRIMARY KEY (cluster_id, node_uid, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
COMMENT ON TABLE inventory.node_history IS
    'Every version of every node (key: cluster_id, node_uid). Current rows: valid_to IS NULL.';
CREATE UNIQUE INDEX node_history_current_idx
    ON inventory.node_history (cluster_id, node_uid) INCLUDE (content_hash)
    WHERE valid_to IS NULL;
CREATE INDEX node_history_cluster_valid_from_idx
    ON inventory.node_history (cluster_id, valid_from);
CREATE INDEX node_history_valid_from_idx ON inventory.node_history (valid_from);
CREATE INDEX node_history_valid_to_idx
    ON inventory.node_history (valid_to) WHERE valid_to IS NOT NULL;

CREATE TABLE inventory.api_resource_history (
    cluster_id     text NOT NULL REFERENCES inventory.cluster (cluster_id),
    api_group      text NOT NULL,            -- '' for the core group
    api_version    text NOT NULL,            -- the version alone: v1, v1beta1
    resource       text NOT NULL,
    kind           text NOT NULL,
    namespaced     boolean NOT NULL,
    verbs          text[] NOT NULL DEFAULT '{}',
    short_names    text[] NOT NULL DEFAULT '{}',
    categories     text[] NOT NULL DEFAULT '{}',
    singular_name  text,
    preferred      boolean NOT NULL DEFAULT false,
    content_hash   text NOT NULL,
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    PRIMARY KEY (cluster_id, api_group, api_version, resource, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
COMMENT ON TABLE inventory.api_resource_history IS
    'Every version of every served (group, version, resource) per cluster; all served versions.';
CREATE UNIQUE INDEX api_resource_history_current_idx
    ON inventory.api_resource_history (cluster_id, api_group, api_version, resource)
    INCLUDE (content_hash) WHERE valid_to IS NULL;
CREATE INDEX api_resource_history_cluster_valid_from_idx
    ON inventory.api_resource_history (cluster_id, valid_from);
CREATE INDEX api_resource_history_valid_from_idx
    ON inventory.api_resource_history (valid_from);
CREATE INDEX api_resource_history_valid_to_idx
    ON inventory.api_resource_history (valid_to) WHERE valid_to IS NOT NULL;

CREATE TABLE inventory.cluster_service_history (
    cluster_id    text NOT NULL REFERENCES inventory.cluster (cluster_id),
    namespace     text NOT NULL,
    name          text NOT NULL,
    proxy_url     text NOT NULL,
    content_hash  text NOT NULL,
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    PRIMARY KEY (cluster_id, namespace, name, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX cluster_service_history_current_idx
    ON inventory.cluster_service_history (cluster_id, namespace, name) WHERE valid_to IS NULL;

-- --- run ledger ------------------------------------------------------------------------------

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

-- --- public views ----------------------------------------------------------------------------

CREATE VIEW inventory.node_current AS
SELECT cluster_id, node_uid, name, created_at,
       roles, ready, unschedulable,
       kubelet_version, container_runtime_version, os_image, kernel_version,
       architecture, operating_system,
       internal_ip, external_ip, provider_id, cloud_provider, region, zone, instance_type,
       cpu_capacity_millicores, memory_capacity_bytes, pods_capacity,
       ephemeral_storage_capacity_bytes, gpu_capacity,
       cpu_allocatable_millicores, memory_allocatable_bytes, pods_allocatable,
       capacity, allocatable, labels, taints, conditions, first_seen_at
FROM inventory.node_history
WHERE valid_to IS NULL;
COMMENT ON VIEW inventory.node_current IS 'Current nodes of every cluster (last known state).';

CREATE VIEW inventory.api_resource_current AS
SELECT cluster_id, api_group, api_version, resource, kind, namespaced,
       verbs, short_names, categories, preferred, singular_name
FROM inventory.api_resource_history
WHERE valid_to IS NULL;
COMMENT ON VIEW inventory.api_resource_current IS
    'API resources served now, every served version; preferred marks the preferred version.';

CREATE VIEW inventory.cluster_service_current AS
SELECT cluster_id, namespace, name, proxy_url
FROM inventory.cluster_service_history
WHERE valid_to IS NULL;

CREATE VIEW inventory.cluster_current AS
SELECT c.cluster_id, c.context_names, c.server_url,
       v.git_version, v.minor_version, v.platform,
       c.provider,
       coalesce(n.node_count, 0)        AS node_count,
       coalesce(n.ready_node_count, 0)  AS ready_node_count,
       n.cpu_capacity_millicores, n.memory_capacity_bytes,
       n.cpu_allocatable_millicores, n.memory_allocatable_bytes,
       c.last_collected_at, c.last_status, c.last_error,
       c.cluster_id_source, c.first_seen_at, c.discovery_mode,
       v.major, n.gpu_capacity,
       (c.last_status = 'failed') AS stale
FROM inventory.cluster c
LEFT JOIN inventory.cluster_version_history v
       ON v.cluster_id = c.cluster_id AND v.valid_to IS NULL
LEFT JOIN LATERAL (
    SELECT count(*)                                   AS node_count,
           count(*) FILTER (WHERE nh.ready)           AS ready_node_count,
           sum(nh.cpu_capacity_millicores)::bigint    AS cpu_capacity_millicores,
           sum(nh.memory_capacity_bytes)::bigint      AS memory_capacity_bytes,
           sum(nh.cpu_allocatable_millicores)::bigint AS cpu_allocatable_millicores,
           sum(nh.memory_allocatable_bytes)::bigint   AS memory_allocatable_bytes,
           sum(nh.gpu_capacity)::bigint               AS gpu_capacity
    FROM inventory.node_history nh
    WHERE nh.cluster_id = c.cluster_id AND nh.valid_to IS NULL
) n ON true;
COMMENT ON VIEW inventory.cluster_current IS
    'One row per cluster: last known version, node totals, last collection status.';

-- The version history is a table with exactly the documented columns (plus a few more).

CREATE FUNCTION inventory.node_as_of(ts timestamptz)
RETURNS SETOF inventory.node_current
LANGUAGE sql STABLE
AS $$
    SELECT cluster_id, node_uid, name, created_at,
           roles, ready, unschedulable,
           kubelet_version, container_runtime_version, os_image, kernel_version,
           architecture, operating_system,
           internal_ip, external_ip, provider_id, cloud_provider, region, zone, instance_type,
           cpu_capacity_millicores, memory_capacity_bytes, pods_capacity,
           ephemeral_storage_capacity_bytes, gpu_capacity,
           cpu_allocatable_millicores, memory_allocatable_bytes, pods_allocatable,
           capacity, allocatable, labels, taints, conditions, first_seen_at
    FROM inventory.node_history
    WHERE valid_from <= ts AND (valid_to IS NULL OR valid_to > ts)
$$;
COMMENT ON FUNCTION inventory.node_as_of(timestamptz) IS
    'Nodes as they were at ts (the columns of node_current).';

CREATE FUNCTION inventory.api_resource_as_of(ts timestamptz)
RETURNS SETOF inventory.api_resource_current
LANGUAGE sql STABLE
AS $$
    SELECT cluster_id, api_group, api_version, resource, kind, namespaced,
           verbs, short_names, categories, preferred, singular_name
    FROM inventory.api_resource_history
    WHERE valid_from <= ts AND (valid_to IS NULL OR valid_to > ts)
$$;
COMMENT ON FUNCTION inventory.api_resource_as_of(timestamptz) IS
    'API resources as they were served at ts (the columns of api_resource_current).';
