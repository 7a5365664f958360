-- $1 now, $2 cutoff, $3 = in_flight: the leases of owners whose last heartbeat is older than the
-- cutoff expire now, so the claim takes them back at once. Fencing is unchanged: a dead owner
-- that was only slow still cannot ack what it no longer holds.
UPDATE deliveries
SET lease_expires_at = $1, updated_at = $1
WHERE status = $3 AND lease_expires_at > $1
  AND lease_owner IN (SELECT id FROM instances WHERE heartbeat_at < $2)
