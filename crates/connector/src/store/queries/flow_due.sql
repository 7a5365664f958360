-- Schedules due at $1.
SELECT id, name, version, trigger_kind, document, sealed_secrets, next_fire_at, created_at, updated_at
FROM flows WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1
ORDER BY next_fire_at
