package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeNodeKeyRefusals: a node key is refused when it is not one
// (before anything is created), when it is given twice, and without a
// PostgreSQL store, which is the only store several servers share.
func TestServeNodeKeyRefusals(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	keyFile := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fails(t, dir, "postgres", "serve", "--node-key-file", keyFile, "--listen", "127.0.0.1:0")
	fails(t, dir, "postgres", "serve", "--node-key-file", keyFile, "--store", "sqlite://"+filepath.Join(dir, "x.db"), "--listen", "127.0.0.1:0")
	fails(t, dir, "16 bytes", "serve", "--node-key-file", short, "--store", "postgres://127.0.0.1:1/x", "--listen", "127.0.0.1:0")
	fails(t, dir, "no such file", "serve", "--node-key-file", filepath.Join(dir, "missing"), "--listen", "127.0.0.1:0")
	r := tbEnv(t, dir, map[string]string{"TENANTBRIDGE_NODE_KEY": key}, "serve", "--node-key-file", keyFile, "--listen", "127.0.0.1:0")
	if r.code == 0 || !strings.Contains(r.stderr, "both") {
		t.Errorf("a node key given twice: exit %d, %q", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, key) {
		t.Error("the error shows the node key")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused serve left %d entries in the data directory", len(entries))
	}
}

// tbEnv is tb with an environment.
func tbEnv(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"--data", dir}, args...), &out, &errOut, func(k string) string { return env[k] })
	return result{out.String(), errOut.String(), code}
}
