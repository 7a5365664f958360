SELECT conversation_id, kind, title, messages, last_seen_at FROM conversations
WHERE connection_id = $1 ORDER BY last_seen_at DESC, conversation_id
