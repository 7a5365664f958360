-- Claims due deliveries under a lease. $1 now, $2 owner, $3 lease expiry, $4 limit.
-- On SQLite it runs inside BEGIN IMMEDIATE; on PostgreSQL concurrent claimers skip each other's
-- rows (FOR UPDATE SKIP LOCKED).
-- Per-group order: only a group's head (its unfinished delivery with the lowest seq) is a
-- candidate, and only while no delivery of that group is in flight under a live lease. The heads
-- are found with a skip-scan over the partial index deliveries_group_unfinished (one index seek per
-- group), so the cost grows with the number of groups, not with the queue's length or history.
-- SQLite's INDEXED BY pins those indexes: without statistics its planner may pick another index
-- and walk every finished delivery of a group.
-- Statuses follow DeliveryStatus::can_transition_to: queued/retrying -> in_flight, and
-- in_flight -> in_flight when the lease has expired (taken back).
WITH RECURSIVE grp(k) AS (
    SELECT MIN(group_key) FROM deliveries /*@sqlite INDEXED BY deliveries_group_unfinished*/
    WHERE status IN ('queued', 'in_flight', 'retrying')
    UNION ALL
    SELECT (SELECT MIN(group_key) FROM deliveries /*@sqlite INDEXED BY deliveries_group_unfinished*/
            WHERE status IN ('queued', 'in_flight', 'retrying') AND group_key > grp.k)
    FROM grp WHERE grp.k IS NOT NULL
),
head(seq) AS (
    SELECT (SELECT seq FROM deliveries /*@sqlite INDEXED BY deliveries_group_unfinished*/
            WHERE group_key = grp.k AND status IN ('queued', 'in_flight', 'retrying')
            ORDER BY seq LIMIT 1)
    FROM grp WHERE grp.k IS NOT NULL
),
due(seq) AS (
    SELECT d.seq FROM head JOIN deliveries d ON d.seq = head.seq
    WHERE ((d.status IN ('queued', 'retrying') AND d.next_attempt_at <= $1)
           OR (d.status = 'in_flight' AND d.lease_expires_at <= $1))
      AND NOT EXISTS (SELECT 1 FROM deliveries AS e /*@sqlite INDEXED BY deliveries_group_in_flight*/
                      WHERE e.group_key = d.group_key AND e.status = 'in_flight'
                        AND e.lease_expires_at > $1)
    ORDER BY d.seq
    LIMIT $4
    -- A row another instance is claiming is skipped; if it changed since this statement's
    -- snapshot, PostgreSQL re-checks the conditions above on the new version before locking it.
    /*@postgres FOR UPDATE OF d SKIP LOCKED*/
)
UPDATE deliveries
SET status = 'in_flight', lease_owner = $2, lease_expires_at = $3, updated_at = $1
WHERE seq IN (SELECT seq FROM due)
RETURNING seq, id, connection_id, action, group_key, input, status, mode, attempts, next_attempt_at,
       lease_owner, lease_expires_at, last_error, result, idempotency_key, request_hash, progress, run_id, run_step, run_item, created_at, updated_at
