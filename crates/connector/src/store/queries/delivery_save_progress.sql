-- Records the steps done so far; fenced like an ack ($3 = in_flight, $2 the lease owner).
UPDATE deliveries SET progress = $4, updated_at = $5
WHERE id = $1 AND lease_owner = $2 AND status = $3
