package backup_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/backup"
	"github.com/tenantbridge/tenantbridge/internal/backup/archive"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
)

// dataDir makes a data directory as a server's first start does: the CA,
// the server certificate, a signing key, the symmetric keys and the
// embedded store holding one tenant.
func dataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	hosts := pki.Hosts{ListenHosts: []string{"127.0.0.1"}}
	ca, err := pki.LoadOrCreateCA(dir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadOrCreateServerCert(dir, ca, hosts); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadOrCreateKeySet(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadOrCreateSecrets(dir); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, archive.DatabaseName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(t.Context(), store.Tenant{ID: "t1", Name: "contoso", Domain: "contoso.example"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// write backs dir up into memory, staging the store's copy in a
// directory of the test's.
func write(t *testing.T, dir string) ([]byte, *archive.Manifest, error) {
	t.Helper()
	var buf bytes.Buffer
	m, err := backup.Write(t.Context(), &buf, backup.Options{DataDir: dir, Database: filepath.Join(dir, archive.DatabaseName), Staging: t.TempDir()})
	return buf.Bytes(), m, err
}

// TestWriteTakesTheDirectory: the archive lists the key material and the
// store's copy, and leaves out the lock, the database's own files, hidden
// temporary files and the restore staging; a file that is not regular or
// is too large stops the backup.
func TestWriteTakesTheDirectory(t *testing.T) {
	dir := dataDir(t)
	for name, body := range map[string]string{
		"serve.lock": "123\n", "tenantbridge.db-wal": "wal", "tenantbridge.db-shm": "shm",
		".ca.pem.tmp-1": "half written", ".restore-1/ca.pem": "staged", "profiles.json": "{}", "signing/.k.pem.tmp-2": "x",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, m, err := write(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range m.Files {
		paths = append(paths, f.Path)
	}
	signing, _ := filepath.Glob(filepath.Join(dir, "signing", "*.pem"))
	want := []string{"ca-key.pem", "ca.pem", "keys/kek.key", "keys/secret-hash.key", "profiles.json", "server-key.pem", "server.pem",
		"signing/" + filepath.Base(signing[0]), archive.DatabaseName}
	if !slices.Equal(paths, want) || !m.KEK || m.Store != "sqlite" {
		t.Errorf("archived %v (kek %v, store %s); want %v", paths, m.KEK, m.Store, want)
	}
	for _, f := range m.Files {
		if strings.HasSuffix(f.Path, "key.pem") || strings.HasSuffix(f.Path, ".key") || strings.HasPrefix(f.Path, "signing/") {
			if f.Mode != "0600" {
				t.Errorf("%s archived with mode %s", f.Path, f.Mode)
			}
		}
	}

	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := write(t, dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("backup of a directory with a FIFO: %v", err)
	}
	os.Remove(fifo)
	if err := os.WriteFile(filepath.Join(dir, "big.log"), make([]byte, archive.DefaultLimits.MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := write(t, dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("backup of a directory with a large file: %v", err)
	}
	if _, _, err := write(t, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a tenantbridge data directory") {
		t.Errorf("backup of an empty directory: %v", err)
	}
}

// TestRestoreKeepsContentOnBadArchive: with Force, a directory's content
// is replaced only by an archive checked whole; a damaged one leaves it as
// it was. Without Force a directory with content is refused.
func TestRestoreKeepsContentOnBadArchive(t *testing.T) {
	good, _, err := write(t, dataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0x55

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "operator.json"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(t.Context(), bytes.NewReader(good), dir, backup.RestoreOptions{Lock: server.LockDataDir}); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore into a directory with content: %v", err)
	}
	if _, err := backup.Restore(t.Context(), bytes.NewReader(bad), dir, backup.RestoreOptions{Force: true, Lock: server.LockDataDir}); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("restore of a damaged archive: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "operator.json")); err != nil || string(b) != "old" {
		t.Fatalf("a refused archive changed the directory: %q %v", b, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 { // operator.json and the lock
		t.Fatalf("a refused archive left files: %v", entries)
	}
	m, err := backup.Restore(t.Context(), bytes.NewReader(good), dir, backup.RestoreOptions{Force: true, Lock: server.LockDataDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "operator.json")); err == nil {
		t.Error("restore --force kept a file the archive does not hold")
	}
	// The replaced content was moved aside, then removed: nothing hidden
	// is left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("restore --force left %s in the directory", e.Name())
		}
	}
	for _, f := range m.Files {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Path))); err != nil {
			t.Errorf("restored %s: %v", f.Path, err)
		}
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, archive.DatabaseName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if tn, err := st.GetTenant(t.Context(), "t1"); err != nil || tn.Name != "contoso" {
		t.Errorf("restored store: %+v %v", tn, err)
	}
}
