-- Key Vault keys (store.Keys): like vault_secrets, a set of versions under
-- one case-insensitive name, the soft-deleted state kept on every version
-- of the name. The private key is sealed ciphertext, never plaintext; the
-- public JSON Web Key is kept in the clear (it is public). key_ops is a
-- JSON array. Key columns use COLLATE "C", like SQLite and Go. Writes
-- notify tenantbridge_changes (see 0006_change_notify.sql): the vault
-- surface caches what it reads.

CREATE TABLE vault_keys (
    vault_key      TEXT COLLATE "C" NOT NULL REFERENCES vaults (name_key) ON DELETE CASCADE,
    name_key       TEXT COLLATE "C" NOT NULL,                 -- lower-cased key name
    name           TEXT NOT NULL,
    version        TEXT COLLATE "C" NOT NULL,
    seq            BIGINT NOT NULL,
    kty            TEXT NOT NULL,
    key_ops        TEXT NOT NULL,                             -- JSON array
    public_jwk     BYTEA NOT NULL,
    private_key    BYTEA NOT NULL,                            -- sealed
    tags           TEXT NOT NULL,                             -- JSON object
    enabled        INTEGER NOT NULL,
    nbf            TIMESTAMPTZ,
    exp            TIMESTAMPTZ,
    created        TIMESTAMPTZ NOT NULL,
    updated        TIMESTAMPTZ NOT NULL,
    recovery_id    TEXT,                                      -- NULL unless deleted
    deleted_date   TIMESTAMPTZ,
    purge_date     TIMESTAMPTZ,
    PRIMARY KEY (vault_key, name_key, version)
);
CREATE UNIQUE INDEX vault_keys_seq ON vault_keys (vault_key, name_key, seq);
CREATE TRIGGER vault_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vault_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
