-- Service Bus queue messages (store.Queues). A queue is an arm_resources
-- row of type microsoft.servicebus/namespaces/queues; its messages, its
-- size and its duplicate detection history reference it by id_key with ON
-- DELETE CASCADE, so they go with the queue, its namespace, its resource
-- group and its tenant. Timestamps are text in sqlstore.FormatTime's form.

-- queue_state holds what the store keeps per queue instead of aggregating
-- per send: the sum of the stored messages' sizes (quota, sizeInBytes).
-- It is created by the queue's first send.
CREATE TABLE queue_state (
    queue_key   TEXT NOT NULL PRIMARY KEY REFERENCES arm_resources (id_key) ON DELETE CASCADE,
    size_bytes  INTEGER NOT NULL
);

-- AUTOINCREMENT: sequence numbers are never reused, even after the
-- highest message is deleted.
CREATE TABLE queue_messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_key       TEXT NOT NULL REFERENCES arm_resources (id_key) ON DELETE CASCADE,
    dead_letter     INTEGER NOT NULL,          -- 1: in the $DeadLetterQueue
    -- visible is when the message is (or becomes) deliverable: its
    -- scheduled time, its lock's expiry, or its enqueue time.
    visible         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    body            BLOB NOT NULL,
    properties      BLOB NOT NULL,             -- JSON, opaque to the store
    size            INTEGER NOT NULL,
    enqueued        TEXT NOT NULL,
    scheduled       TEXT,                      -- NULL: at once
    expires         TEXT,                      -- NULL: never
    delivery_count  INTEGER NOT NULL,
    lock_token      TEXT,                      -- NULL unless locked
    locked_until    TEXT,
    dl_reason       TEXT NOT NULL,
    dl_description  TEXT NOT NULL
);
-- The receive path: the queue's messages in sequence order, with visible
-- in the index so that locked and scheduled ones are skipped without
-- reading their rows.
CREATE INDEX queue_messages_head ON queue_messages (queue_key, dead_letter, seq, visible);
-- NextQueueEvent: the earliest visible time.
CREATE INDEX queue_messages_visible ON queue_messages (queue_key, dead_letter, visible);

-- Duplicate detection history: a MessageId sent to a queue, until expires.
CREATE TABLE queue_dedup (
    queue_key   TEXT NOT NULL REFERENCES arm_resources (id_key) ON DELETE CASCADE,
    message_id  TEXT NOT NULL,
    expires     TEXT NOT NULL,
    PRIMARY KEY (queue_key, message_id)
);
CREATE INDEX queue_dedup_expires ON queue_dedup (expires);
