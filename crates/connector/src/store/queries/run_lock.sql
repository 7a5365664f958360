-- Serializes the advances of one run (the last two items of a step may finish at once): on
-- PostgreSQL a row lock; on SQLite the write transaction (BEGIN IMMEDIATE) already does.
SELECT seq, id, flow_id, flow_name, flow_version, trigger_kind, status, step_index, context,
       error, created_at, updated_at, finished_at
FROM runs WHERE id = $1 /*@postgres FOR UPDATE*/
