UPDATE deliveries SET lease_expires_at = $3, updated_at = $4
WHERE id = $1 AND lease_owner = $2 AND status = $5
