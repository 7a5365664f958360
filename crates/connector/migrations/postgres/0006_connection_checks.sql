-- The last test of each connection (the console's connection list shows it). Kept apart from
-- `connections` so a test never races an edit's optimistic check on `updated_at`.
CREATE TABLE connection_checks (
    connection_id UUID        NOT NULL PRIMARY KEY,
    checked_at    TIMESTAMPTZ NOT NULL,
    ok            INTEGER     NOT NULL,                    -- 1 or 0
    message       TEXT        NOT NULL,
    code          TEXT                                     -- DingTalk's code when it refused
);
