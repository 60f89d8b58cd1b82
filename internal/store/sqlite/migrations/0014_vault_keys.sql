-- Key Vault keys (store.Keys): like vault_secrets, a set of versions under
-- one case-insensitive name, the soft-deleted state kept on every version
-- of the name. The private key is sealed ciphertext, never plaintext; the
-- public JSON Web Key is kept in the clear (it is public). key_ops is a
-- JSON array. Timestamps are text in sqlstore.FormatTime's form.

CREATE TABLE vault_keys (
    vault_key      TEXT NOT NULL REFERENCES vaults (name_key) ON DELETE CASCADE,
    name_key       TEXT NOT NULL,                 -- lower-cased key name
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    kty            TEXT NOT NULL,
    key_ops        TEXT NOT NULL,                 -- JSON array
    public_jwk     BLOB NOT NULL,
    private_key    BLOB NOT NULL,                 -- sealed
    tags           TEXT NOT NULL,                 -- JSON object
    enabled        INTEGER NOT NULL,
    nbf            TEXT,
    exp            TEXT,
    created        TEXT NOT NULL,
    updated        TEXT NOT NULL,
    recovery_id    TEXT,                          -- NULL unless deleted
    deleted_date   TEXT,
    purge_date     TEXT,
    PRIMARY KEY (vault_key, name_key, version)
);
CREATE UNIQUE INDEX vault_keys_seq ON vault_keys (vault_key, name_key, seq);
