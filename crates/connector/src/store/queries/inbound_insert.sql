INSERT INTO inbound_messages (id, connection_id, msg_id, conversation_id, conversation_type,
    sender_staff_id, sender_nick, msgtype, text, message, received_at, session_webhook,
    session_expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (connection_id, msg_id) DO NOTHING
