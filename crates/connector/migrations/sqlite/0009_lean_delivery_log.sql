-- A leaner delivery log: every sync send writes one row here and one attempt, so each index is
-- paid for on every message. Kept: what some query reads (checked with EXPLAIN QUERY PLAN).
--
-- Dropped, no query uses them: the claim walks deliveries_group_unfinished, and listings filter
-- with `$n IS NULL OR …`, which SQLite's planner cannot answer from (status, next_attempt_at),
-- (group_key, seq), (created_at) or (status, seq); they read deliveries newest first by seq.
DROP INDEX IF EXISTS deliveries_due;
DROP INDEX IF EXISTS deliveries_group_seq;
DROP INDEX IF EXISTS deliveries_created_at;
DROP INDEX IF EXISTS deliveries_status_seq;

-- What (status, seq) served: finding the leases of an owner (release) and live leases (expiry,
-- taking back a dead instance's). Only in-flight deliveries hold a lease, and an ack clears it,
-- so these stay as small as the work in flight.
CREATE INDEX deliveries_lease_owner ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX deliveries_lease_expiry ON deliveries (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;

-- Attempts keyed by their primary key alone (one b-tree instead of a table and its index).
CREATE TABLE delivery_attempts_by_key (
    delivery_id TEXT    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,                          -- 1, 2, … per delivery
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT    NOT NULL
                CHECK (outcome IN ('success', 'transient_error', 'permanent_error', 'token_rejected')),
    error       TEXT,                                      -- JSON: http_status, code, message, request_id
    PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
INSERT INTO delivery_attempts_by_key (delivery_id, attempt, started_at, finished_at, outcome, error)
SELECT delivery_id, attempt, started_at, finished_at, outcome, error FROM delivery_attempts;
DROP TABLE delivery_attempts;
ALTER TABLE delivery_attempts_by_key RENAME TO delivery_attempts;
