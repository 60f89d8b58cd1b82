-- Message sessions (store.QueueLockSession and the other session ops):
-- a message's session id (its AMQP group-id, '' for none), and per
-- session of a queue its lock and its state. A session row is created
-- when the session is first accepted or its state set; it goes with its
-- queue.
ALTER TABLE queue_messages ADD COLUMN session_id TEXT COLLATE "C" NOT NULL DEFAULT '';
-- A session receiver's head: the session's messages in sequence order.
CREATE INDEX queue_messages_session ON queue_messages (queue_key, dead_letter, session_id, seq, visible);

CREATE TABLE queue_sessions (
    queue_key      TEXT COLLATE "C" NOT NULL REFERENCES arm_resources (id_key) ON DELETE CASCADE,
    session_id     TEXT COLLATE "C" NOT NULL,
    lock_token     TEXT,          -- NULL unless held
    locked_until   TIMESTAMPTZ,
    state          BYTEA,         -- NULL: no state set
    state_updated  TIMESTAMPTZ,   -- when the state was last set or cleared
    PRIMARY KEY (queue_key, session_id)
);
