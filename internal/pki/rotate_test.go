package pki

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that tests move by hand; safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// start is a fixed time with a fraction of a second, so that rounding to
// the certificate's whole seconds is exercised.
var start = time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

func kids(keys []SigningKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.KeyID
	}
	return out
}

func jwksKids(t *testing.T, ks *KeySet) []string {
	t.Helper()
	doc := parseJWKS(t, ks.JWKS(""))
	out := make([]string, len(doc.Keys))
	for i, k := range doc.Keys {
		out[i], _ = k["kid"].(string)
	}
	return out
}

func wantCurrent(t *testing.T, ks *KeySet, want SigningKey, what string) {
	t.Helper()
	if got := ks.Current(); got.KeyID != want.KeyID {
		t.Fatalf("%s: Current = %s, want %s", what, got.KeyID, want.KeyID)
	}
}

func wantPublished(t *testing.T, ks *KeySet, what string, want ...SigningKey) {
	t.Helper()
	if got, w := kids(ks.Published()), kids(want); !slices.Equal(got, w) {
		t.Fatalf("%s: Published = %v, want %v", what, got, w)
	}
	if got, w := jwksKids(t, ks), kids(want); !slices.Equal(got, w) {
		t.Fatalf("%s: JWKS kids = %v, want %v", what, got, w)
	}
	for _, k := range want {
		if got, ok := ks.Lookup(k.KeyID); !ok || !got.Key.Equal(k.Key) {
			t.Fatalf("%s: Lookup(%s) failed", what, k.KeyID)
		}
	}
}

func wantStates(t *testing.T, ks *KeySet, now time.Time, want ...KeyState) {
	t.Helper()
	var got []KeyState
	for _, s := range ks.Status(now) {
		got = append(got, s.State)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Status(%v) states = %v, want %v", now, got, want)
	}
}

func keyFile(dir string, k SigningKey) string {
	return filepath.Join(dir, signingDir, k.KeyID+".pem")
}

func TestRotatePublishAhead(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(start)
	ks, err := LoadOrCreateKeySetWithClock(dir, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	old := ks.Current()
	if want := start.Truncate(time.Second); !old.Activates.Equal(want) {
		t.Fatalf("first key activates %v, want %v (now, in whole seconds)", old.Activates, want)
	}
	wantStates(t, ks, clock.Now(), KeyActive)

	const ahead = 24 * time.Hour
	nk, err := ks.Rotate(clock.Now(), ahead)
	if err != nil {
		t.Fatal(err)
	}
	// Rounded up, never down: published for at least publishAhead.
	if want := start.Add(ahead).Truncate(time.Second).Add(time.Second); !nk.Activates.Equal(want) || !nk.Cert.NotBefore.Equal(want) {
		t.Fatalf("new key activates %v (NotBefore %v), want %v", nk.Activates, nk.Cert.NotBefore, want)
	}
	if fi, err := os.Stat(keyFile(dir, nk)); err != nil {
		t.Fatal(err)
	} else if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file mode %v, want 0600", fi.Mode().Perm())
	}

	// Published at once, newest first; not signing yet.
	wantPublished(t, ks, "after rotate", nk, old)
	wantCurrent(t, ks, old, "after rotate")
	wantStates(t, ks, clock.Now(), KeyPending, KeyActive)
	clock.Set(nk.Activates.Add(-time.Nanosecond))
	wantCurrent(t, ks, old, "just before activation")

	// Activation: the new key signs, the old one is retired but published.
	clock.Set(nk.Activates)
	wantCurrent(t, ks, nk, "at activation")
	wantPublished(t, ks, "at activation", nk, old)
	st := ks.Status(clock.Now())
	if st[0].State != KeyActive || st[1].State != KeyRetired || !st[1].Retires.Equal(nk.Activates) || !st[0].Retires.IsZero() {
		t.Fatalf("Status at activation = %+v", st)
	}

	// Pruned only once every token the old key signed has expired.
	const lifetime = time.Hour
	removableAt := nk.Activates.Add(lifetime + PruneMargin)
	if got := st[1].RemovableAfter(lifetime); !got.Equal(removableAt) {
		t.Errorf("RemovableAfter = %v, want %v", got, removableAt)
	}
	for _, now := range []time.Time{clock.Now(), nk.Activates.Add(lifetime), removableAt.Add(-time.Nanosecond)} {
		removed, err := ks.Prune(now, lifetime)
		if err != nil || len(removed) != 0 {
			t.Fatalf("Prune(%v) = %v, %v; want nothing removed", now, removed, err)
		}
	}
	wantPublished(t, ks, "before the old key's tokens expire", nk, old)

	clock.Set(removableAt)
	removed, err := ks.Prune(clock.Now(), lifetime)
	if err != nil || !slices.Equal(removed, []string{old.KeyID}) {
		t.Fatalf("Prune = %v, %v; want [%s]", removed, err, old.KeyID)
	}
	wantPublished(t, ks, "after prune", nk)
	if _, ok := ks.Lookup(old.KeyID); ok {
		t.Error("pruned key still found by Lookup")
	}
	if _, err := os.Stat(keyFile(dir, old)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pruned key file: %v, want it gone", err)
	}
	wantCurrent(t, ks, nk, "after prune")
	// Nothing more to prune, ever: the only key is current.
	if removed, err := ks.Prune(clock.Now().Add(1000*time.Hour), 0); err != nil || len(removed) != 0 {
		t.Fatalf("Prune of the only key = %v, %v", removed, err)
	}
	wantPublished(t, ks, "after prune of the only key", nk)
}

func TestRotateImmediate(t *testing.T) {
	clock := newFakeClock(start)
	ks, err := LoadOrCreateKeySetWithClock(t.TempDir(), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	old := ks.Current()
	clock.Advance(time.Second)
	nk, err := ks.Rotate(clock.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if nk.Activates.After(clock.Now()) {
		t.Fatalf("publishAhead 0: activates %v, after now %v", nk.Activates, clock.Now())
	}
	wantCurrent(t, ks, nk, "rotate with publishAhead 0")
	wantPublished(t, ks, "rotate with publishAhead 0", nk, old)
	wantStates(t, ks, clock.Now(), KeyActive, KeyRetired)

	if _, err := ks.Rotate(clock.Now(), -time.Second); err == nil {
		t.Error("Rotate with a negative publishAhead succeeded")
	}
	if _, err := ks.Prune(clock.Now(), -time.Second); err == nil {
		t.Error("Prune with a negative lifetime succeeded")
	}
	if len(ks.Published()) != 2 {
		t.Errorf("rejected calls changed the set: %v", kids(ks.Published()))
	}
}

// TestPruneKeepsCurrentAndPending: whatever the lifetime, Prune removes
// neither the key that signs nor one that will.
func TestPruneKeepsCurrentAndPending(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(start)
	ks, err := LoadOrCreateKeySetWithClock(dir, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	a := ks.Current()
	clock.Advance(time.Hour)
	b, err := ks.Rotate(clock.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	c, err := ks.Rotate(clock.Now(), 48*time.Hour) // pending
	if err != nil {
		t.Fatal(err)
	}
	d, err := ks.Rotate(clock.Now(), 96*time.Hour) // pending, after c
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, ks, clock.Now(), KeyPending, KeyPending, KeyActive, KeyRetired)

	// Long after a retired, but before c activates: only a goes.
	now := c.Activates.Add(-time.Second)
	removed, err := ks.Prune(now, 0)
	if err != nil || !slices.Equal(removed, []string{a.KeyID}) {
		t.Fatalf("Prune = %v, %v; want [%s]", removed, err, a.KeyID)
	}
	clock.Set(now)
	wantCurrent(t, ks, b, "before c activates")
	wantPublished(t, ks, "before c activates", d, c, b)

	// c active, d pending: b is retired only just now, and c and d stay
	// even with a zero lifetime.
	clock.Set(c.Activates)
	removed, err = ks.Prune(clock.Now(), 0)
	if err != nil || len(removed) != 0 {
		t.Fatalf("Prune at c's activation = %v, %v; want nothing", removed, err)
	}
	removed, err = ks.Prune(clock.Now().Add(PruneMargin), 0)
	if err != nil || !slices.Equal(removed, []string{b.KeyID}) {
		t.Fatalf("Prune = %v, %v; want [%s]", removed, err, b.KeyID)
	}
	clock.Advance(PruneMargin)
	wantCurrent(t, ks, c, "after b pruned")
	wantPublished(t, ks, "after b pruned", d, c)
	// A huge lifetime keeps c after d activates.
	removed, err = ks.Prune(d.Activates.Add(time.Hour), 1000*time.Hour)
	if err != nil || len(removed) != 0 {
		t.Fatalf("Prune with a long lifetime = %v, %v; want nothing", removed, err)
	}
	// Reloading from disk agrees.
	ks2, err := LoadOrCreateKeySetWithClock(dir, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	wantPublished(t, ks2, "reloaded", d, c)
	wantCurrent(t, ks2, c, "reloaded")
}

// TestOnlyPendingKeys: a set whose every key is still pending (another
// instance's clock ran ahead) signs with the one that activates first
// rather than with nothing, and Prune removes nothing.
func TestOnlyPendingKeys(t *testing.T) {
	dir := t.TempDir()
	ahead := newFakeClock(start.Add(time.Hour))
	ks1, err := LoadOrCreateKeySetWithClock(dir, ahead.Now)
	if err != nil {
		t.Fatal(err)
	}
	first := ks1.Current()
	second, err := ks1.Rotate(ahead.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	behind := newFakeClock(start)
	ks2, err := LoadOrCreateKeySetWithClock(dir, behind.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks2.Published()) != 2 {
		t.Fatalf("a key was created although the directory has keys: %v", kids(ks2.Published()))
	}
	wantCurrent(t, ks2, first, "only pending keys")
	wantStates(t, ks2, behind.Now(), KeyPending, KeyActive)
	if removed, err := ks2.Prune(behind.Now(), 0); err != nil || len(removed) != 0 {
		t.Fatalf("Prune = %v, %v; want nothing", removed, err)
	}
	wantPublished(t, ks2, "only pending keys", second, first)
}

// TestReloadPicksUpRotation: a rotation and a prune done by another process
// on the same directory take effect on Reload.
func TestReloadPicksUpRotation(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(start)
	server, err := LoadOrCreateKeySetWithClock(dir, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	old := server.Current()
	cli, err := LoadOrCreateKeySetWithClock(dir, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	wantCurrent(t, cli, old, "second set on the directory")
	nk, err := cli.Rotate(clock.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantPublished(t, server, "before reload", old)
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	wantPublished(t, server, "after reload", nk, old)
	wantCurrent(t, server, old, "after reload, before activation")
	// The activation time came from the file and survived the reload.
	got, _ := server.Lookup(nk.KeyID)
	if !got.Activates.Equal(nk.Activates) {
		t.Fatalf("reloaded activation %v, want %v", got.Activates, nk.Activates)
	}
	clock.Set(nk.Activates)
	wantCurrent(t, server, nk, "after activation")

	clock.Set(nk.Activates.Add(time.Hour + PruneMargin))
	if removed, err := cli.Prune(clock.Now(), time.Hour); err != nil || !slices.Equal(removed, []string{old.KeyID}) {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	// The server still has the old key in memory; its own Prune finds the
	// file gone and counts it as removed.
	if removed, err := server.Prune(clock.Now(), time.Hour); err != nil || !slices.Equal(removed, []string{old.KeyID}) {
		t.Fatalf("Prune of a key pruned elsewhere = %v, %v", removed, err)
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	wantPublished(t, server, "after prune elsewhere", nk)
}

func TestReloadKeepsKeysOnError(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(start)
	ks, err := LoadOrCreateKeySetWithClock(dir, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	k := ks.Current()
	bad := filepath.Join(dir, signingDir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err == nil || !strings.Contains(err.Error(), "bad.pem") {
		t.Fatalf("Reload with a bad file: %v, want an error naming it", err)
	}
	wantPublished(t, ks, "after a failed reload", k)
	wantCurrent(t, ks, k, "after a failed reload")
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyFile(dir, k)); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err == nil {
		t.Fatal("Reload of an empty directory succeeded")
	}
	wantPublished(t, ks, "after reloading an empty directory", k)
	// Temporary files of a rotation in progress elsewhere are not keys.
	if err := os.WriteFile(filepath.Join(dir, signingDir, ".x.pem.tmp-1"), []byte("half a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Rotate(clock.Now(), 0); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err != nil {
		t.Fatalf("Reload with a temporary file: %v", err)
	}
}

// TestRotateConcurrent runs rotation, pruning and reloading (here and in a
// second set on the same directory) while readers sign and verify; run it
// with -race.
func TestRotateConcurrent(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(start)
	ks, err := LoadOrCreateKeySetWithClock(dir, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreateKeySetWithClock(dir, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := ks.Current()
				if k.Key == nil {
					t.Error("Current returned no key")
					return
				}
				if _, ok := ks.Lookup(k.KeyID); !ok {
					t.Error("Current key not found by Lookup")
					return
				}
				_ = ks.JWKS("")
				_ = ks.Status(clock.Now())
			}
		})
	}
	var writers sync.WaitGroup
	for i := range 3 {
		writers.Go(func() {
			for range 3 {
				if _, err := ks.Rotate(clock.Now(), time.Duration(i)*time.Minute); err != nil {
					t.Error(err)
				}
				if err := ks.Reload(); err != nil {
					t.Error(err)
				}
				if _, err := ks.Prune(clock.Now(), time.Hour); err != nil {
					t.Error(err)
				}
			}
		})
	}
	writers.Go(func() {
		for range 3 {
			if _, err := other.Rotate(clock.Now(), 0); err != nil {
				t.Error(err)
			}
			clock.Advance(time.Hour)
			if _, err := other.Prune(clock.Now(), 0); err != nil {
				t.Error(err)
			}
		}
	})
	writers.Wait()
	close(stop)
	readers.Wait()
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := other.Reload(); err != nil {
		t.Fatal(err)
	}
	if a, b := kids(ks.Published()), kids(other.Published()); !slices.Equal(a, b) {
		t.Errorf("sets on one directory disagree after reload: %v vs %v", a, b)
	}
	if ks.Current().KeyID != other.Current().KeyID {
		t.Error("sets on one directory disagree on the current key")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, signingDir))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestNilClock(t *testing.T) {
	if _, err := LoadOrCreateKeySetWithClock(t.TempDir(), nil); err == nil {
		t.Error("nil clock accepted")
	}
}
