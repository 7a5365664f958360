-- Per connection: its last test, and when it last had a delivery (one index seek each on
-- deliveries (connection_id, seq)).
SELECT c.id, k.checked_at, k.ok, k.message, k.code,
       (SELECT d.created_at FROM deliveries d WHERE d.connection_id = c.id
        ORDER BY d.seq DESC LIMIT 1) AS last_used_at
FROM connections c LEFT JOIN connection_checks k ON k.connection_id = c.id
