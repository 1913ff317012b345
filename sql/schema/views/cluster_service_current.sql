-- The services of each cluster that is not retired, as last collected.

CREATE OR REPLACE VIEW inventory.cluster_service_current AS
SELECT cluster_id, namespace, name, proxy_url
FROM inventory.cluster_service_history h
WHERE valid_to IS NULL
  AND NOT EXISTS (SELECT 1 FROM inventory.cluster_retirement r
                  WHERE r.cluster_id = h.cluster_id AND r.returned_at IS NULL);
