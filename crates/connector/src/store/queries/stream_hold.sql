-- Take or renew a connection's Stream socket: granted to its holder, or to anyone once the
-- holder's lease ($4 = now) has run out.
INSERT INTO stream_holders (connection_id, owner, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (connection_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE stream_holders.owner = excluded.owner OR stream_holders.expires_at < $4
