-- $1 owner, $2 now: register the owner or renew its heartbeat.
INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
