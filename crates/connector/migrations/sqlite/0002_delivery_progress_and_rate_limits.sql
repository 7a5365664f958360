-- Delivery engine: per-delivery step progress, and shared rate-limit state.

-- Steps of a delivery that DingTalk already accepted (JSON: completed step count, their results,
-- the step context), written fenced by the lease after each step, so a retry or another instance
-- resumes after them instead of sending those parts again.
ALTER TABLE deliveries ADD COLUMN progress TEXT;

-- GCRA state per rate-limit key (e.g. "app:<app_key> robot.group_send"): the theoretical arrival
-- time, in unix microseconds, of the next request that may go out without exceeding the quota.
CREATE TABLE rate_limits (
    key    TEXT    NOT NULL PRIMARY KEY,
    tat_us INTEGER NOT NULL
);
