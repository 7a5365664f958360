SELECT id, name, version, trigger_kind, document, sealed_secrets, next_fire_at, created_at, updated_at
FROM flows ORDER BY name
