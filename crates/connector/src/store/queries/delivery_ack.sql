-- Ends an attempt, fenced: applies only while $2 still holds the lease (status $4 = in_flight).
-- $3 the new status; $5 result, $6 error, $7 next attempt time (NULL keeps the current value).
UPDATE deliveries
SET status = $3, attempts = attempts + 1,
    result = COALESCE($5, result), last_error = COALESCE($6, last_error),
    next_attempt_at = COALESCE($7, next_attempt_at),
    lease_owner = NULL, lease_expires_at = NULL, updated_at = $8
WHERE id = $1 AND lease_owner = $2 AND status = $4
RETURNING attempts, run_id
