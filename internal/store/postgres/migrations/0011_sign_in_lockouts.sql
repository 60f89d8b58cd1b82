-- Users' smart-lockout state (store.Lockouts): the failed sign-ins counted,
-- the lockouts in a row and until when the account is locked. It goes with
-- its user (and so with the tenant). Nothing caches it, so its writes do
-- not move the generation and it has no change-notify trigger (0006).
-- recent holds space-separated keyed digests of the last wrong passwords,
-- never passwords. NULL timestamps mean never. Key columns use COLLATE "C",
-- like SQLite and Go.

CREATE TABLE sign_in_lockouts (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    failures     INTEGER NOT NULL,
    lockouts     INTEGER NOT NULL,
    locked_until TIMESTAMPTZ,
    last_failure TIMESTAMPTZ,
    recent       TEXT NOT NULL,
    version      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
