-- dtc storage, PostgreSQL dialect. Same tables and meaning as migrations/sqlite.

CREATE TABLE connections (
    id             UUID        NOT NULL PRIMARY KEY,
    name           TEXT        NOT NULL UNIQUE,
    kind           TEXT        NOT NULL CHECK (kind IN ('app_robot', 'webhook_robot')),
    description    TEXT        NOT NULL DEFAULT '',
    app_key        TEXT,
    robot_code     TEXT,
    keywords       JSONB       NOT NULL DEFAULT '[]',      -- JSON array of strings
    qps_quota      INTEGER,                                -- NULL: the default applied above the store
    sealed_secrets TEXT        NOT NULL,                   -- secrets::seal of a JSON object
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id         UUID        NOT NULL PRIMARY KEY,
    token_hash TEXT        NOT NULL UNIQUE,                -- sha256 hex of the bearer token
    label      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- The delivery log and the durable queue in one table: a delivery is queued, claimed under a
-- lease (FOR UPDATE SKIP LOCKED), and acked (fenced by lease owner) to delivered, retrying or failed.
CREATE TABLE deliveries (
    -- Order of acceptance: a request answered 202 committed before the next one got its seq.
    seq              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               UUID        NOT NULL UNIQUE,
    -- No foreign key: the delivery log outlives a deleted connection; the sender fails queued
    -- deliveries whose connection is gone.
    connection_id    UUID        NOT NULL,
    action           TEXT        NOT NULL,
    group_key        TEXT        NOT NULL,                 -- same key: sent in seq order
    input            JSONB       NOT NULL,                 -- validated action input, no secrets
    status           TEXT        NOT NULL
                     CHECK (status IN ('queued', 'in_flight', 'delivered', 'retrying', 'failed')),
    mode             TEXT        NOT NULL CHECK (mode IN ('sync', 'async')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    last_error       JSONB,
    result           JSONB,
    idempotency_key  TEXT,
    request_hash     TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
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
    delivery_id UUID        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER     NOT NULL,                      -- 1, 2, … per delivery
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    outcome     TEXT        NOT NULL
                CHECK (outcome IN ('success', 'transient_error', 'permanent_error', 'token_rejected')),
    error       JSONB,                                     -- http_status, code, message, request_id
    PRIMARY KEY (delivery_id, attempt)
);
