package main

import (
	"fmt"
	"sync"
	"testing"
)

// TestProfilesConcurrentSaves: commands that save profiles at the same
// time (scripts creating tenants in parallel) each keep what they saved;
// none writes back a file it read before another's change.
func TestProfilesConcurrentSaves(t *testing.T) {
	dir := t.TempDir()
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := &cli{dataDir: dir}
			p := Profile{Name: fmt.Sprintf("p%02d", i), TenantID: fmt.Sprintf("t%02d", i), ClientID: fmt.Sprintf("c%02d", i), ClientSecret: "s"}
			if err := c.saveProfile(p); err != nil {
				t.Errorf("save %s: %v", p.Name, err)
			}
		})
	}
	wg.Wait()
	s, err := (&cli{dataDir: dir}).loadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Profiles) != n || len(s.Defaults) != n {
		t.Fatalf("%d profiles and %d defaults after %d concurrent saves; want %d of each", len(s.Profiles), len(s.Defaults), n, n)
	}
}
