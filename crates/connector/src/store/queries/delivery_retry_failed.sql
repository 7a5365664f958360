-- $2 = queued, $3 = failed: back to the queue, due now.
UPDATE deliveries SET status = $2, next_attempt_at = $4, updated_at = $4
WHERE id = $1 AND status = $3
RETURNING seq, id, connection_id, action, group_key, input, status, mode, attempts, next_attempt_at,
       lease_owner, lease_expires_at, last_error, result, idempotency_key, request_hash, progress, run_id, run_step, run_item, created_at, updated_at
