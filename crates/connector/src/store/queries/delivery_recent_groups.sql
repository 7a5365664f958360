-- The group keys of a connection's newest deliveries (index deliveries (connection_id, seq)).
SELECT group_key FROM deliveries WHERE connection_id = $1 ORDER BY seq DESC LIMIT $2
