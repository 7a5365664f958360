INSERT INTO connection_checks (connection_id, checked_at, ok, message, code)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (connection_id) DO UPDATE SET
    checked_at = excluded.checked_at, ok = excluded.ok, message = excluded.message, code = excluded.code
