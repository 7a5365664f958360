-- The write transaction (BEGIN IMMEDIATE) already serializes writers.
SELECT seq, id, flow_id, flow_name, flow_version, trigger_kind, status, step_index, context,
       error, created_at, updated_at, finished_at
FROM runs WHERE id = $1
