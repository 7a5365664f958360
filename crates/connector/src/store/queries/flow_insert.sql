-- Parameters as flow_update takes them: $1 id, $2 trigger kind, $3 document, $4 sealed secrets,
-- $5 next fire, $6 now, $7 name.
INSERT INTO flows (id, trigger_kind, document, sealed_secrets, next_fire_at, created_at,
                   updated_at, name, version)
VALUES ($1, $2, $3, $4, $5, $6, $6, $7, 1)
RETURNING id, name, version, trigger_kind, document, sealed_secrets, next_fire_at, created_at, updated_at
