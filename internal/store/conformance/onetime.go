package conformance

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// useKey returns a fresh one-time-use key.
func useKey(what string) string { return "test:" + what + ":" + newID() }

func testOneTimeUse(t *testing.T, st store.Store) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)

	k := useKey("basic")
	must(t, st.UseOnce(ctx, k, exp), "first use")
	wantErr(t, st.UseOnce(ctx, k, exp), store.ErrConflict, "second use")
	wantErr(t, st.UseOnce(ctx, k, exp.Add(time.Hour)), store.ErrConflict, "second use with a later expiry")
	wantErr(t, st.UseOnce(ctx, k, time.Now().Add(time.Second)), store.ErrConflict, "second use with an earlier expiry")

	// Keys are exact: another case or a prefix is another key.
	must(t, st.UseOnce(ctx, strings.ToUpper(k), exp), "use of the key in upper case")
	must(t, st.UseOnce(ctx, k[:len(k)-1], exp), "use of a prefix of the key")
	must(t, st.UseOnce(ctx, k+" ", exp), "use of the key with a trailing space")

	// Up to MaxOneTimeUseKey bytes, counted in bytes not characters.
	long := strings.Repeat("é", store.MaxOneTimeUseKey/2) // 2 bytes each
	must(t, st.UseOnce(ctx, long, exp), "use of a key of the maximum length")
	wantErr(t, st.UseOnce(ctx, long, exp), store.ErrConflict, "second use of a key of the maximum length")
	for name, bad := range map[string]string{
		"empty":             "",
		"one byte too long": long + "x",
		"much too long":     strings.Repeat("k", 10*store.MaxOneTimeUseKey),
		"NUL":               "a\x00b",
		"invalid UTF-8":     "\xff\xfe",
	} {
		wantPlainErr(t, st.UseOnce(ctx, bad, exp), "use of a bad key: "+name)
	}
	// An expiry that has passed (or never was) records nothing.
	for name, when := range map[string]time.Time{
		"past": time.Now().Add(-time.Second),
		"zero": {},
	} {
		k := useKey("expired")
		wantPlainErr(t, st.UseOnce(ctx, k, when), "use with a "+name+" expiry")
		must(t, st.UseOnce(ctx, k, exp), "use after a rejected "+name+" expiry")
	}
}

// testOneTimeUseConcurrent races many users of each of several keys:
// exactly one per key may win.
func testOneTimeUseConcurrent(t *testing.T, st store.Store) {
	ctx := t.Context()
	const (
		keys    = 4
		callers = 12
	)
	exp := time.Now().Add(time.Hour)
	names := make([]string, keys)
	for i := range names {
		names[i] = useKey("race")
	}
	var (
		wg   sync.WaitGroup
		errs [keys][callers]error
	)
	start := make(chan struct{})
	for i := range keys {
		for j := range callers {
			wg.Go(func() {
				<-start
				errs[i][j] = st.UseOnce(ctx, names[i], exp)
			})
		}
	}
	close(start)
	wg.Wait()
	for i := range keys {
		won := 0
		for _, err := range errs[i] {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("key %d: losing use: got %v, want ErrConflict", i, err)
			}
		}
		if won != 1 {
			t.Errorf("key %d: %d of %d concurrent uses succeeded, want exactly 1", i, won, callers)
		}
	}
}

// testOneTimeUseConcurrentReuse races reusers of one expired record: the
// replacement must be as exclusive as the first use.
func testOneTimeUseConcurrentReuse(t *testing.T, st store.Store) {
	ctx := t.Context()
	const callers = 12
	k := useKey("reuse-race")
	exp := time.Now().Add(50 * time.Millisecond)
	must(t, st.UseOnce(ctx, k, exp), "first use")
	time.Sleep(time.Until(exp) + 10*time.Millisecond) // let it expire
	var (
		wg   sync.WaitGroup
		errs [callers]error
	)
	start := make(chan struct{})
	for j := range callers {
		wg.Go(func() {
			<-start
			errs[j] = st.UseOnce(ctx, k, time.Now().Add(time.Hour))
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("losing reuse: got %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent reuses of an expired key succeeded, want exactly 1", won, callers)
	}
}

// testOneTimeUseExpiry: an expired record is replaced, and the replacement
// holds for its own expiry.
func testOneTimeUseExpiry(t *testing.T, st store.Store) {
	ctx := t.Context()
	short, long := useKey("short"), useKey("long")
	shortExp := time.Now().Add(time.Second)
	must(t, st.UseOnce(ctx, short, shortExp), "use with a short expiry")
	must(t, st.UseOnce(ctx, long, time.Now().Add(time.Hour)), "use with a long expiry")
	wantErr(t, st.UseOnce(ctx, short, time.Now().Add(time.Hour)), store.ErrConflict, "reuse before expiry")
	time.Sleep(time.Until(shortExp) + 10*time.Millisecond)
	must(t, st.UseOnce(ctx, short, time.Now().Add(time.Hour)), "reuse after expiry")
	wantErr(t, st.UseOnce(ctx, short, time.Now().Add(time.Hour)), store.ErrConflict, "second reuse: the replacement holds")
	wantErr(t, st.UseOnce(ctx, long, time.Now().Add(time.Hour)), store.ErrConflict, "reuse of an unexpired key")
}

func testPruneUsed(t *testing.T, st store.Store) {
	ctx := t.Context()
	base := time.Now().Add(time.Hour)
	var keys [5]string
	for i := range keys {
		keys[i] = useKey(fmt.Sprintf("prune%d", i))
		// Expiries base, base+1m, ... base+4m.
		must(t, st.UseOnce(ctx, keys[i], base.Add(time.Duration(i)*time.Minute)), "use")
	}
	n, err := st.PruneUsed(ctx, time.Now())
	must(t, err, "prune now")
	if n != 0 {
		t.Errorf("PruneUsed(now) removed %d unexpired records", n)
	}
	// At base+2m: the records expiring at base, base+1m and base+2m (at,
	// not only before) are expired.
	n, err = st.PruneUsed(ctx, base.Add(2*time.Minute))
	must(t, err, "prune")
	if n != 3 {
		t.Errorf("PruneUsed removed %d records, want 3", n)
	}
	n, err = st.PruneUsed(ctx, base.Add(2*time.Minute))
	must(t, err, "prune again")
	if n != 0 {
		t.Errorf("PruneUsed again removed %d records, want 0", n)
	}
	// Pruned keys are free again; the others still taken.
	for i, k := range keys {
		err := st.UseOnce(ctx, k, base.Add(time.Hour))
		if i < 3 {
			must(t, err, fmt.Sprintf("use of pruned key %d", i))
		} else {
			wantErr(t, err, store.ErrConflict, fmt.Sprintf("use of kept key %d", i))
		}
	}
	n, err = st.PruneUsed(ctx, base.Add(24*time.Hour))
	must(t, err, "prune all")
	if n != int64(len(keys)) {
		t.Errorf("PruneUsed of everything removed %d records, want %d", n, len(keys))
	}
}

// testOneTimeUseInTx: inside a transaction a conflict leaves it usable, and
// a rollback frees the keys it used.
func testOneTimeUseInTx(t *testing.T, st store.Store) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	taken, k1, k2 := useKey("taken"), useKey("tx1"), useKey("tx2")
	must(t, st.UseOnce(ctx, taken, exp), "use outside")

	err := st.InTx(ctx, func(tx store.Store) error {
		if err := tx.UseOnce(ctx, k1, exp); err != nil {
			return err
		}
		if err := tx.UseOnce(ctx, k1, exp); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("second use in the transaction: got %v, want ErrConflict", err)
		}
		if err := tx.UseOnce(ctx, taken, exp); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("use of a key taken outside: got %v, want ErrConflict", err)
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("InTx returned %v, want errBoom", err)
	}
	must(t, st.UseOnce(ctx, k1, exp), "use of a key whose use was rolled back")

	err = st.InTx(ctx, func(tx store.Store) error {
		if err := tx.UseOnce(ctx, taken, exp); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("use of a taken key: got %v, want ErrConflict", err)
		}
		return tx.UseOnce(ctx, k2, exp)
	})
	must(t, err, "InTx after a handled conflict")
	wantErr(t, st.UseOnce(ctx, k2, exp), store.ErrConflict, "use of a key used by a committed transaction")
}
