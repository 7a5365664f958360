-- Chat flows: `chat` joins the trigger kinds.
ALTER TABLE flows DROP CONSTRAINT flows_trigger_kind_check;
ALTER TABLE flows ADD CONSTRAINT flows_trigger_kind_check
    CHECK (trigger_kind IN ('webhook', 'schedule', 'manual', 'chat'));

-- A reply goes through the message's session webhook while it lasts. The URL lets anyone post
-- into the conversation, so it is sealed like a secret (and kept out of `message`).
ALTER TABLE inbound_messages ADD COLUMN session_webhook TEXT;
ALTER TABLE inbound_messages ADD COLUMN session_expires_at TIMESTAMPTZ;
