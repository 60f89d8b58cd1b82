package signin_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// The password page under smart lockout: ten wrong passwords, then even
// the right one gets Entra's lockout message, and the refusal is audited
// with AADSTS50053. Another browser is refused too: the state is the
// account's, in the store.
func TestPasswordPageLockout(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		b := w.browser(t)
		p := b.submit(b.get(authorizeURL("contoso", w.codeRequest(nil))), url.Values{"username": {"alice@contoso.onmicrosoft.com"}})
		for i := range directory.LockoutThreshold {
			p = b.submit(p, url.Values{"password": {fmt.Sprintf("Wrong-Horse-%d", i)}})
			expectPage(t, p, "Your account or password is incorrect")
		}
		const locked = "Your account is temporarily locked to prevent unauthorized use."
		p = b.submit(p, url.Values{"password": {password}})
		expectPage(t, p, locked)

		other := w.browser(t)
		q := other.submit(other.get(authorizeURL("contoso", w.codeRequest(nil))), url.Values{"username": {"alice@contoso.onmicrosoft.com"}})
		expectPage(t, other.submit(q, url.Values{"password": {password}}), locked)

		records, err := st.ListAudit(context.Background(), store.AuditQuery{TenantID: w.contoso.Tenant.ID})
		if err != nil {
			t.Fatal(err)
		}
		var wrong, refused int
		for _, r := range records {
			if r.Action != "signin.password" || r.Actor != w.alice.ID {
				continue
			}
			switch r.Result {
			case "AADSTS50126":
				wrong++
			case "AADSTS50053":
				refused++
			default:
				t.Errorf("unexpected password record: %+v", r)
			}
		}
		if wrong != directory.LockoutThreshold || refused != 2 {
			t.Fatalf("audited %d wrong passwords and %d lockout refusals, want %d and 2", wrong, refused, directory.LockoutThreshold)
		}
		// Another account is not locked with alice's.
		if err := w.env.Dir.CheckPasswordSignIn(context.Background(), w.admin, password); err != nil {
			t.Fatalf("another user: %v", err)
		}
	})
}
