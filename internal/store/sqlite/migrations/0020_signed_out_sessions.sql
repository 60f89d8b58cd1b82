-- Browser sessions signed out before their sealed cookies expire
-- (store.SignedOutSessions): the sign-in pages' and the console's. id is
-- the session's id (a hash of its anti-forgery token, or the console
-- operator session's random id), never the cookie. An entry is deleted
-- once expires has passed, when the cookie is refused for its expiry
-- anyway. Readers cache the answer per generation, so writes move it.
-- expires is text in sqlstore.FormatTime's fixed-width UTC form.

CREATE TABLE signed_out_sessions (
    id      TEXT PRIMARY KEY,
    expires TEXT NOT NULL
);
CREATE INDEX signed_out_sessions_expires ON signed_out_sessions (expires);
