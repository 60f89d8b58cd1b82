-- User sign-in tokens: refresh tokens (store.RefreshTokens) and device-code
-- sign-ins (store.DeviceCodes). Only hashes of the token values are stored.
-- Nothing caches these tables, so their writes do not move the generation.
-- Timestamps are text in sqlstore.FormatTime's fixed-width UTC form.

-- A refresh token belongs to a tenant and goes with it. done_at is when
-- the token stopped being redeemable: the earliest of expires, redeemed_at
-- and revoked_at, kept by the store so that pruning is one index range.
CREATE TABLE refresh_tokens (
    id          TEXT NOT NULL PRIMARY KEY,   -- hex SHA-256 of the token value
    family_id   TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    auth_time   TEXT,                        -- NULL: unknown
    amr         TEXT NOT NULL,               -- JSON array
    created     TEXT NOT NULL,
    expires     TEXT NOT NULL,
    redeemed_at TEXT,                        -- NULL until redeemed
    revoked_at  TEXT,                        -- NULL unless revoked
    done_at     TEXT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, user_id, client_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (tenant_id, client_id);
CREATE INDEX refresh_tokens_done ON refresh_tokens (done_at);

-- A device code's tenant may be unknown until the user signs in, so
-- tenant_id (and approved_tenant_id) are NULL rather than empty then: a
-- NULL reference is not checked, a set one cascades like every per-tenant
-- table. Codes live minutes; PruneDeviceCodes deletes the expired ones.
-- user_code_key is the user code upper-cased without '-' and spaces.
CREATE TABLE device_codes (
    id                 TEXT NOT NULL PRIMARY KEY,   -- hex SHA-256 of the device_code value
    user_code          TEXT NOT NULL,
    user_code_key      TEXT NOT NULL UNIQUE,
    tenant_id          TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    client_id          TEXT NOT NULL,
    scope              TEXT NOT NULL,
    created            TEXT NOT NULL,
    expires            TEXT NOT NULL,
    poll_interval      INTEGER NOT NULL,            -- seconds
    state              TEXT NOT NULL,               -- pending, approved, denied, redeemed
    user_id            TEXT NOT NULL,
    approved_tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    auth_time          TEXT,
    amr                TEXT NOT NULL,               -- JSON array
    last_poll          TEXT                         -- NULL before the first poll
);
CREATE INDEX device_codes_expires ON device_codes (expires);
CREATE INDEX device_codes_tenant ON device_codes (tenant_id);
CREATE INDEX device_codes_approved_tenant ON device_codes (approved_tenant_id);
