-- Vault-level soft delete (Key Vault's deletedVaults): a deleted vault
-- keeps its row, its name and its secrets and keys until it is purged;
-- deleted is when it was deleted, NULL for a live vault.
ALTER TABLE vaults ADD COLUMN deleted TEXT;
