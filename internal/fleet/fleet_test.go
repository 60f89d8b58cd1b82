package fleet_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/fleet"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func nodeKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// start does what a fleet node's server does with its keys at start.
func start(t *testing.T, ctx context.Context, fk *fleet.Keys, dir string) error {
	t.Helper()
	before, err := fk.Pull(ctx)
	if err != nil {
		return err
	}
	hosts := pki.Hosts{ListenHosts: []string{"127.0.0.1"}}
	ca, err := pki.LoadOrCreateCA(dir, hosts)
	if err != nil {
		return err
	}
	if _, err := pki.LoadOrCreateServerCert(dir, ca, hosts); err != nil {
		return err
	}
	if _, err := pki.LoadOrCreateKeySet(dir); err != nil {
		return err
	}
	if _, err := pki.LoadOrCreateSecrets(dir); err != nil {
		return err
	}
	if err := fk.Publish(ctx, before); err != nil {
		return err
	}
	return fk.ShareOperatorKey(ctx)
}

func sameFile(t *testing.T, a, b, name string) {
	t.Helper()
	x, err := os.ReadFile(filepath.Join(a, name))
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(filepath.Join(b, name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s differs between the nodes", name)
	}
}

// TestNodesShareKeys: a second node on the store takes the first node's
// CA, symmetric keys, signing key and operator key; a key rotated on one
// node reaches the other through the store before the rotating node
// writes it, and a pruned key leaves the store; a node with another node
// key, or with keys of its own, is refused, and the store never holds a
// key in the clear.
func TestNodesShareKeys(t *testing.T) {
	t.Setenv("TENANTBRIDGE_KEK", "")
	os.Unsetenv("TENANTBRIDGE_KEK")
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		key := nodeKey(t)
		dirA, dirB := t.TempDir(), t.TempDir()
		a, err := fleet.New(st, key, dirA)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := fleet.New(st, key, dirB)
		if err := start(t, ctx, a, dirA); err != nil {
			t.Fatal(err)
		}
		if err := start(t, ctx, b, dirB); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"ca.pem", "ca-key.pem", "keys/secret-hash.key", "keys/kek.key"} {
			sameFile(t, dirA, dirB, n)
		}
		ksA, _ := pki.LoadOrCreateKeySet(dirA)
		ksB, _ := pki.LoadOrCreateKeySet(dirB)
		if ksA.Current().KeyID != ksB.Current().KeyID {
			t.Error("the nodes sign with different keys")
		}
		var opA, opB struct{ Key string }
		for _, x := range []struct {
			dir string
			v   *struct{ Key string }
		}{{dirA, &opA}, {dirB, &opB}} {
			if err := readJSON(filepath.Join(x.dir, "operator.json"), x.v); err != nil {
				t.Fatal(err)
			}
		}
		if opA.Key == "" || opA.Key != opB.Key {
			t.Error("the nodes have different operator keys")
		}

		// Rotation on A: in the store before A publishes it, then on B.
		ksA.SetPublisher(a.PublishSigningKey)
		k, err := ksA.Rotate(time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Pull(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ksB.Reload(); err != nil {
			t.Fatal(err)
		}
		if _, ok := ksB.Lookup(k.KeyID); !ok {
			t.Error("a key rotated on node A is not published by node B after its refresh")
		}
		if err := a.ForgetSigningKey(ctx, k.KeyID); err != nil {
			t.Fatal(err)
		}
		rows, err := st.(store.NodeKeys).ListNodeKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		secret, _ := os.ReadFile(filepath.Join(dirA, "keys", "kek.key"))
		for _, r := range rows {
			if r.Name == pki.SigningFileName(k.KeyID) {
				t.Error("a forgotten key is still in the store")
			}
			if bytes.Contains(r.Sealed, secret) || bytes.Contains(r.Sealed, []byte("PRIVATE KEY")) {
				t.Errorf("%s is in the store in the clear", r.Name)
			}
		}

		// Another node key cannot open the fleet's keys.
		c, _ := fleet.New(st, nodeKey(t), t.TempDir())
		if _, err := c.Pull(ctx); err == nil {
			t.Error("a node with another node key took the fleet's keys")
		}
		// A node whose directory holds keys of its own is refused.
		dirD := t.TempDir()
		if _, err := pki.LoadOrCreateSecrets(dirD); err != nil {
			t.Fatal(err)
		}
		d, _ := fleet.New(st, key, dirD)
		if _, err := d.Pull(ctx); err == nil {
			t.Error("a node with a KEK of its own joined the fleet")
		}
	})
}

// TestStartRace: two nodes that made their keys at once on an empty
// store: the second to publish drops its own (ErrStartRace) and, starting
// again, takes the first's.
func TestStartRace(t *testing.T) {
	t.Setenv("TENANTBRIDGE_KEK", "")
	os.Unsetenv("TENANTBRIDGE_KEK")
	st := storetest.SQLite(t)
	ctx := context.Background()
	key := nodeKey(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a, _ := fleet.New(st, key, dirA)
	b, _ := fleet.New(st, key, dirB)
	beforeA, _ := a.Pull(ctx)
	beforeB, _ := b.Pull(ctx)
	for _, d := range []string{dirA, dirB} {
		if _, err := pki.LoadOrCreateSecrets(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Publish(ctx, beforeA); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, beforeB); !errors.Is(err, fleet.ErrStartRace) {
		t.Fatalf("second publisher: %v, want ErrStartRace", err)
	}
	if err := start(t, ctx, b, dirB); err != nil {
		t.Fatal(err)
	}
	sameFile(t, dirA, dirB, "keys/kek.key")
}

func TestLoadNodeKey(t *testing.T) {
	k := nodeKey(t)
	v := base64.StdEncoding.EncodeToString(k)
	env := func(s string) func(string) string { return func(string) string { return s } }
	file := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(file, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := fleet.LoadNodeKey(file, env("")); err != nil || !bytes.Equal(got, k) {
		t.Errorf("from file: %v", err)
	}
	if got, err := fleet.LoadNodeKey("", env(v)); err != nil || !bytes.Equal(got, k) {
		t.Errorf("from env: %v", err)
	}
	if got, err := fleet.LoadNodeKey("", env("")); err != nil || got != nil {
		t.Errorf("none: %v %v", got, err)
	}
	for name, tc := range map[string]struct{ file, env string }{
		"both":    {file, v},
		"short":   {"", base64.StdEncoding.EncodeToString(k[:16])},
		"not b64": {"", "!!!"},
		"no file": {filepath.Join(t.TempDir(), "missing"), ""},
	} {
		if _, err := fleet.LoadNodeKey(tc.file, env(tc.env)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if bytes.Contains([]byte(err.Error()), []byte(v)) {
			t.Errorf("%s: the error holds the key", name)
		}
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
