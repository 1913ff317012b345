-- Every version of every served (group, version, resource) per cluster; see
-- cluster_version_history.sql for how history tables work.

CREATE TABLE inventory.api_resource_history (
    cluster_id     text NOT NULL,
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
