// Package fleet lets several tenantbridge servers (nodes) on one store
// serve the same world: it keeps the key material that every node must
// hold alike — the CA, the secret-hash key, the key-encryption key, the
// token-signing keys and the operator's key — in the store, sealed under a
// node key that every node is given (serve --node-key-file, or
// TENANTBRIDGE_NODE_KEY) and the store never sees.
//
// Why the store and not a shared directory: the nodes already share the
// store and trust it to be consistent (PostgreSQL), so one more table
// needs no second shared system (an NFS mount whose locking and caching
// vary), and a rotation is one committed row that every node reads. The
// node key makes a dump of the database alone useless for signing tokens
// or opening vault values, as the data directory's files are today.
//
// Each node keeps its data directory as a local copy: at start it takes
// the fleet's files it lacks (Pull), makes what the fleet does not have
// yet as a lone server would (package pki), and offers that (Publish): of
// nodes starting together on an empty store the first to commit wins, and
// the others drop what they made and take the winner's. The signing keys
// are refreshed from the store on the server's key timer, and a rotation
// writes its key to the store before the rotating node publishes it.
package fleet

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/sealed"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// NodeKeyEnv names the environment variable that may carry the node key.
const NodeKeyEnv = "TENANTBRIDGE_NODE_KEY"

// nodeKeySize is the node key's length: an AES-256 key (pki.DecodeKey).
const nodeKeySize = 32

// operatorKeyName is the shared name of the operator's bearer key (the
// "key" of DIR/operator.json).
const operatorKeyName = "operator.key"

// operatorFile is the operator credential's file (operator.FileName).
const operatorFile = "operator.json"

// ErrStartRace means another node created the fleet's keys while this one
// was creating its own: this start's keys were dropped; starting again
// takes the fleet's.
var ErrStartRace = errors.New("fleet: another node created the fleet's keys at the same time; this node's were dropped")

// LoadNodeKey reads the node key from file (when not empty) or from
// TENANTBRIDGE_NODE_KEY (via getenv): base64 (standard or URL-safe, padded
// or not) of 32 random bytes, e.g. `openssl rand -base64 32`. Neither set
// returns nil: the server keeps its keys to itself. Both set, or a value
// that is not 32 bytes, is an error: a node that guessed would seal under
// a key the others cannot open. Errors never hold the value.
func LoadNodeKey(file string, getenv func(string) string) ([]byte, error) {
	env := getenv(NodeKeyEnv)
	if file == "" && env == "" {
		return nil, nil
	}
	if file != "" && env != "" {
		return nil, fmt.Errorf("fleet: both --node-key-file and %s are set; give the node key one way", NodeKeyEnv)
	}
	what, v := NodeKeyEnv, env
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("fleet: node key: %w", err)
		}
		if len(b) > 1024 {
			return nil, fmt.Errorf("fleet: node key file %s is not a key (%d bytes)", file, len(b))
		}
		what, v = file, string(b)
	}
	b, err := pki.DecodeKey(v)
	if err != nil {
		return nil, fmt.Errorf("fleet: the node key in %s %w", what, err)
	}
	return b, nil
}

// Keys is a node's view of the fleet's key material.
type Keys struct {
	st  store.NodeKeys
	key []byte
	dir string
}

// New returns the fleet keys of the store st, sealed under nodeKey, kept
// locally in the data directory dir. The store must hold node keys
// (store.NodeKeys).
func New(st store.Store, nodeKey []byte, dir string) (*Keys, error) {
	nk, ok := st.(store.NodeKeys)
	if !ok {
		return nil, fmt.Errorf("fleet: the store (%T) cannot hold a fleet's keys", st)
	}
	if len(nodeKey) != nodeKeySize {
		return nil, fmt.Errorf("fleet: node key is %d bytes, want %d", len(nodeKey), nodeKeySize)
	}
	return &Keys{st: nk, key: nodeKey, dir: dir}, nil
}

// aad binds a sealed value to its name, so that one row's value cannot be
// passed off as another's (the KEK as the secret-hash key, say).
func aad(name string) []byte { return []byte("tenantbridge fleet key " + name) }

func (k *Keys) open(n store.NodeKey) ([]byte, error) {
	b, err := sealed.Open(k.key, n.Sealed, aad(n.Name))
	if err != nil {
		return nil, fmt.Errorf("fleet: the fleet's %s does not open under this node's key (is it the fleet's node key?)", n.Name)
	}
	return b, nil
}

// claim offers data under name and returns what the fleet holds under it.
func (k *Keys) claim(ctx context.Context, name string, data []byte) ([]byte, error) {
	s, err := sealed.Seal(k.key, data, aad(name))
	if err != nil {
		return nil, err
	}
	got, err := k.st.ClaimNodeKey(ctx, store.NodeKey{Name: name, Sealed: s, Created: time.Now()})
	if err != nil {
		return nil, fmt.Errorf("fleet: store %s: %w", name, err)
	}
	return k.open(got)
}

// Pull writes into the data directory every shared file of the fleet that
// it lacks, and returns the names of the shared files the directory holds
// afterwards. A file the directory holds with other content than the
// fleet's is an error naming it: this node's keys are not the fleet's.
func (k *Keys) Pull(ctx context.Context) (map[string]bool, error) {
	rows, err := k.st.ListNodeKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: read the fleet's keys: %w", err)
	}
	for _, r := range rows {
		if !pki.SharedFileName(r.Name) {
			continue // the operator key, or a name of a later version
		}
		data, err := k.open(r)
		if err != nil {
			return nil, err
		}
		if _, err := pki.PlaceSharedFile(k.dir, pki.SharedFile{Name: r.Name, Data: data}); err != nil {
			if errors.Is(err, pki.ErrSharedFileDiffers) {
				return nil, fmt.Errorf("fleet: %w, not the fleet's %s: move it away to take the fleet's, or start this node on another data directory", err, r.Name)
			}
			return nil, err
		}
	}
	files, err := pki.ReadSharedFiles(k.dir)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f.Name] = true
	}
	return have, nil
}

// Publish offers the fleet every shared file of the data directory. before
// is what Pull returned: the files this start found or took from the
// fleet; the others this start made. If the fleet already holds another
// file under a name this start made (another node made it at the same
// time), this start's files are removed and ErrStartRace returned; under a
// name the directory held before, it is an error naming the file.
func (k *Keys) Publish(ctx context.Context, before map[string]bool) error {
	files, err := pki.ReadSharedFiles(k.dir)
	if err != nil {
		return err
	}
	race := false
	for _, f := range files {
		got, err := k.claim(ctx, f.Name, f.Data)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(got, f.Data) == 1 {
			continue
		}
		if before[f.Name] {
			return fmt.Errorf("fleet: %s in %s differs from the fleet's: move it away to take the fleet's", f.Name, k.dir)
		}
		race = true
	}
	if !race {
		return nil
	}
	for _, f := range files {
		if !before[f.Name] {
			if err := pki.RemoveSharedFile(k.dir, f.Name); err != nil {
				return err
			}
		}
	}
	return ErrStartRace
}

// PublishSigningKey stores a new signing key for the fleet: the
// pki.KeyPublisher of a fleet node's key set.
func (k *Keys) PublishSigningKey(f pki.SharedFile) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := k.claim(ctx, f.Name, f.Data)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(got, f.Data) != 1 {
		return fmt.Errorf("fleet: the fleet holds another %s", f.Name)
	}
	return nil
}

// ForgetSigningKey removes a pruned signing key from the fleet.
func (k *Keys) ForgetSigningKey(ctx context.Context, kid string) error {
	return k.st.DeleteNodeKey(ctx, pki.SigningFileName(kid))
}

// ShareOperatorKey makes the operator's key the fleet's: the key of the
// data directory's operator.json is offered (a new one when there is
// none), and the fleet's is written into operator.json, which the server
// then loads as a lone server would (operator.LoadOrCreateCredential keeps
// its key). An operator.json that cannot be read as JSON is an error.
func (k *Keys) ShareOperatorKey(ctx context.Context) error {
	path := filepath.Join(k.dir, operatorFile)
	doc := map[string]any{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("fleet: %s is malformed; remove it to take the fleet's operator key", path)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	local, _ := doc["key"].(string)
	if len(local) < 32 {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		local = "tbop_" + base64.RawURLEncoding.EncodeToString(b)
	}
	got, err := k.claim(ctx, operatorKeyName, []byte(local))
	if err != nil {
		return err
	}
	if string(got) == doc["key"] {
		return nil
	}
	doc["key"] = string(got)
	out, _ := json.MarshalIndent(doc, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
