-- An outbox message's AuthRef: an opaque reference (e.g. to a Key Vault
-- secret) that the deliverer resolves into the Authorization header at
-- send time, so that no credential is stored with the message. Empty: no
-- Authorization header.
ALTER TABLE outbox_messages ADD COLUMN auth_ref TEXT NOT NULL DEFAULT '';
