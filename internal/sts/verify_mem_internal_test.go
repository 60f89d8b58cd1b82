package sts

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/memtest"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// trustFleet is a directory set up as issue 16's fan-out sets up its
// customers: a provider's multi-tenant application with a service
// principal in each customer tenant beside the customer's bootstrap
// administrator.
type trustFleet struct {
	dir       *directory.Service
	provider  string
	tenants   []string
	adminApps []string
}

func newTrustFleet(t testing.TB, customers int) *trustFleet {
	t.Helper()
	ctx := context.Background()
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k2[0] = 1
	dir, err := directory.New(storetest.SQLite(t), k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.EnsureFirstParty(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := dir.CreateTenant(ctx, "provider")
	if err != nil {
		t.Fatal(err)
	}
	app, err := dir.CreateApplication(ctx, p.Tenant.ID, directory.Application{DisplayName: "fleet messenger", SignInAudience: directory.AudienceMultipleOrgs})
	if err != nil {
		t.Fatal(err)
	}
	f := &trustFleet{dir: dir, provider: app.AppID}
	for i := range customers {
		b, err := dir.CreateTenant(ctx, fmt.Sprintf("customer%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dir.CreateServicePrincipal(ctx, b.Tenant.ID, app.AppID); err != nil {
			t.Fatal(err)
		}
		f.tenants = append(f.tenants, b.Tenant.ID)
		f.adminApps = append(f.adminApps, b.Admin.AppID)
	}
	return f
}

// customerTokens are the app tokens a fan-out customer's clients present:
// its administrator's for Graph and ARM while it sets up, and for Service
// Bus as its worker; the provider's messenger's for Service Bus. Each
// token's claims are strings of their own, as each decoded token's are.
func (f *trustFleet) customerTokens(i int) []token.Claims {
	fresh := strings.Clone
	return []token.Claims{
		{TenantID: fresh(f.tenants[i]), AppID: fresh(f.adminApps[i]), Audience: fresh(directory.GraphResource)},
		{TenantID: fresh(f.tenants[i]), AppID: fresh(f.adminApps[i]), Audience: fresh(directory.ARMResource)},
		{TenantID: fresh(f.tenants[i]), AppID: fresh(f.adminApps[i]), Audience: fresh(directory.ServiceBusResource)},
		{TenantID: fresh(f.tenants[i]), AppID: fresh(f.provider), Audience: fresh(directory.ServiceBusResource)},
	}
}

// maxTrustBytesPerCustomer bounds what the trust cache holds for one
// fan-out customer's tokens (TestTrustCacheBytesPerCustomer): 1,556 bytes
// when each token's entry held its audience and the claims' strings, 471
// with one entry per tenant and client keyed by the ids' bytes.
const maxTrustBytesPerCustomer = 600

// TestTrustCacheBytesPerCustomer measures the heap the verifier's trust
// cache holds per fan-out customer once the customer's tokens are checked
// and the tokens themselves are gone (replaced by later ones), as after
// an hour of a connected fleet. The directory's own lookups are made
// first, so that only the trust cache is counted.
func TestTrustCacheBytesPerCustomer(t *testing.T) {
	if testing.Short() {
		t.Skip("sets up hundreds of tenants")
	}
	ctx := context.Background()
	const customers = 300
	f := newTrustFleet(t, customers)
	v := NewVerifier(nil, f.dir, nil, nil)
	for i := range customers {
		for _, c := range f.customerTokens(i) {
			if _, err := f.dir.ServicePrincipalByAppID(ctx, c.TenantID, c.AppID); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := memtest.LiveHeap()
	for i := range customers {
		for _, c := range f.customerTokens(i) {
			if err := v.checkTrust(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	filled := memtest.LiveHeap()
	v.trust = gencache.NewPartCache[trustKey, trustResult](f.dir.Store(), maxCachedTrust)
	v.appTrust = gencache.NewPartCache[appTrustKey, trustResult](f.dir.Store(), maxCachedTrust)
	dropped := memtest.LiveHeap()
	runtime.KeepAlive(f)
	runtime.KeepAlive(v)
	perCustomer := float64(int64(filled)-int64(dropped)) / customers
	t.Logf("trust cache: %.0f bytes per customer (4 tokens each); checking grew the heap %.0f bytes per customer",
		perCustomer, float64(int64(filled)-int64(before))/customers)
	if perCustomer > maxTrustBytesPerCustomer {
		t.Errorf("the trust cache holds %.0f bytes per customer, more than %d", perCustomer, maxTrustBytesPerCustomer)
	}
}
