-- Claims due deliveries under a lease, concurrent claimers skip each other's rows (FOR UPDATE SKIP LOCKED).
-- $1 now, $2 owner, $3 lease expiry, $4 limit.
-- Per-group order: only a group's head (its unfinished delivery with the lowest seq) is a
-- candidate, and only while no delivery of that group is in flight under a live lease. The heads
-- are found with a skip-scan over the partial index deliveries_group_unfinished (one index seek per
-- group), so the cost grows with the number of groups, not with the queue's length.
-- Statuses follow DeliveryStatus::can_transition_to: queued/retrying -> in_flight, and
-- in_flight -> in_flight when the lease has expired (taken back).
WITH RECURSIVE grp(k) AS (
    SELECT MIN(group_key) FROM deliveries
    WHERE status IN ('queued', 'in_flight', 'retrying')
    UNION ALL
    SELECT (SELECT MIN(group_key) FROM deliveries
            WHERE status IN ('queued', 'in_flight', 'retrying') AND group_key > grp.k)
    FROM grp WHERE grp.k IS NOT NULL
),
head(seq) AS (
    SELECT (SELECT seq FROM deliveries
            WHERE group_key = grp.k AND status IN ('queued', 'in_flight', 'retrying')
            ORDER BY seq LIMIT 1)
    FROM grp WHERE grp.k IS NOT NULL
),
due(seq) AS (
    SELECT d.seq FROM head JOIN deliveries d ON d.seq = head.seq
    WHERE ((d.status IN ('queued', 'retrying') AND d.next_attempt_at <= $1)
           OR (d.status = 'in_flight' AND d.lease_expires_at <= $1))
      AND NOT EXISTS (SELECT 1 FROM deliveries e
                      WHERE e.group_key = d.group_key AND e.status = 'in_flight'
                        AND e.lease_expires_at > $1)
    ORDER BY d.seq
    LIMIT $4
    -- A row another instance is claiming is skipped; if it changed since this statement's
    -- snapshot, PostgreSQL re-checks the conditions above on the new version before locking it.
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries
SET status = 'in_flight', lease_owner = $2, lease_expires_at = $3, updated_at = $1
FROM due
WHERE deliveries.seq = due.seq
RETURNING deliveries.seq, deliveries.id, deliveries.connection_id, deliveries.action,
          deliveries.group_key, deliveries.input, deliveries.status, deliveries.mode,
          deliveries.attempts, deliveries.next_attempt_at, deliveries.lease_owner,
          deliveries.lease_expires_at, deliveries.last_error, deliveries.result,
          deliveries.idempotency_key, deliveries.request_hash, deliveries.progress, deliveries.run_id, deliveries.run_step,
          deliveries.run_item, deliveries.created_at,
          deliveries.updated_at
