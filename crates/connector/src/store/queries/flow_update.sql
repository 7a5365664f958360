-- A new version of an existing flow (the caller holds the write transaction).
UPDATE flows
SET version = version + 1, trigger_kind = $2, document = $3, sealed_secrets = $4,
    next_fire_at = $5, updated_at = $6
WHERE id = $1
RETURNING id, name, version, trigger_kind, document, sealed_secrets, next_fire_at, created_at, updated_at
