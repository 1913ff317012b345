-- Every version of each cluster's kube-system services labelled kubernetes.io/cluster-service
-- (what `kubectl cluster-info` lists), with the API server proxy URL that reaches each; see cluster_version_history.sql for how history tables work.

CREATE TABLE inventory.cluster_service_history (
    cluster_id    text NOT NULL,
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
