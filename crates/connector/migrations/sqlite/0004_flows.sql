-- Flows and their runs (SQLite dialect; the same tables and meaning as migrations/postgres).
-- A flow's document is stored without its secrets (they read "<set>"); the webhook auth secrets
-- are sealed beside it. Every apply is a new version; a run keeps the version it started with.
CREATE TABLE flows (
    id             TEXT        NOT NULL PRIMARY KEY,
    name           TEXT        NOT NULL UNIQUE,
    version        INTEGER     NOT NULL,
    trigger_kind   TEXT        NOT NULL CHECK (trigger_kind IN ('webhook', 'schedule', 'manual')),
    document       TEXT        NOT NULL,
    sealed_secrets TEXT,                                   -- secrets::seal of the auth secrets
    next_fire_at   INTEGER,                               -- schedules: the next due time
    created_at     INTEGER     NOT NULL,
    updated_at     INTEGER     NOT NULL
);
CREATE INDEX flows_next_fire_at ON flows (next_fire_at) WHERE next_fire_at IS NOT NULL;

CREATE TABLE flow_versions (
    flow_id        TEXT        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    version        INTEGER     NOT NULL,
    document       TEXT        NOT NULL,
    sealed_secrets TEXT,
    created_at     INTEGER     NOT NULL,
    PRIMARY KEY (flow_id, version)
);

-- A run walks its flow's steps: `step_index` is the step whose deliveries are out (or the
-- number of steps once finished); `context` holds the trigger, the variables and each finished
-- step's result. No foreign key to flows: the run log outlives a deleted flow.
CREATE TABLE runs (
    seq          INTEGER     NOT NULL PRIMARY KEY AUTOINCREMENT,
    id           TEXT        NOT NULL UNIQUE,
    flow_id      TEXT        NOT NULL,
    flow_name    TEXT        NOT NULL,
    flow_version INTEGER     NOT NULL,
    trigger_kind TEXT        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    step_index   INTEGER     NOT NULL,
    context      TEXT        NOT NULL,
    error        TEXT,
    -- Same key, same flow, within the flow's window: no second run. Cleared once out of the
    -- window, so the unique index only ever holds live keys.
    dedupe_key   TEXT,
    created_at   INTEGER     NOT NULL,
    updated_at   INTEGER     NOT NULL,
    finished_at  INTEGER    ,
    UNIQUE (flow_id, dedupe_key)
);
CREATE INDEX runs_flow_seq ON runs (flow_name, seq);
CREATE INDEX runs_status_seq ON runs (status, seq);
CREATE INDEX runs_running ON runs (updated_at) WHERE status = 'running';

-- One row per (schedule, due time): whichever instance inserts it fires the run.
CREATE TABLE schedule_fires (
    flow_id TEXT        NOT NULL,
    fire_at INTEGER     NOT NULL,
    run_id  TEXT        NOT NULL,
    PRIMARY KEY (flow_id, fire_at)
);

-- A delivery that is a step of a run: which run, step and item.
ALTER TABLE deliveries ADD COLUMN run_id TEXT;
ALTER TABLE deliveries ADD COLUMN run_step INTEGER;
ALTER TABLE deliveries ADD COLUMN run_item INTEGER;
CREATE INDEX deliveries_run ON deliveries (run_id, run_step) WHERE run_id IS NOT NULL;
