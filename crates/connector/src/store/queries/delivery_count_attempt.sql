-- An attempt that does not end the claim; fenced like an ack ($3 = in_flight).
UPDATE deliveries
SET attempts = attempts + 1, last_error = COALESCE($4, last_error), updated_at = $5
WHERE id = $1 AND lease_owner = $2 AND status = $3
RETURNING attempts
