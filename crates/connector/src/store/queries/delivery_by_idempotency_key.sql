SELECT seq, id, connection_id, action, group_key, input, status, mode, attempts, next_attempt_at,
       lease_owner, lease_expires_at, last_error, result, idempotency_key, request_hash, progress, run_id, run_step, run_item, created_at, updated_at
FROM deliveries WHERE connection_id = $1 AND idempotency_key = $2
