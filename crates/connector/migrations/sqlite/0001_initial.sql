-- dtc storage, SQLite dialect. Timestamps are INTEGER unix microseconds (UTC): they compare and
-- index as numbers, and match PostgreSQL's microsecond precision so both stores round-trip alike.
-- JSON columns are TEXT holding JSON.

CREATE TABLE connections (
    id             TEXT    NOT NULL PRIMARY KEY,           -- uuid, hyphenated
    name           TEXT    NOT NULL UNIQUE,
    kind           TEXT    NOT NULL CHECK (kind IN ('app_robot', 'webhook_robot')),
    description    TEXT    NOT NULL DEFAULT '',
    app_key        TEXT,
    robot_code     TEXT,
    keywords       TEXT    NOT NULL DEFAULT '[]',          -- JSON array of strings
    qps_quota      INTEGER,                                -- NULL: the default applied above the store
    sealed_secrets TEXT    NOT NULL,                       -- secrets::seal of a JSON object
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    token_hash TEXT    NOT NULL UNIQUE,                    -- sha256 hex of the bearer token
    label      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- The delivery log and the durable queue in one table: a delivery is queued, claimed under a
-- lease, and acked (fenced by lease owner) to delivered, retrying or failed.
CREATE TABLE deliveries (
    -- Order of acceptance. AUTOINCREMENT so a seq is never reused, even after deletes.
    seq              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,              -- uuid, hyphenated
    -- No foreign key: the delivery log outlives a deleted connection; the sender fails queued
    -- deliveries whose connection is gone.
    connection_id    TEXT    NOT NULL,
    action           TEXT    NOT NULL,
    group_key        TEXT    NOT NULL,                     -- same key: sent in seq order
    input            TEXT    NOT NULL,                     -- JSON, validated action input, no secrets
    status           TEXT    NOT NULL
                     CHECK (status IN ('queued', 'in_flight', 'delivered', 'retrying', 'failed')),
    mode             TEXT    NOT NULL CHECK (mode IN ('sync', 'async')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,                                 -- JSON
    result           TEXT,                                 -- JSON
    idempotency_key  TEXT,
    request_hash     TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    -- Idempotency keys are scoped to a connection (NULL keys never conflict).
    UNIQUE (connection_id, idempotency_key)
);

-- Claiming: the head (lowest seq) of each group with unfinished work, and live leases per group.
CREATE INDEX deliveries_group_unfinished ON deliveries (group_key, seq)
    WHERE status IN ('queued', 'in_flight', 'retrying');
CREATE INDEX deliveries_group_in_flight ON deliveries (group_key)
    WHERE status = 'in_flight';
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
-- Listing, newest first, by status, connection, group or time.
CREATE INDEX deliveries_status_seq ON deliveries (status, seq);
CREATE INDEX deliveries_connection_seq ON deliveries (connection_id, seq);
CREATE INDEX deliveries_group_seq ON deliveries (group_key, seq);
CREATE INDEX deliveries_created_at ON deliveries (created_at);

CREATE TABLE delivery_attempts (
    delivery_id TEXT    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,                          -- 1, 2, … per delivery
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT    NOT NULL
                CHECK (outcome IN ('success', 'transient_error', 'permanent_error', 'token_rejected')),
    error       TEXT,                                      -- JSON: http_status, code, message, request_id
    PRIMARY KEY (delivery_id, attempt)
);
