-- Whoever inserts (flow, due time) first fires it; the others get no row.
INSERT INTO schedule_fires (flow_id, fire_at, run_id) VALUES ($1, $2, $3)
ON CONFLICT (flow_id, fire_at) DO NOTHING
RETURNING run_id
