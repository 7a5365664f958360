-- Chat flows: `chat` joins the trigger kinds. SQLite cannot alter a CHECK and a migration runs
-- inside a transaction, where foreign keys cannot be turned off; the store rebuilds `flows`
-- right after migrating (store/queries/sqlite/flows_allow_chat.sql).

-- A reply goes through the message's session webhook while it lasts. The URL lets anyone post
-- into the conversation, so it is sealed like a secret (and kept out of `message`).
ALTER TABLE inbound_messages ADD COLUMN session_webhook TEXT;
ALTER TABLE inbound_messages ADD COLUMN session_expires_at INTEGER;
