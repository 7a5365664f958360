INSERT INTO runs (id, flow_id, flow_name, flow_version, trigger_kind, status, step_index,
                  context, dedupe_key, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, 'running', 0, $6, $7, $8, $8)
ON CONFLICT (flow_id, dedupe_key) DO NOTHING
RETURNING seq, id, flow_id, flow_name, flow_version, trigger_kind, status, step_index, context,
          error, created_at, updated_at, finished_at
