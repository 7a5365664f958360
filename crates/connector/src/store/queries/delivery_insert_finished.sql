-- A sync request that already ran: logged with its outcome, never claimed by the queue. Created
-- when it started ($7), updated when it finished ($10).
INSERT INTO deliveries (id, connection_id, action, group_key, input, status, mode, attempts,
                        next_attempt_at, last_error, result, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, 'sync', 1, $7, $8, $9, $7, $10)
