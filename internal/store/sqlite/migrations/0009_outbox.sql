-- The durable outbox (store.Outbox): HTTP POSTs that must reach an
-- endpoint outside tenantbridge at least once (managed applications'
-- lifecycle notifications), and the log of every attempt to deliver them.
-- A message belongs to the tenant that reads its delivery log and goes
-- with it; its attempts go with the message. Nothing caches these tables,
-- so their writes do not move the generation. Timestamps are text in
-- sqlstore.FormatTime's fixed-width UTC form.

-- AUTOINCREMENT: sequence numbers are never reused, so Seq order is
-- enqueue order even after the newest message is deleted. order_key is
-- the message's Key (its id when the caller gave none). next_attempt is
-- when the message may be tried (again); while a deliverer holds it
-- (DueOutbox's lease) it is when that claim runs out.
CREATE TABLE outbox_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    topic         TEXT NOT NULL,
    order_key     TEXT NOT NULL,
    url           TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    body          BLOB NOT NULL,
    created       TEXT NOT NULL,
    next_attempt  TEXT NOT NULL,
    deadline      TEXT,                        -- NULL: the deliverer's default
    attempts      INTEGER NOT NULL,
    state         TEXT NOT NULL,               -- pending, delivered, failed
    last_status   INTEGER NOT NULL,            -- 0: no HTTP status
    last_error    TEXT NOT NULL,
    delivered_at  TEXT                         -- NULL until delivered
);
-- DueOutbox and NextOutboxDue: the pending messages by when they are due.
CREATE INDEX outbox_messages_due ON outbox_messages (state, next_attempt);
-- The per-key ordering: is there an older pending message of this key?
CREATE INDEX outbox_messages_key ON outbox_messages (tenant_id, order_key, state, seq);
-- ListOutbox: a tenant's messages (of a topic), newest first.
CREATE INDEX outbox_messages_topic ON outbox_messages (tenant_id, topic, seq);

CREATE TABLE outbox_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL REFERENCES outbox_messages (id) ON DELETE CASCADE,
    at           TEXT NOT NULL,
    status       INTEGER NOT NULL,             -- 0: no HTTP status received
    error        TEXT NOT NULL,
    duration_ns  INTEGER NOT NULL
);
CREATE INDEX outbox_attempts_message ON outbox_attempts (message_id, id);
