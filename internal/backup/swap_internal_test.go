package backup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/backup/archive"
)

// TestSwapInUndoes: when a new entry cannot be moved into place, the
// directory's old content is put back and nothing of the new is left.
func TestSwapInUndoes(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"operator.json": "old", archive.LockName: ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	staging, err := os.MkdirTemp(dir, ".restore-*")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staging, "ca.pem"), []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory cannot be renamed over the lock file: the swap fails
	// after ca.pem has moved.
	if err := os.MkdirAll(filepath.Join(staging, archive.LockName, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := swapIn(dir, staging); err == nil {
		t.Fatal("swapIn succeeded over a file it cannot replace")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "operator.json")); err != nil || string(b) != "old" {
		t.Errorf("old content after a failed swap: %q %v", b, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{filepath.Base(staging), "operator.json", archive.LockName}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("after a failed swap the directory holds %v; want %v", names, want)
	}
}
