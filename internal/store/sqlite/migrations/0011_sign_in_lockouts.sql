-- Users' smart-lockout state (store.Lockouts): the failed sign-ins counted,
-- the lockouts in a row and until when the account is locked. It goes with
-- its user (and so with the tenant). Nothing caches it, so its writes do
-- not move the generation. recent holds space-separated keyed digests of
-- the last wrong passwords, never passwords. Timestamps are text in
-- sqlstore.FormatTime's fixed-width UTC form; NULL means never.

CREATE TABLE sign_in_lockouts (
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    lockouts     INTEGER NOT NULL,
    locked_until TEXT,
    last_failure TEXT,
    recent       TEXT NOT NULL,
    version      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
