INSERT INTO connections (id, name, kind, description, app_key, robot_code, keywords, qps_quota, sealed_secrets, stream, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
RETURNING id, name, kind, description, app_key, robot_code, keywords, qps_quota, stream, sealed_secrets, created_at, updated_at
