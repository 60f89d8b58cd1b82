package sqlstore

import (
	"slices"
	"strings"
	"testing"
)

func TestFoldAll(t *testing.T) {
	got := foldAll([]string{"/Subscriptions/A", "/subscriptions/a", "/x\x00", "\xff", "/B"})
	if want := []string{"/subscriptions/a", "/b"}; !slices.Equal(got, want) {
		t.Errorf("foldAll = %q, want %q", got, want)
	}
}

func TestScopeFilter(t *testing.T) {
	var w strings.Builder
	args, ok, err := scopeFilter(&w, nil, []string{"/A", "/a", "/B"}, "/Sübscriptions/X/")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := w.String(); got != ` AND scope_key IN (?, ?) AND (scope_key = ? OR substr(scope_key, 1, ?) = ?)` {
		t.Errorf("filter %q", got)
	}
	// The prefix length is in characters, as substr counts on both backends.
	if want := []any{"/a", "/b", "/sübscriptions/x", 17, "/sübscriptions/x/"}; !slices.Equal(args, want) {
		t.Errorf("args %v, want %v", args, want)
	}
	if _, ok, _ := scopeFilter(&w, nil, []string{"\x00"}, ""); ok {
		t.Error("a list of impossible scopes must match nothing")
	}
	if _, _, err := scopeFilter(&w, nil, make([]string, maxScopeKeys+1), ""); err != nil {
		t.Error("empty keys fold to one")
	}
}
