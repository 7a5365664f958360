-- Records how far a run got (the caller holds the run's lock in the same transaction).
UPDATE runs
SET status = $2, step_index = $3, context = $4, error = $5, updated_at = $6,
    finished_at = CASE WHEN $2 = 'running' THEN NULL ELSE $6 END
WHERE id = $1
