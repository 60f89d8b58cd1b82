package server

import (
	"context"
	"net/http"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/signin"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// loginSurface is what the login hosts serve: the sign-in pages
// (authorize, admin consent, device code entry) and the token service
// (everything else: discovery, keys, token endpoints).
type loginSurface struct {
	pages  http.Handler
	tokens http.Handler
}

func (l loginSurface) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if signin.Paths(r.URL.Path) {
		l.pages.ServeHTTP(w, r)
		return
	}
	l.tokens.ServeHTTP(w, r)
}

// deviceApprover gives the device code page the store's pending codes: the
// page shows what the device asked for, and records the signed-in user's
// answer, which the device's next poll of the token endpoint reads.
type deviceApprover struct{ st store.Store }

// storeTimeout bounds the page's store calls (the interface has no context).
const storeTimeout = 10 * time.Second

func (d deviceApprover) Lookup(userCode string) (clientID, scope, tenant string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	dc, err := d.st.DeviceCodeByUserCode(ctx, userCode, time.Now())
	if err != nil {
		return "", "", "", err
	}
	tenant = dc.TenantID
	if tenant == "" {
		tenant = "organizations"
	}
	return dc.ClientID, dc.Scope, tenant, nil
}

func (d deviceApprover) Decide(userCode string, approve bool, userID, tenantID string, authTime time.Time, amr []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	return d.st.DecideDeviceCode(ctx, userCode, time.Now(), approve, userID, tenantID, authTime, amr)
}
