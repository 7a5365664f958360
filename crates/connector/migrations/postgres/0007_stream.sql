-- Stream mode: an app-robot connection can receive its robot's messages (1 on, 0 off).
ALTER TABLE connections ADD COLUMN stream INTEGER NOT NULL DEFAULT 0;

-- Every robot message received, recorded before DingTalk is told it arrived; a redelivery
-- (the same msgId) is recognised by the unique key and handled once.
CREATE TABLE inbound_messages (
    id                UUID     NOT NULL PRIMARY KEY,
    connection_id     UUID     NOT NULL,
    msg_id            TEXT    NOT NULL,
    conversation_id   TEXT    NOT NULL,
    conversation_type TEXT    NOT NULL,              -- '1' 1:1, '2' group (DingTalk's values)
    sender_staff_id   TEXT,
    sender_nick       TEXT    NOT NULL,
    msgtype           TEXT    NOT NULL,
    text              TEXT,
    message           JSONB    NOT NULL,              -- the message as DingTalk sent it
    received_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (connection_id, msg_id)
);

-- The conversations each robot has heard from: how users find a group's openConversationId.
CREATE TABLE conversations (
    connection_id   UUID     NOT NULL,
    conversation_id TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('group', 'single')),
    title           TEXT,
    messages        BIGINT  NOT NULL DEFAULT 0,
    last_seen_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection_id, conversation_id)
);

-- Which instance holds a connection's Stream socket (one at a time), until when.
CREATE TABLE stream_holders (
    connection_id UUID     NOT NULL PRIMARY KEY,
    owner         TEXT    NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
