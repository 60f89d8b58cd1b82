-- Key Vault: vaults and their secrets (store.Vaults). Vault names are unique
-- across tenants (name_key, lower-cased). A secret is a set of versions
-- under one case-insensitive name; the soft-deleted state is kept on every
-- version of the name (all set together). Values are sealed ciphertext,
-- never plaintext. Key columns use COLLATE "C", like SQLite and Go.

CREATE TABLE vaults (
    name_key          TEXT COLLATE "C" NOT NULL PRIMARY KEY,   -- lower-cased name
    name              TEXT NOT NULL,
    tenant_id         TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource_id       TEXT NOT NULL,
    location          TEXT NOT NULL,
    retention_days    INTEGER NOT NULL,
    purge_protection  INTEGER NOT NULL,
    soft_delete       INTEGER NOT NULL,
    created           TIMESTAMPTZ NOT NULL
);
CREATE INDEX vaults_tenant ON vaults (tenant_id, name_key);

CREATE TABLE vault_secrets (
    vault_key      TEXT COLLATE "C" NOT NULL REFERENCES vaults (name_key) ON DELETE CASCADE,
    name_key       TEXT COLLATE "C" NOT NULL,                 -- lower-cased secret name
    name           TEXT NOT NULL,
    version        TEXT COLLATE "C" NOT NULL,
    seq            BIGINT NOT NULL,
    value          BYTEA NOT NULL,                            -- sealed
    content_type   TEXT NOT NULL,
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
CREATE UNIQUE INDEX vault_secrets_seq ON vault_secrets (vault_key, name_key, seq);
