-- A repeated (connection_id, idempotency_key) inserts nothing and returns no row; the caller then
-- reads the existing delivery.
INSERT INTO deliveries (id, connection_id, action, group_key, input, status, mode, attempts,
                        next_attempt_at, lease_owner, lease_expires_at, idempotency_key,
                        request_hash, run_id, run_step, run_item, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11, $12, $13, $14, $15, $8, $8)
ON CONFLICT (connection_id, idempotency_key) DO NOTHING
RETURNING seq, id, connection_id, action, group_key, input, status, mode, attempts, next_attempt_at,
       lease_owner, lease_expires_at, last_error, result, idempotency_key, request_hash, progress, run_id, run_step, run_item, created_at, updated_at
