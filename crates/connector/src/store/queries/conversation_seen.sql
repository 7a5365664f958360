-- A conversation heard from: recorded once, then its title (when known), count and time move.
INSERT INTO conversations (connection_id, conversation_id, kind, title, messages, last_seen_at)
VALUES ($1, $2, $3, $4, 1, $5)
ON CONFLICT (connection_id, conversation_id) DO UPDATE SET
    title = COALESCE(excluded.title, conversations.title),
    messages = conversations.messages + 1,
    last_seen_at = excluded.last_seen_at
