package sqlstore

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestRebind(t *testing.T) {
	tests := []struct {
		style    Placeholder
		in, want string
	}{
		{QuestionMark, "a = ? AND b = ?", "a = ? AND b = ?"},
		{Dollar, "a = ? AND b = ?", "a = $1 AND b = $2"},
		{Dollar, "no params", "no params"},
		{Dollar, "ünïcode = ?, x IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "ünïcode = $1, x IN ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
	}
	for _, tc := range tests {
		d := Dialect{Placeholder: tc.style}
		if got := d.rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	ms, err := LoadMigrations(fstest.MapFS{
		"m/0002_queues.sql":    file("CREATE TABLE q (x INT);"),
		"m/0001_directory.sql": file("CREATE TABLE d (x INT);"),
		"m/0010_later.sql":     file("CREATE TABLE l (x INT);"),
	}, "m")
	if err == nil || !strings.Contains(err.Error(), "without gaps") {
		t.Fatalf("gap: got %v, %v", ms, err)
	}
	ms, err = LoadMigrations(fstest.MapFS{
		"m/0002_queues.sql":    file("CREATE TABLE q (x INT);"),
		"m/0001_directory.sql": file("CREATE TABLE d (x INT);"),
	}, "m")
	if err != nil || len(ms) != 2 || ms[0].Name != "directory" || ms[1].Version != 2 || ms[1].Name != "queues" {
		t.Fatalf("got %+v, %v", ms, err)
	}
	bad := []fstest.MapFS{
		{"m/0001_a.sql": file("x"), "m/001_b.sql": file("y")}, // duplicate version
		{"m/0001-a.sql": file("x")},                           // bad name
		{"m/0001_a.sql": file("  \n")},                        // empty
		{"m/README.md": file("x")},                            // stray file
		{},                                                    // none
	}
	for i, fsys := range bad {
		if _, err := LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}
