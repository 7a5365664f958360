-- Running runs, untouched since $1, none of whose current step's deliveries is unfinished: a
-- server stopped between finishing a step and starting the next. The sweep advances them.
SELECT id FROM runs
WHERE status = 'running' AND updated_at < $1
  AND NOT EXISTS (SELECT 1 FROM deliveries
                  WHERE deliveries.run_id = runs.id AND deliveries.run_step = runs.step_index
                    AND deliveries.status IN ('queued', 'in_flight', 'retrying'))
ORDER BY seq
LIMIT 100
