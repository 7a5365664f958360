-- Delivery engine: per-delivery step progress, and rate-limit state shared by every instance.

-- Steps of a delivery that DingTalk already accepted (completed step count, their results, the
-- step context), written fenced by the lease after each step, so a retry or another instance
-- resumes after them instead of sending those parts again.
ALTER TABLE deliveries ADD COLUMN progress JSONB;

-- GCRA state per rate-limit key (e.g. "app:<app_key> robot.group_send"): the theoretical arrival
-- time, in unix microseconds, of the next request that may go out without exceeding the quota.
-- Each instance updates it with one atomic statement; instances' clocks are assumed NTP-synced.
CREATE TABLE rate_limits (
    key    TEXT   NOT NULL PRIMARY KEY,
    tat_us BIGINT NOT NULL
);
