-- Every filter is optional: NULL disables it. Newest first; $5 is the page cursor (a seq).
SELECT seq, id, flow_id, flow_name, flow_version, trigger_kind, status, step_index, context,
       error, created_at, updated_at, finished_at
FROM runs
WHERE ($1 IS NULL OR flow_name = $1)
  AND ($2 IS NULL OR status = $2)
  AND ($3 IS NULL OR created_at >= $3)
  AND ($4 IS NULL OR created_at < $4)
  AND ($5 IS NULL OR seq < $5)
ORDER BY seq DESC
LIMIT $6
