// Package pki holds tenantbridge's key material: the local certificate
// authority that clients trust, the TLS server certificate it issues for every
// host tenantbridge answers as, the token-signing keys published as JWKS, and
// the symmetric keys that protect secrets at rest.
//
// Everything lives under one data directory:
//
//	DIR/ca.pem                  CA certificate (0644): what clients trust (SSL_CERT_FILE)
//	DIR/ca-key.pem              CA private key, PKCS#8 (0600)
//	DIR/server.pem              server certificate then the CA certificate (0644)
//	DIR/server-key.pem          server private key, PKCS#8 (0600)
//	DIR/signing/<kid>.pem       one token-signing key each: PKCS#8 key + self-signed certificate (0600),
//	                            whose NotBefore is when the key starts signing; dir 0700
//	DIR/keys/secret-hash.key    32 random bytes keying the HMAC of client secrets (0600); dir 0700
//	DIR/keys/kek.key            32 random bytes, the key-encryption key (0600), unless TENANTBRIDGE_KEK is set
//
// Files holding private keys or secrets are written atomically (a temporary
// file in the same directory, then a rename or link), so a crash never leaves
// half a key behind. Files that only need creating once (CA, signing keys,
// symmetric keys) are created exclusively, so two processes starting on the
// same directory at once cannot each create a different key.
//
// Signing keys rotate without a flag day: KeySet.Rotate writes a key that is
// published at once but signs only from its activation time on, the key it
// replaces stays published until every token it signed has expired, and
// KeySet.Prune then deletes it. Processes sharing the directory pick up each
// other's rotations with KeySet.Reload.
//
// The CA is name-constrained: even if its key leaked, it could vouch only for
// the hosts tenantbridge serves, never for an arbitrary site a client visits.
package pki
