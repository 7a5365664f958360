-- Serving instances and their heartbeats: a lease owner whose heartbeat stopped is dead, and its
-- leases are taken back at once instead of when they expire. Ids are lease owner names.
CREATE TABLE instances (
    id           TEXT        NOT NULL PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX instances_heartbeat_at ON instances (heartbeat_at);
