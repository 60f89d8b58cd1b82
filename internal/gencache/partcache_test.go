package gencache_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// partEnv is a real store with two tenants and a way to write to each.
type partEnv struct {
	t    *testing.T
	ctx  context.Context
	st   store.Store
	a, b store.Tenant
}

func newPartEnv(t *testing.T) *partEnv {
	e := &partEnv{t: t, ctx: context.Background(), st: storetest.SQLite(t)}
	e.a, e.b = e.tenant(), e.tenant()
	return e
}

func (e *partEnv) tenant() store.Tenant {
	id := uuid.NewString()
	tn := store.Tenant{ID: id, Name: "t" + id[:8], Domain: "t" + id[:8] + ".onmicrosoft.com", SubscriptionID: uuid.NewString()}
	if err := e.st.CreateTenant(e.ctx, tn); err != nil {
		e.t.Fatal(err)
	}
	return tn
}

// write creates a group in tenant: a write that names its tenant.
func (e *partEnv) write(tenant string) {
	id := uuid.NewString()
	if err := e.st.CreateObject(e.ctx, store.Object{TenantID: tenant, ID: id, Kind: store.KindGroup, DisplayName: id, Data: []byte(`{}`)}); err != nil {
		e.t.Fatal(err)
	}
}

// counter counts a cache's loads of one key.
type counter struct {
	loads int
	parts []string
}

func (c *counter) load(d *gencache.Deps) (int, error) {
	c.loads++
	for _, p := range c.parts {
		d.Part(p)
	}
	return c.loads, nil
}

func TestPartCacheKeepsOtherTenantsEntries(t *testing.T) {
	e := newPartEnv(t)
	c := gencache.NewPartCache[string, int](e.st, 100)
	inA := &counter{parts: []string{store.TenantPart(e.a.ID)}}
	everything := &counter{}
	get := func(what string, k string, l *counter, want int) {
		t.Helper()
		if v, err := c.Get(k, l.load); err != nil || v != want {
			t.Fatalf("%s: %s = %d, %v; want %d", what, k, v, err, want)
		}
	}
	get("first", "a", inA, 1)
	get("first", "all", everything, 1)
	get("cached", "a", inA, 1)
	get("cached", "all", everything, 1)

	e.write(e.b.ID)
	get("after a write to B", "a", inA, 1)
	get("after a write to B", "all", everything, 2) // it named no part
	e.write(e.a.ID)
	get("after a write to A", "a", inA, 2)
	get("again", "a", inA, 2)
	if err := e.st.DeleteTenant(e.ctx, e.tenant().ID); err != nil { // names no tenant
		t.Fatal(err)
	}
	get("after a write that names no tenant", "a", inA, 3)
}

// A write that commits while a value loads is never served after it: the
// generation is read before the load.
func TestPartCacheLoadDuringWrite(t *testing.T) {
	e := newPartEnv(t)
	c := gencache.NewPartCache[string, int](e.st, 100)
	n := 0
	racing := func(d *gencache.Deps) (int, error) {
		n++
		if n == 1 {
			e.write(e.a.ID) // commits after the generation was read
		}
		d.Part(store.TenantPart(e.a.ID))
		return n, nil
	}
	if v, _ := c.Get("k", racing); v != 1 {
		t.Fatalf("first = %d", v)
	}
	if v, _ := c.Get("k", racing); v != 2 {
		t.Fatalf("served a value loaded while its tenant was written: %d", v)
	}
	if v, _ := c.Get("k", racing); v != 2 {
		t.Fatalf("not cached once quiet: %d", v)
	}
}

// While the store cannot hear other processes' changes nothing is served,
// and hearing again starts a new generation for every part.
func TestPartCacheDeaf(t *testing.T) {
	e := newPartEnv(t)
	ss, ok := e.st.(*sqlstore.Store)
	if !ok {
		t.Fatalf("storetest.SQLite gave a %T", e.st)
	}
	c := gencache.NewPartCache[string, int](e.st, 100)
	l := &counter{parts: []string{store.TenantPart(e.a.ID)}}
	_, _ = c.Get("k", l.load)
	ss.SetHearing(false)
	_, _ = c.Get("k", l.load)
	_, _ = c.Get("k", l.load)
	if l.loads != 3 {
		t.Fatalf("a deaf store's cache served: %d loads", l.loads)
	}
	ss.SetHearing(true)
	_, _ = c.Get("k", l.load)
	_, _ = c.Get("k", l.load)
	if l.loads != 4 {
		t.Fatalf("%d loads after hearing again, want 4", l.loads)
	}
	ss.NoteExternalChange() // another process's commit names no tenant
	_, _ = c.Get("k", l.load)
	if l.loads != 5 {
		t.Fatalf("an external change kept the entry: %d loads", l.loads)
	}
}

func TestPartCacheBounded(t *testing.T) {
	e := newPartEnv(t)
	c := gencache.NewPartCache[string, int](e.st, 10)
	l := &counter{parts: []string{store.TenantPart(e.a.ID)}}
	for i := range 100 {
		_, _ = c.Get(fmt.Sprint(i), l.load)
		if c.Len() > 10 {
			t.Fatalf("%d entries, max 10", c.Len())
		}
	}
}

// TestPartCacheOverflowKeepsMost: a full PartCache whose entries are all
// current lets a quarter go, not all of them.
func TestPartCacheOverflowKeepsMost(t *testing.T) {
	e := newPartEnv(t)
	c := gencache.NewPartCache[string, int](e.st, 100)
	l := &counter{parts: []string{store.TenantPart(e.a.ID)}}
	for i := range 101 {
		_, _ = c.Get(fmt.Sprint(i), l.load)
	}
	if n := c.Len(); n < 75 || n > 100 {
		t.Fatalf("%d entries after one past 100; want 75-100", n)
	}
}

// TestPartCacheSharedPartSets: entries that name the same parts share
// them and still go stale exactly when one of their own parts moves,
// whatever the order and repetition the parts were named in, also with
// more sets of parts than the cache holds entries (the sets start over).
func TestPartCacheSharedPartSets(t *testing.T) {
	e := newPartEnv(t)
	A, B := store.TenantPart(e.a.ID), store.TenantPart(e.b.ID)
	sets := map[string][]string{"a": {A}, "a again": {A, A}, "a, b": {A, B}, "b, a": {B, A}, "b": {B}, "b, a, b": {B, A, B}}
	keys := slices.Sorted(maps.Keys(sets))
	for _, max := range []int{100, 2} {
		c := gencache.NewPartCache[string, int](e.st, max)
		loads := map[string]int{}
		get := func(k string) int {
			t.Helper()
			v, err := c.Get(k, func(d *gencache.Deps) (int, error) {
				loads[k]++
				for _, p := range sets[k] {
					d.Part(p)
				}
				return loads[k], nil
			})
			if err != nil || v != loads[k] {
				t.Fatalf("%s: %d, %v after %d loads", k, v, err, loads[k])
			}
			return v
		}
		for _, k := range keys {
			if first, again := get(k), get(k); first != again {
				t.Errorf("max %d: %s not cached: %d, then %d", max, k, first, again)
			}
		}
		for _, written := range []string{e.b.ID, e.a.ID} {
			for _, k := range keys {
				get(k)
			}
			before := maps.Clone(loads)
			e.write(written)
			for _, k := range keys {
				get(k)
				stale := slices.Contains(sets[k], store.TenantPart(written))
				if reloaded := loads[k] != before[k]; reloaded != stale && (stale || max == 100) {
					t.Errorf("max %d: %s (parts %q) after a write to %s: reloaded %v", max, k, sets[k], written, reloaded)
				}
			}
		}
	}
}

// TestPartCacheDropsStaleBeforeFull: entries whose part was written to go
// once the entries have grown by half since the stale ones last went, long
// before the cache is full; current ones stay.
func TestPartCacheDropsStaleBeforeFull(t *testing.T) {
	e := newPartEnv(t)
	c := gencache.NewPartCache[string, int](e.st, 1_000_000)
	inA, inB := &counter{parts: []string{store.TenantPart(e.a.ID)}}, &counter{parts: []string{store.TenantPart(e.b.ID)}}
	for i := range 300 {
		_, _ = c.Get(fmt.Sprint("a", i), inA.load)
	}
	e.write(e.a.ID)
	for i := range 300 {
		_, _ = c.Get(fmt.Sprint("b", i), inB.load)
	}
	if n := c.Len(); n >= 600 {
		t.Fatalf("%d entries: the stale ones were kept", n)
	}
	for i := range 300 { // still cached
		if _, _ = c.Get(fmt.Sprint("b", i), inB.load); inB.loads != 300 {
			t.Fatalf("b%d loaded again (%d loads)", i, inB.loads)
		}
	}
	for i := range 300 { // never served stale
		if v, _ := c.Get(fmt.Sprint("a", i), inA.load); v != 301+i {
			t.Fatalf("a%d = %d after a write to A", i, v)
		}
	}
}
