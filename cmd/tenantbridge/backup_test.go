package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// TestBackupAndRestore: a backup taken while the server runs and writes go
// on restores into a new directory that serves the same world: the
// tenant, the application's secret (a token), the vault secret, the queue
// messages acknowledged before the backup began, the CLI profile, and a
// token issued before the backup, which verifies against the restored
// server's JWKS and is accepted by its Resource Manager.
func TestBackupAndRestore(t *testing.T) {
	dir, stop := startStoppable(t, server.Config{})
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")
	var app struct {
		AppID string `json:"appId"`
	}
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", "worker")
	ok(t, dir, "ad", "sp", "create", "--id", app.AppID)
	var cred credentialResetView
	okJSON(t, dir, &cred, "ad", "app", "credential", "reset", "--id", app.AppID)
	ok(t, dir, "keyvault", "create", "--name", "kv-backup", "--resource-group", "rg")
	ok(t, dir, "keyvault", "secret", "set", "--vault-name", "kv-backup", "--name", "db-password", "--value", "hunter2")
	ok(t, dir, "servicebus", "namespace", "create", "--name", "sb-backup", "--resource-group", "rg")
	ok(t, dir, "servicebus", "queue", "create", "--namespace-name", "sb-backup", "--name", "orders")
	queue := []string{"--namespace-name", "sb-backup", "--queue-name", "orders"}
	ok(t, dir, append([]string{"servicebus", "message", "send", "--body", "before the backup", "--message-id", "m-0"}, queue...)...)
	oldToken := clientCredentialsToken(t, localClient(t, dir), tenant.TenantID, cred.AppID, cred.Password)

	// Writes go on during the backup: a sender numbers its messages;
	// acked is the highest number acknowledged, begun the highest sent.
	var acked, begun atomic.Int64
	acked.Store(-1)
	begun.Store(-1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(0); ; i++ {
			select {
			case <-done:
				return
			default:
			}
			begun.Store(i)
			r := tb(t, dir, append([]string{"servicebus", "message", "send", "--body", "during", "--message-id", fmt.Sprintf("w-%d", i)}, queue...)...)
			if r.code != 0 {
				t.Errorf("send w-%d: %s", i, r.stderr)
				return
			}
			acked.Store(i)
		}
	})
	for acked.Load() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	ackedBefore := acked.Load()
	archive := filepath.Join(t.TempDir(), "tb-backup.tar.gz")
	var view backupView
	okJSON(t, dir, &view, "backup", "--out", archive)
	begunBefore := begun.Load()
	close(done)
	wg.Wait()
	if view.Store != "sqlite" || !view.Database || !view.KEK || view.File != archive {
		t.Errorf("backup printed %+v", view)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the archive: %v, mode %v; want 0600", err, fi)
	}
	fails(t, dir, "never written over", "backup", "--out", archive)
	stop()

	restored := filepath.Join(t.TempDir(), "restored")
	okJSON(t, restored, &view, "restore", "--in", archive)
	if view.DataDir != restored || !view.Database {
		t.Errorf("restore printed %+v", view)
	}
	for file, mode := range map[string]os.FileMode{"ca-key.pem": 0o600, "server-key.pem": 0o600, "keys/secret-hash.key": 0o600,
		"keys/kek.key": 0o600, "operator.json": 0o600, "profiles.json": 0o600, "tenantbridge.db": 0o600, "ca.pem": 0o644} {
		if fi, err := os.Stat(filepath.Join(restored, file)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("restored %s: %v; want mode %04o", file, fi, mode)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(restored, "signing", "*.pem"))
	if len(keys) == 0 {
		t.Fatal("no signing key restored")
	}
	for _, k := range keys {
		if fi, _ := os.Stat(k); fi.Mode().Perm() != 0o600 {
			t.Errorf("restored %s has mode %04o", k, fi.Mode().Perm())
		}
	}
	_, stopRestored := startStoppable(t, server.Config{DataDir: restored})
	// The tenant and the CLI profile (the admin's sign-in) came along.
	var shown tenantJSON
	okJSON(t, restored, &shown, "tenant", "show", "contoso")
	if shown.TenantID != tenant.TenantID {
		t.Errorf("restored tenant %+v, want id %s", shown, tenant.TenantID)
	}
	ok(t, restored, "ad", "app", "show", "--id", app.AppID)
	// The secret-hash key: the application's secret gets a new token.
	client := localClient(t, restored)
	if c := claimsOf(t, clientCredentialsToken(t, client, tenant.TenantID, cred.AppID, cred.Password)); c["appid"] != cred.AppID {
		t.Errorf("a new token's appid %v", c["appid"])
	}
	// The KEK: the vault secret decrypts.
	var s secretJSON
	okJSON(t, restored, &s, "keyvault", "secret", "show", "--vault-name", "kv-backup", "--name", "db-password")
	if s.Value == nil || *s.Value != "hunter2" {
		t.Errorf("restored vault secret %+v", s)
	}
	// The queue: m-0 and every message acknowledged before the backup
	// began; none sent after it ended.
	ids := map[string]bool{}
	for from := int64(1); ; {
		var msgs []sbMessageJSON
		okJSON(t, restored, &msgs, append([]string{"servicebus", "message", "peek", "--top", "100", "--from-sequence", fmt.Sprint(from)}, queue...)...)
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			ids[m.MessageID] = true
			from = m.SequenceNumber + 1
		}
	}
	if !ids["m-0"] {
		t.Error("m-0 is not in the restored queue")
	}
	for i := int64(0); i <= ackedBefore; i++ {
		if !ids[fmt.Sprintf("w-%d", i)] {
			t.Errorf("w-%d, acknowledged before the backup, is not in the restored queue", i)
		}
	}
	for i := begunBefore + 1; i <= begunBefore+100; i++ {
		if ids[fmt.Sprintf("w-%d", i)] {
			t.Errorf("w-%d, sent after the backup ended, is in the restored queue", i)
		}
	}
	t.Logf("restored queue: %d messages; acknowledged before the backup w-0..w-%d, begun before its end w-0..w-%d", len(ids), ackedBefore, begunBefore)

	// The token issued before the backup verifies against the restored
	// server's JWKS, and its Resource Manager accepts it.
	verifyWithJWKS(t, client, tenant.TenantID, oldToken)
	req, _ := http.NewRequest(http.MethodGet, "https://management.azure.com/subscriptions/"+tenant.SubscriptionID+"/resourcegroups/rg?api-version=2021-04-01", nil)
	req.Header.Set("Authorization", "Bearer "+oldToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The application holds no role on the group: 403
	// AuthorizationFailed naming it, not 401, answers a token the server
	// accepts.
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "AuthorizationFailed") || !strings.Contains(string(body), cred.AppID) {
		t.Errorf("the old token at the restored Resource Manager: %d %s; want 403 AuthorizationFailed", resp.StatusCode, body)
	}

	// A directory with content is refused without --force; one a server
	// runs on is refused even with it.
	fails(t, restored, "not empty", "restore", "--in", archive)
	fails(t, restored, "another tenantbridge server", "restore", "--in", archive, "--force")
	stopRestored()
	// Stopped, --force replaces the content: the messages sent to the
	// restored server are gone again.
	ok(t, restored, "restore", "--in", archive, "--force")
	if entries, _ := filepath.Glob(filepath.Join(restored, ".restore-*")); len(entries) != 0 {
		t.Errorf("staging left behind: %v", entries)
	}
}

// verifyWithJWKS checks tok's signature with the key its kid names in the
// tenant's published JWKS.
func verifyWithJWKS(t *testing.T, client *http.Client, tenantID, tok string) {
	t.Helper()
	resp, err := client.Get("https://login.microsoftonline.com/" + tenantID + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d %v", resp.StatusCode, err)
	}
	sig, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	kid := sig.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("the restored JWKS has %d keys with kid %q", len(keys), kid)
	}
	if _, err := sig.Verify(keys[0]); err != nil {
		t.Errorf("the token issued before the backup does not verify against the restored JWKS: %v", err)
	}
}

// TestBackupRefusals: what backup and restore refuse, each in one line.
func TestBackupRefusals(t *testing.T) {
	empty := t.TempDir()
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	fails(t, empty, "--out FILE is required", "backup")
	fails(t, empty, "no embedded store", "backup", "--out", out)
	fails(t, empty, "not a tenantbridge data directory", "backup", "--out", out, "--store", "postgres://u@h/db")
	fails(t, empty, "store URL", "backup", "--out", out, "--store", "mysql://x")
	fails(t, empty, "--in FILE is required", "restore")
	fails(t, empty, "no such file", "restore", "--in", filepath.Join(empty, "missing.tar.gz"))
	bad := filepath.Join(t.TempDir(), "bad.tar.gz")
	if err := os.WriteFile(bad, []byte("not an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, filepath.Join(t.TempDir(), "new"), "invalid backup archive: not gzip", "restore", "--in", bad)
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused backup left its archive")
	}

	// A server's directory: the backup may not be written inside it.
	dir := startServer(t)
	fails(t, dir, "outside the data directory", "backup", "--out", filepath.Join(dir, "b.tar.gz"))
}

// TestBackupPostgresKeysOnly: with --store postgres://… the archive holds
// the key material and no database, and both commands say so; the
// restored directory holds the keys.
func TestBackupPostgresKeysOnly(t *testing.T) {
	dir, stop := startStoppable(t, server.Config{})
	stop()
	archive := filepath.Join(t.TempDir(), "keys.tar.gz")
	r := tb(t, dir, "backup", "--out", archive, "--store", "postgres://tb@db.example/tenantbridge", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "pg_dump") {
		t.Fatalf("backup --store postgres: exit %d\n%s", r.code, r.stderr)
	}
	var view backupView
	okJSONText(t, r.stdout, &view)
	if view.Store != "postgres" || view.Database {
		t.Errorf("backup printed %+v", view)
	}
	restored := filepath.Join(t.TempDir(), "keys")
	r = tb(t, restored, "restore", "--in", archive, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "pg_restore") {
		t.Fatalf("restore: exit %d\n%s", r.code, r.stderr)
	}
	for _, f := range []string{"ca-key.pem", "keys/kek.key", "keys/secret-hash.key", "operator.json"} {
		want, _ := os.ReadFile(filepath.Join(dir, f))
		got, err := os.ReadFile(filepath.Join(restored, f))
		if err != nil || string(got) != string(want) || len(want) == 0 {
			t.Errorf("restored %s differs from the original (%v)", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(restored, "tenantbridge.db")); err == nil {
		t.Error("a PostgreSQL server's backup restored an embedded store")
	}
}

// TestBackupStoreElsewhere: a server whose store is a file outside its
// data directory (serve --store sqlite://PATH) is backed up with the same
// --store, and its restored directory serves the world from the
// directory's own tenantbridge.db.
func TestBackupStoreElsewhere(t *testing.T) {
	db := filepath.Join(t.TempDir(), "elsewhere.db")
	dir, stop := startStoppable(t, server.Config{StoreURL: "sqlite://" + db})
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "fabrikam")
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	fails(t, dir, "give backup the same --store", "backup", "--out", archive)
	ok(t, dir, "backup", "--out", archive, "--store", "sqlite://"+db)
	stop()
	restored := filepath.Join(t.TempDir(), "restored")
	ok(t, restored, "restore", "--in", archive)
	startStoppable(t, server.Config{DataDir: restored})
	var shown tenantJSON
	okJSON(t, restored, &shown, "tenant", "show", "fabrikam")
	if shown.TenantID != tenant.TenantID {
		t.Errorf("restored tenant %+v, want id %s", shown, tenant.TenantID)
	}
}
