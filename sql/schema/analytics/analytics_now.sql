-- The analytics views and functions (sql/schema/analytics/) for analysts and capacity planners.
-- All of them read the history tables, so the daily series and changes() answer for any past
-- window, not just now.
--
-- Conventions:
--   * days are UTC dates; a day shows the state at its end (the instant the next day starts),
--     or now for today; days still to come are not returned;
--   * a cluster whose last collection failed counts with its last known state (its history rows
--     stay open);
--   * skew = server minor - kubelet minor; allowed 3 minors from server 1.28 on, 2 before;
--     a kubelet newer than the server is out of policy; no kubelet version -> NULL skew;
--   * support_status: end-of-life after the date, ending-soon within 90 days of it, supported
--     otherwise, unknown for a minor missing from the reference data
--     (sql/schema/tables/reference_data.sql).
--
-- "Now" is inventory.analytics_now(): now(), unless the session sets kubeinv.now
-- (SET kubeinv.now = '2026-01-31 12:00+00'), which evaluates the reports as if that were the
-- current time: what-if questions ("what will be end-of-life on March 1st?") and exact tests.

CREATE OR REPLACE FUNCTION inventory.analytics_now() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('kubeinv.now', true), '')::timestamptz, now()) $$;
COMMENT ON FUNCTION inventory.analytics_now() IS
    'The current time for the analytics views: now(), or the session setting kubeinv.now.';

CREATE OR REPLACE FUNCTION inventory.analytics_today() RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT (inventory.analytics_now() AT TIME ZONE 'UTC')::date $$;
COMMENT ON FUNCTION inventory.analytics_today() IS 'The current UTC date (see analytics_now).';
