-- $1 now, $2 = in_flight: every lease expires now. Only for a database one process owns (SQLite,
-- under its lock file): whoever held a lease before this start is gone.
UPDATE deliveries
SET lease_expires_at = $1, updated_at = $1
WHERE status = $2 AND lease_expires_at > $1
