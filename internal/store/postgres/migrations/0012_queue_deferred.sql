-- Message deferral (store.QueueDefer, store.QueueLockDeferred): a deferred
-- message stays in its queue with deferred = 1. Its visible is
-- 9999-12-31T00:00:00Z for as long as it is deferred, locked or not (a
-- lock on it is judged by locked_until alone), so that the receive path's
-- index skips it like any message not yet visible and an ordinary receive
-- never takes it; it is locked only by its sequence number.
ALTER TABLE queue_messages ADD COLUMN deferred INTEGER NOT NULL DEFAULT 0;
