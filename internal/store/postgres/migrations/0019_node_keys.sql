-- A fleet's key material (store.NodeKeys): every server sharing this store
-- with a node key holds the same CA, secret-hash key, key-encryption key,
-- token-signing keys and operator key. Each value is sealed under the node
-- key, which the database never sees. Nothing caches it, so its writes do
-- not move the generation and it has no change-notify trigger (0006).

CREATE TABLE node_keys (
    name    TEXT COLLATE "C" PRIMARY KEY,
    sealed  BYTEA NOT NULL,
    created TIMESTAMPTZ NOT NULL
);
