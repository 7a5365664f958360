-- A new version of an existing flow (the caller holds the write transaction). Parameters as
-- flow_insert takes them ($7, the name, is the one the flow was found by).
UPDATE flows
SET version = version + 1, trigger_kind = $2, document = $3, sealed_secrets = $4,
    next_fire_at = $5, updated_at = $6, name = $7
WHERE id = $1
RETURNING id, name, version, trigger_kind, document, sealed_secrets, next_fire_at, created_at, updated_at
