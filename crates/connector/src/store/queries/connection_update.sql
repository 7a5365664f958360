-- Optimistic concurrency: applies only if the row is as the caller read it ($12 = its updated_at).
UPDATE connections
SET name = $2, kind = $3, description = $4, app_key = $5, robot_code = $6, keywords = $7,
    qps_quota = $8, sealed_secrets = $9, stream = $10, updated_at = $11
WHERE id = $1 AND updated_at = $12
RETURNING id, name, kind, description, app_key, robot_code, keywords, qps_quota, stream, sealed_secrets, created_at, updated_at
