package conformance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// UserTokenTests are the store.RefreshTokens and store.DeviceCodes tests,
// in the form Run lists its tests.
var UserTokenTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"RefreshTokensRotation", testRefreshTokensRotation},
	{"RefreshTokensReuse", testRefreshTokensReuse},
	{"RefreshTokensConcurrentRedeem", testRefreshTokensConcurrentRedeem},
	{"RefreshTokensConcurrentRevoke", testRefreshTokensConcurrentRevoke},
	{"RefreshTokensExpiry", testRefreshTokensExpiry},
	{"RefreshTokensRevoke", testRefreshTokensRevoke},
	{"RefreshTokensPrune", testRefreshTokensPrune},
	{"RefreshTokensGeneration", testRefreshTokensGeneration},
	{"UserTokensTenantCascade", testUserTokensTenantCascade},
	{"DeviceCodes", testDeviceCodes},
	{"DeviceCodesApprove", testDeviceCodesApprove},
	{"DeviceCodesDeny", testDeviceCodesDeny},
	{"DeviceCodesExpiry", testDeviceCodesExpiry},
	{"DeviceCodesConcurrent", testDeviceCodesConcurrent},
}

// tokenID returns the ID of a fresh random token value: its SHA-256 in hex.
func tokenID() string {
	var v [32]byte
	_, _ = rand.Read(v[:])
	h := sha256.Sum256(v[:])
	return hex.EncodeToString(h[:])
}

type tokenFixture struct {
	*fixture
	tn store.Tenant
}

func newTokenFixture(t *testing.T, st store.Store) *tokenFixture {
	f := &tokenFixture{fixture: newFixture(t, st)}
	f.tn = f.tenant()
	return f
}

// signIn creates the first token of a new family for client and user,
// created at created and expiring 90 days later, and returns it as stored.
func (f *tokenFixture) signIn(tenantID, client, user string, created time.Time) store.RefreshToken {
	f.t.Helper()
	rt := store.RefreshToken{ID: tokenID(), FamilyID: newID(), TenantID: tenantID, ClientID: client, UserID: user,
		Scope: "openid profile offline_access https://graph.microsoft.com/User.Read", AuthTime: created.Add(-time.Second),
		AMR: []string{"pwd", "mfa"}, Created: created, Expires: created.Add(90 * 24 * time.Hour)}
	must(f.t, f.st.CreateRefreshToken(f.ctx, rt), "create refresh token")
	return storedToken(rt)
}

// storedToken is how the store gives back a token it was given.
func storedToken(rt store.RefreshToken) store.RefreshToken {
	for _, p := range []*time.Time{&rt.AuthTime, &rt.Created, &rt.Expires, &rt.RedeemedAt, &rt.RevokedAt} {
		if !p.IsZero() {
			*p = stored(*p)
		}
	}
	if len(rt.AMR) == 0 {
		rt.AMR = nil
	}
	return rt
}

// rotate redeems rt at now and returns the redeemed record and its
// successor, which expires 90 days after now.
func (f *tokenFixture) rotate(rt store.RefreshToken, now time.Time) (redeemed, next store.RefreshToken) {
	f.t.Helper()
	next = store.RefreshToken{ID: tokenID(), Expires: now.Add(90 * 24 * time.Hour)}
	redeemed, err := f.st.RedeemRefreshToken(f.ctx, rt.ID, now, next)
	must(f.t, err, "redeem refresh token")
	want := rt
	want.RedeemedAt = stored(now)
	checkToken(f.t, "redeemed token", redeemed, want)
	next.FamilyID, next.TenantID, next.ClientID, next.UserID = rt.FamilyID, rt.TenantID, rt.ClientID, rt.UserID
	next.Scope, next.AuthTime, next.AMR, next.Created = rt.Scope, rt.AuthTime, rt.AMR, now
	return redeemed, storedToken(next)
}

func checkToken(t testing.TB, what string, got, want store.RefreshToken) {
	t.Helper()
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"AuthTime", got.AuthTime, want.AuthTime}, {"Created", got.Created, want.Created}, {"Expires", got.Expires, want.Expires},
		{"RedeemedAt", got.RedeemedAt, want.RedeemedAt}, {"RevokedAt", got.RevokedAt, want.RevokedAt},
	} {
		if tc.want.IsZero() {
			if !tc.got.IsZero() {
				t.Errorf("%s: %s: got %v, want zero", what, tc.name, tc.got)
			}
			continue
		}
		checkTime(t, what+" "+tc.name, tc.got, tc.want)
	}
	if !slices.Equal(got.AMR, want.AMR) {
		t.Errorf("%s: AMR: got %q, want %q", what, got.AMR, want.AMR)
	}
	got.AuthTime, got.Created, got.Expires, got.RedeemedAt, got.RevokedAt, got.AMR = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, nil
	want.AuthTime, want.Created, want.Expires, want.RedeemedAt, want.RevokedAt, want.AMR = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, nil
	if got.ID != want.ID || got.FamilyID != want.FamilyID || got.TenantID != want.TenantID || got.ClientID != want.ClientID ||
		got.UserID != want.UserID || got.Scope != want.Scope {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func (f *tokenFixture) list(q store.RefreshTokenQuery) []store.RefreshToken {
	f.t.Helper()
	got, err := f.st.ListRefreshTokens(f.ctx, q)
	must(f.t, err, "list refresh tokens")
	return got
}

func (f *tokenFixture) family(rt store.RefreshToken) []store.RefreshToken {
	f.t.Helper()
	return f.list(store.RefreshTokenQuery{TenantID: rt.TenantID, FamilyID: rt.FamilyID})
}

func tokenIDs(ts []store.RefreshToken) []string {
	out := make([]string, len(ts))
	for i, rt := range ts {
		out[i] = rt.ID
	}
	return out
}

func testRefreshTokensRotation(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	client, user := newID(), newID()
	first := f.signIn(f.tn.ID, client, user, at(0))
	got := f.family(first)
	if len(got) != 1 {
		t.Fatalf("after sign-in: %d tokens, want 1", len(got))
	}
	checkToken(t, "created token", got[0], first)

	// A chain of rotations: each token is spent by its redemption and its
	// successor inherits everything but the ID and the expiry.
	chain := []store.RefreshToken{first}
	cur := first
	for i := 1; i <= 4; i++ {
		var redeemed store.RefreshToken
		redeemed, cur = f.rotate(cur, at(time.Duration(i)*time.Hour))
		chain[len(chain)-1] = redeemed
		chain = append(chain, cur)
	}
	got = f.family(first)
	checkIDs(t, "the family, ordered by Created", tokenIDs(got), tokenIDs(chain))
	for i := range got {
		checkToken(t, "family token", got[i], chain[i])
	}

	// A zero Created of the next token is the redemption's now; next may
	// restate its identity, and its own Scope and AMR are kept.
	next := store.RefreshToken{ID: tokenID(), FamilyID: cur.FamilyID, TenantID: cur.TenantID, ClientID: cur.ClientID, UserID: cur.UserID,
		Scope: "openid", AMR: []string{"pwd"}, Expires: at(100 * 24 * time.Hour)}
	_, err := st.RedeemRefreshToken(f.ctx, cur.ID, at(5*time.Hour), next)
	must(t, err, "redeem with a full next token")
	got = f.family(first)
	last := got[len(got)-1]
	if last.ID != next.ID || last.Scope != "openid" || !slices.Equal(last.AMR, []string{"pwd"}) {
		t.Errorf("next token stored as %+v, want %+v", last, next)
	}
	checkTime(t, "next token Created", last.Created, stored(at(5*time.Hour)))
	cur = last

	// A successor that claims another identity, or reuses an ID, is
	// refused and the redemption undone.
	for name, bad := range map[string]store.RefreshToken{
		"other family": {ID: tokenID(), FamilyID: newID(), Expires: at(100 * 24 * time.Hour)},
		"other client": {ID: tokenID(), ClientID: newID(), Expires: at(100 * 24 * time.Hour)},
		"other user":   {ID: tokenID(), UserID: newID(), Expires: at(100 * 24 * time.Hour)},
		"other tenant": {ID: tokenID(), TenantID: f.tenant().ID, Expires: at(100 * 24 * time.Hour)},
		"no expiry":    {ID: tokenID()},
		"no id":        {Expires: at(100 * 24 * time.Hour)},
		"same id":      {ID: cur.ID, Expires: at(100 * 24 * time.Hour)},
		"bad text":     {ID: "a\x00b", Expires: at(100 * 24 * time.Hour)},
	} {
		wantPlainErr(t, errOnly(st.RedeemRefreshToken(f.ctx, cur.ID, at(6*time.Hour), bad)), "redeem with a bad next token: "+name)
	}
	_, err = st.RedeemRefreshToken(f.ctx, cur.ID, at(6*time.Hour), store.RefreshToken{ID: first.ID, Expires: at(100 * 24 * time.Hour)})
	wantErr(t, err, store.ErrConflict, "redeem with a next token whose ID is taken")
	if got := f.family(first); len(got) != len(chain)+1 || !got[len(got)-1].RedeemedAt.IsZero() {
		t.Fatalf("refused redemptions changed the family: %+v", got)
	}
	f.rotate(cur, at(7*time.Hour))

	// Creation errors.
	wantErr(t, st.CreateRefreshToken(f.ctx, first), store.ErrConflict, "create with a taken ID")
	dup := first
	dup.ID, dup.TenantID = tokenID(), newID()
	wantErr(t, st.CreateRefreshToken(f.ctx, dup), store.ErrNotFound, "create in an unknown tenant")
	for name, mod := range map[string]func(rt *store.RefreshToken){
		"no id":      func(rt *store.RefreshToken) { rt.ID = "" },
		"no family":  func(rt *store.RefreshToken) { rt.FamilyID = "" },
		"no tenant":  func(rt *store.RefreshToken) { rt.TenantID = "" },
		"no client":  func(rt *store.RefreshToken) { rt.ClientID = "" },
		"no user":    func(rt *store.RefreshToken) { rt.UserID = "" },
		"no expiry":  func(rt *store.RefreshToken) { rt.Expires = time.Time{} },
		"NUL scope":  func(rt *store.RefreshToken) { rt.Scope = "a\x00" },
		"bad AMR":    func(rt *store.RefreshToken) { rt.AMR = []string{"\xff"} },
		"bad client": func(rt *store.RefreshToken) { rt.ClientID = "\xfe" },
	} {
		bad := first
		bad.ID = tokenID()
		mod(&bad)
		wantPlainErr(t, st.CreateRefreshToken(f.ctx, bad), "create a bad token: "+name)
	}

	// Unknown and impossible IDs are not found; the case of an ID matters.
	for _, id := range []string{tokenID(), "", "a\x00b", "\xff"} {
		_, err := st.RedeemRefreshToken(f.ctx, id, at(8*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(100 * 24 * time.Hour)})
		wantErr(t, err, store.ErrNotFound, "redeem an unknown token")
	}
}

func errOnly[T any](_ T, err error) error { return err }

func testRefreshTokensReuse(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	client, user := newID(), newID()
	t1 := f.signIn(f.tn.ID, client, user, at(0))
	other := f.signIn(f.tn.ID, client, user, at(0)) // another sign-in of the same user: another family
	_, t2 := f.rotate(t1, at(time.Hour))
	_, t3 := f.rotate(t2, at(2*time.Hour))

	// The spent t1 presented again: someone holds a copy. The family is
	// revoked, and nothing is issued.
	spare := tokenID()
	_, err := st.RedeemRefreshToken(f.ctx, t1.ID, at(3*time.Hour), store.RefreshToken{ID: spare, Expires: at(100 * 24 * time.Hour)})
	wantErr(t, err, store.ErrRefreshTokenReused, "redeem a spent token")
	fam := f.family(t1)
	checkIDs(t, "family after reuse", tokenIDs(fam), []string{t1.ID, t2.ID, t3.ID})
	for _, rt := range fam {
		checkTime(t, "RevokedAt of "+rt.ID[:8], rt.RevokedAt, at(3*time.Hour))
	}
	if !fam[2].RedeemedAt.IsZero() {
		t.Errorf("the newest token was marked redeemed: %+v", fam[2])
	}

	// Now every token of it fails: the newest (never redeemed) as revoked,
	// the spent ones as reused again.
	_, err = st.RedeemRefreshToken(f.ctx, t3.ID, at(4*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(100 * 24 * time.Hour)})
	wantErr(t, err, store.ErrRevoked, "redeem the newest token of a revoked family")
	for _, rt := range []store.RefreshToken{t1, t2} {
		_, err = st.RedeemRefreshToken(f.ctx, rt.ID, at(4*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(100 * 24 * time.Hour)})
		wantErr(t, err, store.ErrRefreshTokenReused, "redeem a spent token of a revoked family")
	}
	// A second reuse leaves the first revocation's time alone.
	for _, rt := range f.family(t1) {
		checkTime(t, "RevokedAt after another reuse", rt.RevokedAt, at(3*time.Hour))
	}

	// The user's other family is untouched and still rotates.
	got := f.family(other)
	if len(got) != 1 || !got[0].RevokedAt.IsZero() {
		t.Fatalf("another family was touched: %+v", got)
	}
	f.rotate(other, at(5*time.Hour))

	// A failed redemption of the same token inside a transaction that
	// commits keeps the revocation, like outside one.
	u1 := f.signIn(f.tn.ID, client, user, at(0))
	_, u2 := f.rotate(u1, at(time.Hour))
	must(t, st.InTx(f.ctx, func(tx store.Store) error {
		_, err := tx.RedeemRefreshToken(f.ctx, u1.ID, at(2*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(100 * 24 * time.Hour)})
		if !errors.Is(err, store.ErrRefreshTokenReused) {
			t.Errorf("reuse in a transaction: got %v, want %v", err, store.ErrRefreshTokenReused)
		}
		return nil
	}), "transaction")
	_, err = st.RedeemRefreshToken(f.ctx, u2.ID, at(3*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(100 * 24 * time.Hour)})
	wantErr(t, err, store.ErrRevoked, "redeem the newest token after a reuse in a committed transaction")
}

// testRefreshTokensConcurrentRedeem races redemptions of one token: exactly
// one wins, every other one is reuse, and the family ends revoked,
// including the winner's new token.
func testRefreshTokensConcurrentRedeem(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	const (
		rounds  = 3
		callers = 12
	)
	for round := range rounds {
		rt := f.signIn(f.tn.ID, newID(), newID(), at(0))
		var (
			wg   sync.WaitGroup
			errs [callers]error
			next [callers]string
		)
		start := make(chan struct{})
		for i := range callers {
			next[i] = tokenID()
			wg.Go(func() {
				<-start
				_, errs[i] = st.RedeemRefreshToken(f.ctx, rt.ID, at(time.Hour), store.RefreshToken{ID: next[i], Expires: at(100 * 24 * time.Hour)})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Errorf("round %d: callers %d and %d both redeemed the token", round, winner, i)
				}
				winner = i
			case !errors.Is(err, store.ErrRefreshTokenReused):
				t.Errorf("round %d: caller %d: got %v, want %v", round, i, err, store.ErrRefreshTokenReused)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no caller redeemed the token: %v", round, errs)
		}
		fam := f.family(rt)
		checkIDs(t, "family after the race", tokenIDs(fam), []string{rt.ID, next[winner]})
		for _, got := range fam {
			if got.RevokedAt.IsZero() {
				t.Errorf("round %d: token %s not revoked after the race", round, got.ID[:8])
			}
		}
	}
}

// testRefreshTokensConcurrentRevoke races a client that keeps rotating its
// token against replays of spent tokens and revocations of the user: every
// call either succeeds or fails with a token error (no deadlock, no other
// failure), and once all are done no token of any family is left
// redeemable, including tokens issued while a revocation ran.
func testRefreshTokensConcurrentRevoke(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	const (
		families  = 4
		rotations = 15
	)
	client, user := newID(), newID()
	okErr := func(what string, err error) {
		if err != nil && !errors.Is(err, store.ErrRefreshTokenReused) && !errors.Is(err, store.ErrRevoked) {
			t.Errorf("%s: %v", what, err)
		}
	}
	var wg sync.WaitGroup
	firsts := make([]store.RefreshToken, families)
	for i := range firsts {
		firsts[i] = f.signIn(f.tn.ID, client, user, at(0))
	}
	start := make(chan struct{})
	for i := range families {
		spent := make(chan string, rotations)
		wg.Go(func() { // the client
			defer close(spent)
			<-start
			cur := firsts[i].ID
			for j := range rotations {
				next := tokenID()
				_, err := st.RedeemRefreshToken(f.ctx, cur, at(time.Duration(j+1)*time.Minute), store.RefreshToken{ID: next, Expires: at(100 * 24 * time.Hour)})
				okErr("rotate", err)
				if err != nil {
					return
				}
				spent <- cur
				cur = next
			}
		})
		wg.Go(func() { // the thief replays what the client spent
			<-start
			for id := range spent {
				_, err := st.RedeemRefreshToken(f.ctx, id, at(time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(100 * 24 * time.Hour)})
				okErr("replay", err)
			}
		})
	}
	wg.Go(func() { // the administrator
		<-start
		for range 3 {
			_, err := st.RevokeRefreshTokens(f.ctx, store.RefreshTokenQuery{TenantID: f.tn.ID, UserID: user}, at(2*time.Hour))
			okErr("revoke", err)
		}
	})
	close(start)
	wg.Wait()
	for _, rt := range f.list(store.RefreshTokenQuery{TenantID: f.tn.ID, UserID: user}) {
		if rt.RevokedAt.IsZero() {
			t.Errorf("token %s of family %s left unrevoked", rt.ID[:8], rt.FamilyID[:8])
		}
	}
}

func testRefreshTokensExpiry(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	rt := store.RefreshToken{ID: tokenID(), FamilyID: newID(), TenantID: f.tn.ID, ClientID: newID(), UserID: newID(),
		Created: at(0), Expires: at(time.Hour)}
	must(t, st.CreateRefreshToken(f.ctx, rt), "create")
	// Expires is the first moment the token is no longer accepted.
	for _, when := range []time.Time{at(time.Hour), at(2 * time.Hour)} {
		_, err := st.RedeemRefreshToken(f.ctx, rt.ID, when, store.RefreshToken{ID: tokenID(), Expires: when.Add(time.Hour)})
		wantErr(t, err, store.ErrExpired, "redeem an expired token")
	}
	got := f.family(rt)
	if len(got) != 1 || !got[0].RedeemedAt.IsZero() || !got[0].RevokedAt.IsZero() {
		t.Fatalf("refused redemptions of an expired token changed the family: %+v", got)
	}
	// A microsecond before, it is accepted, and the successor has its own
	// expiry; no AMR and no AuthTime read back as nil and zero.
	_, next := f.rotate(storedToken(rt), at(time.Hour-time.Microsecond))
	checkToken(t, "successor", f.family(rt)[1], next)
	_, err := st.RedeemRefreshToken(f.ctx, next.ID, at(2*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(3 * time.Hour)})
	must(t, err, "redeem the successor after the first token's expiry")

	// Revocation wins over expiry, reuse over both.
	r2 := f.signIn(f.tn.ID, newID(), newID(), at(0))
	n, err := st.RevokeRefreshTokens(f.ctx, store.RefreshTokenQuery{TenantID: f.tn.ID, FamilyID: r2.FamilyID}, at(time.Hour))
	must(t, err, "revoke")
	if n != 1 {
		t.Errorf("revoked %d, want 1", n)
	}
	for _, when := range []time.Time{at(2 * time.Hour), at(1000 * 24 * time.Hour)} {
		_, err = st.RedeemRefreshToken(f.ctx, r2.ID, when, store.RefreshToken{ID: tokenID(), Expires: when.Add(time.Hour)})
		wantErr(t, err, store.ErrRevoked, "redeem a revoked token")
	}
	_, err = st.RedeemRefreshToken(f.ctx, rt.ID, at(1000*24*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(1001 * 24 * time.Hour)})
	wantErr(t, err, store.ErrRefreshTokenReused, "redeem a spent, expired token")
}

func testRefreshTokensRevoke(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	other := f.tenant()
	clientA, clientB, user1, user2 := newID(), newID(), newID(), newID()
	a1 := f.signIn(f.tn.ID, clientA, user1, at(0))
	a1b := f.signIn(f.tn.ID, clientA, user1, at(time.Minute))
	a2 := f.signIn(f.tn.ID, clientA, user2, at(2*time.Minute))
	b1 := f.signIn(f.tn.ID, clientB, user1, at(3*time.Minute))
	b2 := f.signIn(f.tn.ID, clientB, user2, at(4*time.Minute))
	x := f.signIn(other.ID, clientA, user1, at(0)) // the same ids in another tenant
	_, a1next := f.rotate(a1, at(time.Hour))

	checkIDs(t, "list by tenant", tokenIDs(f.list(store.RefreshTokenQuery{TenantID: f.tn.ID})),
		[]string{a1.ID, a1b.ID, a2.ID, b1.ID, b2.ID, a1next.ID})
	checkIDs(t, "list by client", tokenIDs(f.list(store.RefreshTokenQuery{TenantID: f.tn.ID, ClientID: clientB})), []string{b1.ID, b2.ID})
	checkIDs(t, "list by user", tokenIDs(f.list(store.RefreshTokenQuery{TenantID: f.tn.ID, UserID: user1})),
		[]string{a1.ID, a1b.ID, b1.ID, a1next.ID})
	checkIDs(t, "list by client and user", tokenIDs(f.list(store.RefreshTokenQuery{TenantID: f.tn.ID, ClientID: clientA, UserID: user1})),
		[]string{a1.ID, a1b.ID, a1next.ID})
	checkIDs(t, "list by family", tokenIDs(f.list(store.RefreshTokenQuery{TenantID: f.tn.ID, FamilyID: a1.FamilyID})), []string{a1.ID, a1next.ID})
	checkIDs(t, "list by a family of another tenant", tokenIDs(f.list(store.RefreshTokenQuery{TenantID: f.tn.ID, FamilyID: x.FamilyID})), nil)
	checkIDs(t, "list with hostile text", tokenIDs(f.list(store.RefreshTokenQuery{TenantID: f.tn.ID, UserID: "\xff"})), nil)
	_, err := st.ListRefreshTokens(f.ctx, store.RefreshTokenQuery{ClientID: clientA})
	wantPlainErr(t, err, "list without a tenant")
	_, err = st.RevokeRefreshTokens(f.ctx, store.RefreshTokenQuery{ClientID: clientA}, at(time.Hour))
	wantPlainErr(t, err, "revoke without a tenant")

	revoke := func(q store.RefreshTokenQuery, when time.Time, want int64) {
		t.Helper()
		n, err := st.RevokeRefreshTokens(f.ctx, q, when)
		must(t, err, "revoke")
		if n != want {
			t.Errorf("revoke %+v: %d revoked, want %d", q, n, want)
		}
	}
	revoke(store.RefreshTokenQuery{TenantID: f.tn.ID, FamilyID: a1.FamilyID}, at(2*time.Hour), 2)
	revoke(store.RefreshTokenQuery{TenantID: f.tn.ID, FamilyID: a1.FamilyID}, at(3*time.Hour), 0)
	revoke(store.RefreshTokenQuery{TenantID: f.tn.ID, ClientID: clientA}, at(3*time.Hour), 2) // a1b, a2
	revoke(store.RefreshTokenQuery{TenantID: f.tn.ID, UserID: user1}, at(4*time.Hour), 1)     // b1
	revoke(store.RefreshTokenQuery{TenantID: f.tn.ID, ClientID: clientB, UserID: user1}, at(5*time.Hour), 0)
	revoke(store.RefreshTokenQuery{TenantID: f.tn.ID, UserID: "\x00"}, at(5*time.Hour), 0)

	want := map[string]time.Time{a1.ID: at(2 * time.Hour), a1next.ID: at(2 * time.Hour), a1b.ID: at(3 * time.Hour),
		a2.ID: at(3 * time.Hour), b1.ID: at(4 * time.Hour), b2.ID: {}}
	for _, rt := range f.list(store.RefreshTokenQuery{TenantID: f.tn.ID}) {
		if w := want[rt.ID]; w.IsZero() {
			if !rt.RevokedAt.IsZero() {
				t.Errorf("token %s revoked at %v, want not revoked", rt.ID[:8], rt.RevokedAt)
			}
		} else {
			checkTime(t, "RevokedAt of "+rt.ID[:8], rt.RevokedAt, w)
		}
	}
	for _, rt := range []store.RefreshToken{a1next, a1b, a2, b1} {
		_, err := st.RedeemRefreshToken(f.ctx, rt.ID, at(6*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(100 * 24 * time.Hour)})
		wantErr(t, err, store.ErrRevoked, "redeem a revoked token")
	}
	f.rotate(b2, at(6*time.Hour))
	// The other tenant is untouched.
	if got := f.list(store.RefreshTokenQuery{TenantID: other.ID}); len(got) != 1 || !got[0].RevokedAt.IsZero() {
		t.Errorf("another tenant's tokens were touched: %+v", got)
	}
}

func testRefreshTokensPrune(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	day := 24 * time.Hour
	now := at(10 * day)
	mk := func(created, expires time.Time) store.RefreshToken {
		rt := store.RefreshToken{ID: tokenID(), FamilyID: newID(), TenantID: f.tn.ID, ClientID: newID(), UserID: newID(),
			Created: created, Expires: expires}
		must(t, st.CreateRefreshToken(f.ctx, rt), "create")
		return rt
	}
	expiredLongAgo := mk(at(0), now.Add(-day-time.Microsecond))
	expiredLately := mk(at(0), now.Add(-day)) // exactly a day: kept
	redeemedLongAgo := mk(at(0), now.Add(90*day))
	_, successor := f.rotate(storedToken(redeemedLongAgo), now.Add(-2*day))
	redeemedLately := mk(at(0), now.Add(90*day))
	_, successor2 := f.rotate(storedToken(redeemedLately), now.Add(-time.Hour))
	revokedLongAgo := mk(at(0), now.Add(90*day))
	n, err := st.RevokeRefreshTokens(f.ctx, store.RefreshTokenQuery{TenantID: f.tn.ID, FamilyID: revokedLongAgo.FamilyID}, now.Add(-3*day))
	must(t, err, "revoke")
	if n != 1 {
		t.Fatalf("revoked %d, want 1", n)
	}
	live := mk(at(0), now.Add(time.Hour))

	n, err = st.PruneRefreshTokens(f.ctx, now)
	must(t, err, "prune")
	if n != 3 {
		t.Errorf("pruned %d, want 3", n)
	}
	checkIDs(t, "after pruning", sortedCopy(tokenIDs(f.list(store.RefreshTokenQuery{TenantID: f.tn.ID}))...),
		sortedCopy(expiredLately.ID, successor.ID, redeemedLately.ID, successor2.ID, live.ID))
	n, err = st.PruneRefreshTokens(f.ctx, now)
	must(t, err, "prune again")
	if n != 0 {
		t.Errorf("pruned %d again, want 0", n)
	}
	// A pruned spent token is merely unknown.
	_, err = st.RedeemRefreshToken(f.ctx, expiredLongAgo.ID, now, store.RefreshToken{ID: tokenID(), Expires: now.Add(day)})
	wantErr(t, err, store.ErrNotFound, "redeem a pruned token")
}

// testRefreshTokensGeneration: nothing caches user tokens, so their writes
// leave the generation alone.
func testRefreshTokensGeneration(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	rt := f.signIn(f.tn.ID, newID(), newID(), at(0)) // before: creating the tenant moved it
	before := st.Generation()
	_, next := f.rotate(rt, at(time.Hour))
	_, err := st.RedeemRefreshToken(f.ctx, rt.ID, at(2*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(3 * time.Hour)})
	wantErr(t, err, store.ErrRefreshTokenReused, "reuse")
	_, err = st.RevokeRefreshTokens(f.ctx, store.RefreshTokenQuery{TenantID: f.tn.ID, UserID: next.UserID}, at(3*time.Hour))
	must(t, err, "revoke")
	_, err = st.PruneRefreshTokens(f.ctx, at(1000*24*time.Hour))
	must(t, err, "prune")
	dc := newDeviceCode(f.tn.ID, at(0))
	must(t, st.CreateDeviceCode(f.ctx, dc), "create device code")
	must(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), true, newID(), f.tn.ID, at(time.Minute), nil), "approve")
	_, err = st.PollDeviceCode(f.ctx, dc.ID, at(time.Minute))
	must(t, err, "poll")
	_, err = st.PruneDeviceCodes(f.ctx, at(1000*24*time.Hour))
	must(t, err, "prune device codes")
	if got := st.Generation(); got != before {
		t.Errorf("user token writes moved the generation from %d to %d", before, got)
	}
}

func testUserTokensTenantCascade(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	keep := f.tenant()
	gone := f.tenant()
	rt := f.signIn(gone.ID, newID(), newID(), at(0))
	_, next := f.rotate(rt, at(time.Hour))
	kept := f.signIn(keep.ID, rt.ClientID, rt.UserID, at(0))
	dcGone := newDeviceCode(gone.ID, at(0))
	must(t, st.CreateDeviceCode(f.ctx, dcGone), "create device code")
	dcApproved := newDeviceCode("", at(0)) // the tenant is the approver's
	must(t, st.CreateDeviceCode(f.ctx, dcApproved), "create device code without a tenant")
	must(t, st.DecideDeviceCode(f.ctx, dcApproved.UserCode, at(time.Minute), true, newID(), gone.ID, at(time.Minute), nil), "approve")
	dcKept := newDeviceCode("", at(0))
	must(t, st.CreateDeviceCode(f.ctx, dcKept), "create another device code without a tenant")

	must(t, st.DeleteTenant(f.ctx, gone.ID), "delete tenant")
	if got := f.list(store.RefreshTokenQuery{TenantID: gone.ID}); len(got) != 0 {
		t.Errorf("%d refresh tokens left in a deleted tenant", len(got))
	}
	for _, id := range []string{rt.ID, next.ID} {
		_, err := st.RedeemRefreshToken(f.ctx, id, at(2*time.Hour), store.RefreshToken{ID: tokenID(), Expires: at(3 * time.Hour)})
		wantErr(t, err, store.ErrNotFound, "redeem a token of a deleted tenant")
	}
	for _, dc := range []store.DeviceCode{dcGone, dcApproved} {
		_, err := st.PollDeviceCode(f.ctx, dc.ID, at(2*time.Minute))
		wantErr(t, err, store.ErrNotFound, "poll a device code of a deleted tenant")
	}
	if got := f.list(store.RefreshTokenQuery{TenantID: keep.ID}); len(got) != 1 || got[0].ID != kept.ID {
		t.Errorf("another tenant's tokens: %+v", got)
	}
	_, err := st.PollDeviceCode(f.ctx, dcKept.ID, at(2*time.Minute))
	must(t, err, "poll a device code without a tenant")
}

// newDeviceCode returns a device code of tenantID (may be empty) created
// at created, expiring 15 minutes later, with a random user code.
func newDeviceCode(tenantID string, created time.Time) store.DeviceCode {
	const letters = "BCDFGHJKLMNPQRSTVWXZ"
	var b [8]byte
	_, _ = rand.Read(b[:])
	code := make([]byte, 0, 9)
	for i, c := range b {
		if i == 4 {
			code = append(code, '-')
		}
		code = append(code, letters[int(c)%len(letters)])
	}
	return store.DeviceCode{ID: tokenID(), UserCode: string(code), TenantID: tenantID, ClientID: newID(),
		Scope: "openid offline_access", Created: created, Expires: created.Add(15 * time.Minute), Interval: 5}
}

func checkDeviceCode(t testing.TB, what string, got, want store.DeviceCode) {
	t.Helper()
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"Created", got.Created, want.Created}, {"Expires", got.Expires, want.Expires},
		{"AuthTime", got.AuthTime, want.AuthTime}, {"LastPoll", got.LastPoll, want.LastPoll},
	} {
		if tc.want.IsZero() {
			if !tc.got.IsZero() {
				t.Errorf("%s: %s: got %v, want zero", what, tc.name, tc.got)
			}
			continue
		}
		checkTime(t, what+" "+tc.name, tc.got, stored(tc.want))
	}
	if !slices.Equal(got.AMR, want.AMR) {
		t.Errorf("%s: AMR: got %q, want %q", what, got.AMR, want.AMR)
	}
	if got.ID != want.ID || got.UserCode != want.UserCode || got.TenantID != want.TenantID || got.ClientID != want.ClientID ||
		got.Scope != want.Scope || got.Interval != want.Interval || got.State != want.State || got.UserID != want.UserID ||
		got.ApprovedTenantID != want.ApprovedTenantID {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func testDeviceCodes(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	dc := newDeviceCode(f.tn.ID, at(0))
	dc.UserCode = "F3KQ-9TZM"
	dc.State, dc.UserID, dc.LastPoll = store.DeviceCodeApproved, newID(), at(time.Minute) // ignored: a new code is pending
	must(t, st.CreateDeviceCode(f.ctx, dc), "create device code")
	want := dc
	want.State, want.UserID, want.LastPoll = store.DeviceCodePending, "", time.Time{}

	for _, code := range []string{"F3KQ-9TZM", "f3kq-9tzm", "F3KQ9TZM", "f3kq9tzm", "f3KQ 9tzm", "-F3-KQ9TZM-"} {
		got, err := st.DeviceCodeByUserCode(f.ctx, code, at(time.Minute))
		must(t, err, "look up "+code)
		checkDeviceCode(t, "device code by "+code, got, want)
	}
	for _, code := range []string{"F3KQ-9TZN", "F3KQ-9TZ", "", "-", "\xff", "F3KQ\x009TZM"} {
		_, err := st.DeviceCodeByUserCode(f.ctx, code, at(time.Minute))
		wantErr(t, err, store.ErrNotFound, "look up "+code)
	}

	// The ID and the user code, as looked up, are unique.
	dup := newDeviceCode(f.tn.ID, at(0))
	dup.ID = dc.ID
	wantErr(t, st.CreateDeviceCode(f.ctx, dup), store.ErrConflict, "create with a taken ID")
	for _, code := range []string{"F3KQ-9TZM", "f3kq9tzm", "F3KQ9-TZM"} {
		dup = newDeviceCode(f.tn.ID, at(0))
		dup.UserCode = code
		wantErr(t, st.CreateDeviceCode(f.ctx, dup), store.ErrConflict, "create with a taken user code "+code)
	}
	wantErr(t, st.CreateDeviceCode(f.ctx, newDeviceCode(newID(), at(0))), store.ErrNotFound, "create in an unknown tenant")
	for name, mod := range map[string]func(d *store.DeviceCode){
		"no id":            func(d *store.DeviceCode) { d.ID = "" },
		"no user code":     func(d *store.DeviceCode) { d.UserCode = "" },
		"dashes only":      func(d *store.DeviceCode) { d.UserCode = "--" },
		"no client":        func(d *store.DeviceCode) { d.ClientID = "" },
		"no expiry":        func(d *store.DeviceCode) { d.Expires = time.Time{} },
		"negative":         func(d *store.DeviceCode) { d.Interval = -1 },
		"NUL in user code": func(d *store.DeviceCode) { d.UserCode = "AB\x00C" },
		"invalid scope":    func(d *store.DeviceCode) { d.Scope = "\xff" },
	} {
		bad := newDeviceCode(f.tn.ID, at(0))
		mod(&bad)
		wantPlainErr(t, st.CreateDeviceCode(f.ctx, bad), "create a bad device code: "+name)
	}

	// Without a tenant, and with a zero Created (the store's clock).
	before := time.Now()
	open := newDeviceCode("", time.Time{})
	open.Expires = time.Now().Add(time.Hour)
	must(t, st.CreateDeviceCode(f.ctx, open), "create a device code without a tenant")
	got, err := st.DeviceCodeByUserCode(f.ctx, open.UserCode, time.Now())
	must(t, err, "look up a device code without a tenant")
	checkNow(t, "zero Created set by the store", got.Created, before, time.Now())
	if got.TenantID != "" || got.State != store.DeviceCodePending {
		t.Errorf("device code without a tenant read back as %+v", got)
	}
}

func testDeviceCodesApprove(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	for _, tenant := range []string{f.tn.ID, ""} {
		dc := newDeviceCode(tenant, at(0))
		must(t, st.CreateDeviceCode(f.ctx, dc), "create")
		want := dc
		want.State = store.DeviceCodePending

		// Pending: each poll returns the previous poll's time.
		got, err := st.PollDeviceCode(f.ctx, dc.ID, at(5*time.Second))
		must(t, err, "first poll")
		checkDeviceCode(t, "first poll", got, want)
		got, err = st.PollDeviceCode(f.ctx, dc.ID, at(7*time.Second))
		must(t, err, "second poll")
		want.LastPoll = at(5 * time.Second)
		checkDeviceCode(t, "second poll", got, want)

		// Approval needs the user and their tenant, which must exist.
		user := newID()
		wantPlainErr(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), true, "", f.tn.ID, at(time.Minute), nil), "approve without a user")
		wantPlainErr(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), true, user, "", at(time.Minute), nil), "approve without a tenant")
		wantErr(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), true, user, newID(), at(time.Minute), nil), store.ErrNotFound,
			"approve for an unknown tenant")
		wantErr(t, st.DecideDeviceCode(f.ctx, "ZZZZ-ZZZZ", at(time.Minute), true, user, f.tn.ID, at(time.Minute), nil), store.ErrNotFound,
			"approve an unknown code")
		must(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), true, user, f.tn.ID, at(50*time.Second), []string{"pwd", "mfa"}), "approve")

		// Decided: no longer found by its user code, nor decided again.
		_, err = st.DeviceCodeByUserCode(f.ctx, dc.UserCode, at(time.Minute))
		wantErr(t, err, store.ErrNotFound, "look up an approved code")
		wantErr(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), false, user, f.tn.ID, at(time.Minute), nil), store.ErrNotFound,
			"deny an approved code")

		// The first poll after approval finds it approved; the next ones
		// find it redeemed.
		got, err = st.PollDeviceCode(f.ctx, dc.ID, at(70*time.Second))
		must(t, err, "poll after approval")
		want.State, want.UserID, want.ApprovedTenantID, want.AuthTime, want.AMR = store.DeviceCodeApproved, user, f.tn.ID, at(50*time.Second), []string{"pwd", "mfa"}
		want.TenantID = f.tn.ID // set by approval when it was empty
		want.LastPoll = at(7 * time.Second)
		checkDeviceCode(t, "poll after approval", got, want)
		for _, when := range []time.Duration{80 * time.Second, 90 * time.Second} {
			got, err = st.PollDeviceCode(f.ctx, dc.ID, at(when))
			must(t, err, "poll after redemption")
			want.State, want.LastPoll = store.DeviceCodeRedeemed, at(when-10*time.Second)
			checkDeviceCode(t, "poll after redemption", got, want)
		}
	}

	// Approval by a user of another tenant keeps the code's tenant.
	home := f.tenant()
	dc := newDeviceCode(f.tn.ID, at(0))
	must(t, st.CreateDeviceCode(f.ctx, dc), "create")
	must(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), true, newID(), home.ID, at(time.Minute), nil), "approve by a guest")
	got, err := st.PollDeviceCode(f.ctx, dc.ID, at(time.Minute))
	must(t, err, "poll")
	if got.TenantID != f.tn.ID || got.ApprovedTenantID != home.ID || got.State != store.DeviceCodeApproved || got.AMR != nil {
		t.Errorf("approved by a guest: %+v", got)
	}
	_, err = st.PollDeviceCode(f.ctx, tokenID(), at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "poll an unknown code")
	_, err = st.PollDeviceCode(f.ctx, "\x00", at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "poll an impossible code")
}

func testDeviceCodesDeny(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	dc := newDeviceCode("", at(0))
	must(t, st.CreateDeviceCode(f.ctx, dc), "create")
	must(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), false, "", "", time.Time{}, nil), "deny")
	wantErr(t, st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), true, newID(), f.tn.ID, at(time.Minute), nil), store.ErrNotFound,
		"approve a denied code")
	_, err := st.DeviceCodeByUserCode(f.ctx, dc.UserCode, at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "look up a denied code")
	want := dc
	want.State = store.DeviceCodeDenied
	for i := range 2 {
		got, err := st.PollDeviceCode(f.ctx, dc.ID, at(time.Duration(2+i)*time.Minute))
		must(t, err, "poll a denied code")
		if i > 0 {
			want.LastPoll = at(2 * time.Minute)
		}
		checkDeviceCode(t, "poll a denied code", got, want)
	}
	// A denial may name the user.
	dc2 := newDeviceCode(f.tn.ID, at(0))
	must(t, st.CreateDeviceCode(f.ctx, dc2), "create")
	user := newID()
	must(t, st.DecideDeviceCode(f.ctx, dc2.UserCode, at(time.Minute), false, user, f.tn.ID, at(time.Minute), []string{"pwd"}), "deny by a user")
	got, err := st.PollDeviceCode(f.ctx, dc2.ID, at(time.Minute))
	must(t, err, "poll")
	if got.State != store.DeviceCodeDenied || got.UserID != user {
		t.Errorf("denied by a user: %+v", got)
	}
}

func testDeviceCodesExpiry(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	dc := newDeviceCode(f.tn.ID, at(0))
	must(t, st.CreateDeviceCode(f.ctx, dc), "create")
	approved := newDeviceCode(f.tn.ID, at(0))
	must(t, st.CreateDeviceCode(f.ctx, approved), "create")
	must(t, st.DecideDeviceCode(f.ctx, approved.UserCode, at(time.Minute), true, newID(), f.tn.ID, at(time.Minute), nil), "approve")
	live := newDeviceCode("", at(10*time.Minute))
	must(t, st.CreateDeviceCode(f.ctx, live), "create")

	// Expires is the first moment the code is refused.
	for _, when := range []time.Time{dc.Expires, dc.Expires.Add(time.Hour)} {
		_, err := st.DeviceCodeByUserCode(f.ctx, dc.UserCode, when)
		wantErr(t, err, store.ErrExpired, "look up an expired code")
		wantErr(t, st.DecideDeviceCode(f.ctx, dc.UserCode, when, true, newID(), f.tn.ID, when, nil), store.ErrExpired, "approve an expired code")
		_, err = st.PollDeviceCode(f.ctx, dc.ID, when)
		wantErr(t, err, store.ErrExpired, "poll an expired code")
		_, err = st.PollDeviceCode(f.ctx, approved.ID, when)
		wantErr(t, err, store.ErrExpired, "poll an approved, expired code")
	}
	// Refusals changed nothing: a microsecond earlier it is still pending,
	// never polled, and the approved one still yields its tokens.
	got, err := st.PollDeviceCode(f.ctx, dc.ID, dc.Expires.Add(-time.Microsecond))
	must(t, err, "poll just before expiry")
	if got.State != store.DeviceCodePending || !got.LastPoll.IsZero() {
		t.Errorf("refused calls changed the code: %+v", got)
	}
	got, err = st.PollDeviceCode(f.ctx, approved.ID, approved.Expires.Add(-time.Microsecond))
	must(t, err, "poll the approved code just before expiry")
	if got.State != store.DeviceCodeApproved {
		t.Errorf("approved code polled: state %q, want approved", got.State)
	}

	// Pruning deletes what has expired, whatever its state.
	n, err := st.PruneDeviceCodes(f.ctx, dc.Expires)
	must(t, err, "prune")
	if n != 2 {
		t.Errorf("pruned %d, want 2", n)
	}
	_, err = st.PollDeviceCode(f.ctx, dc.ID, at(0))
	wantErr(t, err, store.ErrNotFound, "poll a pruned code")
	_, err = st.PollDeviceCode(f.ctx, live.ID, at(16*time.Minute))
	must(t, err, "poll a code that pruning left")
	// A pruned code's user code is free again.
	reuse := newDeviceCode(f.tn.ID, at(20*time.Minute))
	reuse.UserCode = dc.UserCode
	must(t, st.CreateDeviceCode(f.ctx, reuse), "create with the user code of a pruned code")
}

// testDeviceCodesConcurrent races polls of an approved code and decisions
// on a pending one: exactly one of each wins.
func testDeviceCodesConcurrent(t *testing.T, st store.Store) {
	f := newTokenFixture(t, st)
	const callers = 12
	dc := newDeviceCode(f.tn.ID, at(0))
	must(t, st.CreateDeviceCode(f.ctx, dc), "create")

	var (
		wg        sync.WaitGroup
		decideErr [callers]error
		users     [callers]string
	)
	start := make(chan struct{})
	for i := range callers {
		users[i] = newID()
		wg.Go(func() {
			<-start
			decideErr[i] = st.DecideDeviceCode(f.ctx, dc.UserCode, at(time.Minute), i%2 == 0, users[i], f.tn.ID, at(time.Minute), nil)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range decideErr {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("decisions %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("decision %d: got %v, want %v", i, err, store.ErrNotFound)
		}
	}
	if winner < 0 {
		t.Fatal("no decision succeeded")
	}

	// Approve another code for sure, then race the device's polls.
	dc2 := newDeviceCode(f.tn.ID, at(0))
	must(t, st.CreateDeviceCode(f.ctx, dc2), "create")
	must(t, st.DecideDeviceCode(f.ctx, dc2.UserCode, at(time.Minute), true, newID(), f.tn.ID, at(time.Minute), nil), "approve")
	var states [callers]store.DeviceCodeState
	start = make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			got, err := st.PollDeviceCode(f.ctx, dc2.ID, at(2*time.Minute))
			if err != nil {
				t.Errorf("poll %d: %v", i, err)
				return
			}
			states[i] = got.State
		})
	}
	close(start)
	wg.Wait()
	approved := 0
	for i, s := range states {
		switch s {
		case store.DeviceCodeApproved:
			approved++
		case store.DeviceCodeRedeemed:
		default:
			t.Errorf("poll %d found %q", i, s)
		}
	}
	if approved != 1 {
		t.Errorf("%d polls found the code approved, want exactly 1", approved)
	}
}
