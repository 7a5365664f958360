-- One page of the connection list with each connection's last test and last use (one index
-- seek on deliveries (connection_id, seq) per connection shown). $1: a lower-case LIKE pattern
-- matched against name and description (NULL: every connection).
SELECT c.id, c.name, c.kind, c.description, c.app_key, c.robot_code, c.keywords, c.qps_quota, c.stream,
       c.sealed_secrets, c.created_at, c.updated_at,
       k.checked_at, k.ok, k.message, k.code,
       (SELECT d.created_at FROM deliveries d WHERE d.connection_id = c.id
        ORDER BY d.seq DESC LIMIT 1) AS last_used_at
FROM connections c LEFT JOIN connection_checks k ON k.connection_id = c.id
WHERE ($1 IS NULL OR lower(c.name) LIKE $1 ESCAPE '\' OR lower(c.description) LIKE $1 ESCAPE '\')
ORDER BY c.name
LIMIT $2 OFFSET $3
