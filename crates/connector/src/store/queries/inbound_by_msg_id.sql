SELECT m.id, m.connection_id, m.msg_id, m.conversation_id, m.conversation_type, c.title,
    m.sender_staff_id, m.sender_nick, m.msgtype, m.text, m.message, m.session_webhook,
    m.session_expires_at, m.received_at
FROM inbound_messages m
LEFT JOIN conversations c
    ON c.connection_id = m.connection_id AND c.conversation_id = m.conversation_id
WHERE m.connection_id = $1 AND m.msg_id = $2
