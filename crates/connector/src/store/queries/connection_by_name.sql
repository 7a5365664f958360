SELECT id, name, kind, description, app_key, robot_code, keywords, qps_quota, stream, sealed_secrets, created_at, updated_at FROM connections WHERE name = $1
