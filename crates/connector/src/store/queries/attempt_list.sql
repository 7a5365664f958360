-- A sync request delivered at once without an Idempotency-Key is logged without an attempt row
-- (one write fewer per message); its one attempt is the delivery row itself: started when it was
-- created, finished when it was last updated, a success. Rows logged with attempts (every other
-- delivery, and earlier builds' sync ones) are read as they are.
SELECT delivery_id, attempt, started_at, finished_at, outcome, error
FROM delivery_attempts WHERE delivery_id = $1
UNION ALL
SELECT id, 1, created_at, updated_at, 'success', NULL
FROM deliveries
WHERE id = $1 AND mode = 'sync' AND status = 'delivered' AND attempts = 1
  AND idempotency_key IS NULL
  AND NOT EXISTS (SELECT 1 FROM delivery_attempts WHERE delivery_id = $1)
ORDER BY attempt
