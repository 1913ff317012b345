-- The daily series (cluster_minor_daily, node_totals_daily, fleet_versions_daily,
-- capacity_daily): a history row counts on day d when it was current at the end of d:
-- valid_from < d+1 00:00 UTC <= valid_to. That is the day range
-- [date(valid_from), date(valid_to) - 1], open-ended for current rows; today counts the rows
-- current now (valid_from < now <= valid_to, or open).
--
-- Rows current at the end of some day of the window: still open (valid_to IS NULL), or closed
-- at or after the window's first day ends (or after now, for a pretend now). Two branches so
-- that each is one index-only range scan.
CREATE OR REPLACE FUNCTION inventory.cluster_minor_daily(from_day date, to_day date)
RETURNS TABLE (day date, cluster_id text, minor_version int)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH b AS (
        SELECT from_day AS d0,
               least(to_day, inventory.analytics_today()) AS d1,
               inventory.analytics_now() AS now_ts
    ), b2 AS (
        SELECT b.*, ((b.d1 + 1)::timestamp AT TIME ZONE 'UTC') AS end_ts,
               least(((b.d0 + 1)::timestamp AT TIME ZONE 'UTC'), b.now_ts) AS closed_after
        FROM b
    ), rows_in_window AS (
        SELECT v.cluster_id, v.minor_version, v.valid_from, v.valid_to
        FROM inventory.cluster_version_history v, b2
        WHERE v.valid_to IS NULL AND v.valid_from < b2.end_ts AND v.valid_from < b2.now_ts
        UNION ALL
        SELECT v.cluster_id, v.minor_version, v.valid_from, v.valid_to
        FROM inventory.cluster_version_history v, b2
        WHERE v.valid_to >= b2.closed_after AND v.valid_from < b2.end_ts
          AND v.valid_from < b2.now_ts
    )
    SELECT b2.d0 + i, r.cluster_id, r.minor_version
    FROM rows_in_window r, b2
    CROSS JOIN LATERAL generate_series(
        greatest((r.valid_from AT TIME ZONE 'UTC')::date, b2.d0) - b2.d0,
        CASE WHEN r.valid_to IS NULL OR r.valid_to > b2.now_ts THEN b2.d1
             ELSE least((r.valid_to AT TIME ZONE 'UTC')::date - 1, b2.d1) END - b2.d0) AS i
$$;
COMMENT ON FUNCTION inventory.cluster_minor_daily(date, date) IS
    'Each day from_day..to_day (UTC, not after today) and each cluster known then: its minor.';
