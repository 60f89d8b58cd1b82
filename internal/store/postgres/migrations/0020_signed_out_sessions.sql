-- Browser sessions signed out before their sealed cookies expire
-- (store.SignedOutSessions): the sign-in pages' and the console's. id is
-- the session's id (a hash of its anti-forgery token, or the console
-- operator session's random id), never the cookie. An entry is deleted
-- once expires has passed, when the cookie is refused for its expiry
-- anyway. Every node caches the answer per generation, so the table
-- notifies like the cached tables of 0006: a sign-out on one node empties
-- the others' caches as soon as its notification arrives.

CREATE TABLE signed_out_sessions (
    id      TEXT COLLATE "C" PRIMARY KEY,
    expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX signed_out_sessions_expires ON signed_out_sessions (expires);

CREATE TRIGGER signed_out_sessions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signed_out_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
