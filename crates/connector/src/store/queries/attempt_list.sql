SELECT delivery_id, attempt, started_at, finished_at, outcome, error
FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt
