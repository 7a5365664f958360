-- Every filter is optional: NULL disables it. Newest first; $6 is the page cursor (a seq).
-- Each parameter is bound with its type (text, uuid, timestamp, bigint), so `$n IS NULL` needs
-- no cast in either dialect.
-- One connection's deliveries (`by_connection`): `connection_id = $2` (never NULL then) lets
-- both dialects walk the index deliveries (connection_id, seq) instead of the whole log.
SELECT seq, id, connection_id, action, group_key, input, status, mode, attempts, next_attempt_at,
       lease_owner, lease_expires_at, last_error, result, idempotency_key, request_hash, progress, run_id, run_step, run_item, created_at, updated_at
FROM deliveries
WHERE /*@by_connection connection_id = $2*/ /*@all ($2 IS NULL OR connection_id = $2)*/
  AND ($1 IS NULL OR status = $1)
  -- A group key is `<connection uuid, 36 characters>/<group chat id>` (store::GroupKey).
  AND ($3 IS NULL OR substr(group_key, 38) = $3)
  AND ($4 IS NULL OR created_at >= $4)
  AND ($5 IS NULL OR created_at < $5)
  AND ($6 IS NULL OR seq < $6)
ORDER BY seq DESC
LIMIT $7
