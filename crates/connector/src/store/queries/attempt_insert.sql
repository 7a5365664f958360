INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at, outcome, error)
VALUES ($1, $2, $3, $4, $5, $6)
