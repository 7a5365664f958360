-- $2 = queued, $3 = in_flight: every lease $1 holds goes back to the queue, due now.
UPDATE deliveries
SET status = $2, lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $4, updated_at = $4
WHERE lease_owner = $1 AND status = $3
