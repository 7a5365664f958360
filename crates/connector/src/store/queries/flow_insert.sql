INSERT INTO flows (id, name, version, trigger_kind, document, sealed_secrets, next_fire_at,
                   created_at, updated_at)
VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $7)
RETURNING id, name, version, trigger_kind, document, sealed_secrets, next_fire_at, created_at, updated_at
