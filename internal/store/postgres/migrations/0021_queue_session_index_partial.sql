-- The session index (0013) holds only the messages of sessions: a queue
-- without sessions, the common case, no longer writes an entry of it for
-- every send, lock and complete. The queries that read it say
-- session_id <> '' themselves, which is what lets the planner use a
-- partial index (SQLite: the WHERE clause must imply the index's;
-- PostgreSQL likewise).
DROP INDEX queue_messages_session;
CREATE INDEX queue_messages_session ON queue_messages (queue_key, dead_letter, session_id, seq, visible) WHERE session_id <> '';
