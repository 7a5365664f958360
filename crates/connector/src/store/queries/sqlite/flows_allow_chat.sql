-- `chat` joins the trigger kinds: SQLite's documented way to change a table's constraints
-- (create the new table, copy, drop the old, rename), run with foreign keys off so that
-- dropping the old table neither cascades to flow_versions nor rewrites its reference.
CREATE TABLE flows_new (
    id             TEXT        NOT NULL PRIMARY KEY,
    name           TEXT        NOT NULL UNIQUE,
    version        INTEGER     NOT NULL,
    trigger_kind   TEXT        NOT NULL CHECK (trigger_kind IN ('webhook', 'schedule', 'manual', 'chat')),
    document       TEXT        NOT NULL,
    sealed_secrets TEXT,
    next_fire_at   INTEGER,
    created_at     INTEGER     NOT NULL,
    updated_at     INTEGER     NOT NULL
);
INSERT INTO flows_new (id, name, version, trigger_kind, document, sealed_secrets, next_fire_at,
    created_at, updated_at)
SELECT id, name, version, trigger_kind, document, sealed_secrets, next_fire_at, created_at,
    updated_at FROM flows;
DROP TABLE flows;
ALTER TABLE flows_new RENAME TO flows;
CREATE INDEX flows_next_fire_at ON flows (next_fire_at) WHERE next_fire_at IS NOT NULL;
