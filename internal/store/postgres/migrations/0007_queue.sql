-- Service Bus queue messages (store.Queues). A queue is an arm_resources
-- row of type microsoft.servicebus/namespaces/queues; its messages, its
-- size and its duplicate detection history reference it by id_key with ON
-- DELETE CASCADE, so they go with the queue, its namespace, its resource
-- group and its tenant. Key columns use COLLATE "C", like SQLite and Go.

-- queue_state holds what the store keeps per queue instead of aggregating
-- per send: the sum of the stored messages' sizes (quota, sizeInBytes).
-- It is created by the queue's first send. ApplyQueueOps locks it (FOR
-- UPDATE) for every queue a batch touches, in key order.
CREATE TABLE queue_state (
    queue_key   TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES arm_resources (id_key) ON DELETE CASCADE,
    size_bytes  BIGINT NOT NULL
);

CREATE TABLE queue_messages (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_key       TEXT COLLATE "C" NOT NULL REFERENCES arm_resources (id_key) ON DELETE CASCADE,
    dead_letter     INTEGER NOT NULL,          -- 1: in the $DeadLetterQueue
    -- visible is when the message is (or becomes) deliverable: its
    -- scheduled time, its lock's expiry, or its enqueue time.
    visible         TIMESTAMPTZ NOT NULL,
    message_id      TEXT NOT NULL,
    body            BYTEA NOT NULL,
    properties      BYTEA NOT NULL,            -- JSON, opaque to the store
    size            BIGINT NOT NULL,
    enqueued        TIMESTAMPTZ NOT NULL,
    scheduled       TIMESTAMPTZ,               -- NULL: at once
    expires         TIMESTAMPTZ,               -- NULL: never
    delivery_count  INTEGER NOT NULL,
    lock_token      TEXT,                      -- NULL unless locked
    locked_until    TIMESTAMPTZ,
    dl_reason       TEXT NOT NULL,
    dl_description  TEXT NOT NULL
);
-- The receive path: the queue's messages in sequence order, with visible
-- in the index so that locked and scheduled ones are skipped on the index.
CREATE INDEX queue_messages_head ON queue_messages (queue_key, dead_letter, seq, visible);
-- NextQueueEvent: the earliest visible time.
CREATE INDEX queue_messages_visible ON queue_messages (queue_key, dead_letter, visible);

-- Duplicate detection history: a MessageId sent to a queue, until expires.
CREATE TABLE queue_dedup (
    queue_key   TEXT COLLATE "C" NOT NULL REFERENCES arm_resources (id_key) ON DELETE CASCADE,
    message_id  TEXT COLLATE "C" NOT NULL,
    expires     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (queue_key, message_id)
);
CREATE INDEX queue_dedup_expires ON queue_dedup (expires);
