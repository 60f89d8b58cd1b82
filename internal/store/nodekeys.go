package store

import (
	"context"
	"time"
)

// NodeKey is one piece of the key material that every server (node) of a
// fleet sharing one store must hold alike: the CA, the secret-hash key,
// the key-encryption key, a token-signing key, the operator's key. Name is
// where the node keeps it in its data directory ("ca-key.pem",
// "keys/kek.key", "signing/<kid>.pem"); Sealed is its content sealed
// (package sealed) under the fleet's node key, which the store never sees.
type NodeKey struct {
	Name    string
	Sealed  []byte
	Created time.Time
}

// NodeKeys holds a fleet's key material (see package fleet). Nothing
// caches it and its writes do not move the generation: nodes read it when
// they start and when they refresh their signing keys.
type NodeKeys interface {
	// ListNodeKeys returns every key, by name.
	ListNodeKeys(ctx context.Context) ([]NodeKey, error)
	// ClaimNodeKey stores k unless a key of its name exists, and returns
	// the stored key: k if it was stored, else the one that was there.
	// Of several nodes claiming one name at once, exactly one wins and
	// all learn the winner.
	ClaimNodeKey(ctx context.Context, k NodeKey) (NodeKey, error)
	// DeleteNodeKey removes a key; one that does not exist is no error.
	DeleteNodeKey(ctx context.Context, name string) error
}
