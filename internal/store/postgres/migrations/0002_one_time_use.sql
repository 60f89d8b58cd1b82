-- Keys that may be used once until they expire (client assertion jti,
-- authorization codes, refresh tokens): store.OneTimeUse. Keys are global,
-- namespaced by the caller, so there is no tenant and no cascade; records go
-- when they expire. Keys compare bytewise (COLLATE "C"), like SQLite.

CREATE TABLE one_time_use (
    use_key TEXT COLLATE "C" NOT NULL PRIMARY KEY,   -- at most store.MaxOneTimeUseKey bytes
    expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX one_time_use_expires ON one_time_use (expires);
