package directory

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/memtest"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// fanoutDirectory is a directory set up as issue 16's fan-out sets up its
// customers: a provider tenant with a multi-tenant application, and
// customer tenants that each hold the provider's service principal beside
// their own bootstrap administrator.
type fanoutDirectory struct {
	s         *Service
	provider  string   // the provider application's appId
	tenants   []string // the customers' tenant ids
	adminApps []string // each customer's bootstrap administrator's appId
}

func newFanoutDirectory(t testing.TB, customers int) *fanoutDirectory {
	t.Helper()
	ctx := context.Background()
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k2[0] = 1
	s, err := New(storetest.SQLite(t), k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureFirstParty(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := s.CreateTenant(ctx, "provider")
	if err != nil {
		t.Fatal(err)
	}
	app, err := s.CreateApplication(ctx, p.Tenant.ID, Application{DisplayName: "fleet messenger", SignInAudience: AudienceMultipleOrgs})
	if err != nil {
		t.Fatal(err)
	}
	f := &fanoutDirectory{s: s, provider: app.AppID}
	for i := range customers {
		b, err := s.CreateTenant(ctx, fmt.Sprintf("customer%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateServicePrincipal(ctx, b.Tenant.ID, app.AppID); err != nil {
			t.Fatal(err)
		}
		f.tenants = append(f.tenants, b.Tenant.ID)
		f.adminApps = append(f.adminApps, b.Admin.AppID)
	}
	return f
}

// issueServiceBusTokens makes the lookups the token service makes for a
// customer's two clients (its worker, as its administrator, and the
// provider's messenger) asking for Service Bus tokens, and the token
// verifier's for those tokens. What a request parses (the tenant in the
// path, the client id, the resource, the token's claims) is a fresh
// string each time, as it is in the server.
func (f *fanoutDirectory) issueServiceBusTokens(t testing.TB, i int) {
	t.Helper()
	ctx := context.Background()
	fresh := strings.Clone
	for _, client := range []string{f.adminApps[i], f.provider} {
		f.issueToken(t, i, client, ServiceBusResource)
		// The verifier: the token's tenant, then its client's service
		// principal there (continuous access evaluation).
		claimTenant := fresh(f.tenants[i])
		if _, err := f.s.Tenant(ctx, claimTenant); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.ServicePrincipalByAppID(ctx, claimTenant, fresh(client)); err != nil {
			t.Fatal(err)
		}
	}
}

// issueToken makes the lookups the token service makes to issue client a
// token for resource in customer i's tenant, each with a freshly
// allocated id, as a request's would be.
func (f *fanoutDirectory) issueToken(t testing.TB, i int, client, resource string) {
	t.Helper()
	ctx := context.Background()
	fresh := strings.Clone
	ten, err := f.s.Tenant(ctx, fresh(f.tenants[i]))
	if err != nil {
		t.Fatal(err)
	}
	app, err := f.s.ApplicationByAppID(ctx, fresh(client))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := f.s.ServicePrincipalByAppID(ctx, ten.ID, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.s.ServicePrincipalByName(ctx, ten.ID, fresh(resource))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.GrantedRoles(ctx, ten.ID, sp.ID, store.KindServicePrincipal, res); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.EnabledServicePrincipalRoles(ctx, ten.ID, sp.ID); err != nil {
		t.Fatal(err)
	}
}

// setUpCustomer makes the lookups the token service makes when a fan-out
// customer's administrator sets the customer up: tokens for Graph (to
// provision the provider's service principal) and for ARM (the namespace,
// its queues, the role assignments).
func (f *fanoutDirectory) setUpCustomer(t testing.TB, i int) {
	t.Helper()
	for _, resource := range []string{GraphResource, ARMResource} {
		f.issueToken(t, i, f.adminApps[i], resource)
	}
}

// emptyCache gives s an empty lookup cache, as New does.
func (s *Service) emptyCache() {
	s.cache = gencache.NewPartCache[lookupKey, any](s.st, maxCachedLookups)
	s.shared = newInterner(s.cache.Len)
}

// maxLookupBytesPerCustomer bounds what the lookup cache holds for one
// fan-out customer, its nine entries (TestLookupCacheBytesPerCustomer):
// 5,440 bytes when each entry held its own copy of every string, 4,638
// with the strings entries share interned, 3,786 with service principals
// and applications held packed, 3,484 with a byte for the lookup's kind,
// GrantedRoles' ids as bytes and one value for every lookup of no roles.
const maxLookupBytesPerCustomer = 3_900

// TestLookupCacheBytesPerCustomer measures the heap the lookup cache holds
// per fan-out customer: the entries filled by the customer's token
// requests and token checks, and nothing else (the cache is dropped to
// see what it held).
func TestLookupCacheBytesPerCustomer(t *testing.T) {
	entries, customers, perCustomer := cacheBytesPerCustomer(t, (*fanoutDirectory).issueServiceBusTokens)
	t.Logf("lookup cache: %d entries for %d customers, %.0f bytes per customer (%.0f per entry)",
		entries, customers, perCustomer, perCustomer*float64(customers)/float64(entries))
	if perCustomer > maxLookupBytesPerCustomer {
		t.Errorf("the lookup cache holds %.0f bytes per customer, more than %d", perCustomer, maxLookupBytesPerCustomer)
	}
}

// cacheBytesPerCustomer measures the heap the lookup cache holds per
// fan-out customer after fill for each of 300: fill runs for one more
// customer first, so that what all customers share (the store's
// statements, the provider's and Microsoft's entries) is not counted, and
// the cache is dropped to see what it held.
func cacheBytesPerCustomer(t *testing.T, fill func(f *fanoutDirectory, t testing.TB, i int)) (entries, customers int, perCustomer float64) {
	t.Helper()
	if testing.Short() {
		t.Skip("sets up hundreds of tenants")
	}
	customers = 300
	f := newFanoutDirectory(t, customers+1)
	fill(f, t, customers)
	f.s.emptyCache()
	fill(f, t, customers)
	for i := range customers {
		fill(f, t, i)
	}
	entries = f.s.cache.Len()
	filled := memtest.LiveHeap()
	f.s.emptyCache()
	dropped := memtest.LiveHeap()
	runtime.KeepAlive(f)
	return entries, customers, float64(int64(filled)-int64(dropped)) / float64(customers)
}

// TestCachedLookupsEqualFreshReads checks that what the cache answers
// (documents whose strings it shares with its other entries) is what a
// read of the store answers, for the lookups of a fan-out customer's
// tokens and for Graph's service principal, whose permissions every
// tenant's repeats.
func TestCachedLookupsEqualFreshReads(t *testing.T) {
	ctx := context.Background()
	f := newFanoutDirectory(t, 3)
	for i := range 3 {
		for range 2 { // filled, then from the cache
			f.issueServiceBusTokens(t, i)
			for _, appID := range []string{f.adminApps[i], f.provider, GraphAppID} {
				cachedSP, err := f.s.ServicePrincipalByAppID(ctx, f.tenants[i], appID)
				if err != nil {
					t.Fatal(err)
				}
				freshSP, err := f.s.GetServicePrincipal(ctx, f.tenants[i], cachedSP.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(cachedSP, freshSP) {
					t.Errorf("service principal of %s in %s: cached %+v, read %+v", appID, f.tenants[i], cachedSP, freshSP)
				}
				byName, err := f.s.ServicePrincipalByName(ctx, f.tenants[i], appID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(byName, freshSP) {
					t.Errorf("service principal named %s in %s: cached %+v, read %+v", appID, f.tenants[i], byName, freshSP)
				}
				cachedApp, err := f.s.ApplicationByAppID(ctx, appID)
				if err != nil {
					t.Fatal(err)
				}
				freshApp, err := f.s.GetApplication(ctx, cachedApp.TenantID, cachedApp.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(cachedApp, freshApp) {
					t.Errorf("application %s: cached %+v, read %+v", appID, cachedApp, freshApp)
				}
			}
			graph, err := f.s.ServicePrincipalByName(ctx, f.tenants[i], GraphResource)
			if err != nil {
				t.Fatal(err)
			}
			freshGraph, err := f.s.GetServicePrincipal(ctx, f.tenants[i], graph.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(graph, freshGraph) {
				t.Errorf("Graph in %s: cached %+v, read %+v", f.tenants[i], graph, freshGraph)
			}
			cachedTenant, err := f.s.Tenant(ctx, f.tenants[i])
			if err != nil {
				t.Fatal(err)
			}
			freshTenant, err := f.s.st.GetTenant(ctx, f.tenants[i])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cachedTenant, freshTenant) {
				t.Errorf("tenant: cached %+v, read %+v", cachedTenant, freshTenant)
			}
		}
	}
}

// maxSetupLookupBytesPerCustomer bounds what the lookup cache holds for
// one fan-out customer's setup (TestSetupLookupCacheBytesPerCustomer):
// 8,627 bytes when each tenant's entry for Graph held its own lists of
// Graph's permissions (their strings interned), 4,152 with the lists
// shared.
const maxSetupLookupBytesPerCustomer = 4_600

// TestSetupLookupCacheBytesPerCustomer is TestLookupCacheBytesPerCustomer
// for the entries a customer's setup leaves in the cache (until a write
// to the tenant or a full cache drops them): its administrator's lookups
// for Graph and ARM tokens.
func TestSetupLookupCacheBytesPerCustomer(t *testing.T) {
	entries, customers, perCustomer := cacheBytesPerCustomer(t, (*fanoutDirectory).setUpCustomer)
	t.Logf("lookup cache: %d entries for %d customers' setup, %.0f bytes per customer", entries, customers, perCustomer)
	if perCustomer > maxSetupLookupBytesPerCustomer {
		t.Errorf("the lookup cache holds %.0f bytes per customer's setup, more than %d", perCustomer, maxSetupLookupBytesPerCustomer)
	}
}

// TestInternerBound checks that an interner starts over once it holds
// four strings per entry of its cache and minInterned more, and keeps
// sharing below that.
func TestInternerBound(t *testing.T) {
	entries := 100
	in := newInterner(func() int { return entries })
	bound := 4*entries + minInterned
	first := in.str(strings.Clone("shared"))
	for i := range bound - 1 {
		in.str(fmt.Sprint("s", i))
	}
	if got := in.str(strings.Clone("shared")); unsafe.StringData(got) != unsafe.StringData(first) {
		t.Fatalf("not shared below the bound (%d strings)", len(in.m))
	}
	in.str("one past the bound")
	if len(in.m) != 1 {
		t.Fatalf("%d strings held past the bound of %d", len(in.m), bound)
	}
	if got := in.str(strings.Clone("shared")); unsafe.StringData(got) == unsafe.StringData(first) {
		t.Fatal("the interner did not start over")
	}
}

// TestInternerBoundsLists checks that lists count toward the bound: lists
// of strings the interner already holds (the same roles, some disabled)
// add no string, and must not grow it past the bound either.
func TestInternerBoundsLists(t *testing.T) {
	in := newInterner(func() int { return 0 })
	const roles = 13 // 8,192 lists, twice minInterned
	for i := range 1 << roles {
		rs := make([]AppRole, roles)
		for j := range rs {
			rs[j] = AppRole{ID: fmt.Sprint("r", j), IsEnabled: i&(1<<j) != 0}
		}
		in.appRoles(rs)
		if n := len(in.m) + len(in.roles) + len(in.scopes); n > minInterned {
			t.Fatalf("%d strings and lists held past the bound of %d", n, minInterned)
		}
	}
}
