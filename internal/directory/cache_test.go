package directory_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func TestLookupCache(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	d, c := newDirectory(t, st)
	tb := mustTenant(t, d, "cached")
	tid := tb.Tenant.ID
	// A second directory over the same store (another subsystem, say):
	// its writes move the store's generation, which d's cache follows.
	other, err := directory.New(st, key(1), key(2), directory.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}

	app, err := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "svc", SignInAudience: directory.AudienceMultipleOrgs})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := d.CreateServicePrincipal(ctx, tid, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.ServicePrincipalByAppID(ctx, tid, app.AppID); err != nil || got.ID != sp.ID {
		t.Fatalf("lookup: %v %v", got, err)
	}

	// Callers get copies: changing one does not change the cache.
	got, _ := d.ServicePrincipalByAppID(ctx, tid, app.AppID)
	got.DisplayName = "changed by a caller"
	if again, _ := d.ServicePrincipalByAppID(ctx, tid, app.AppID); again.DisplayName != "svc" {
		t.Fatalf("cache shared with a caller: %q", again.DisplayName)
	}

	// A write through this directory is seen at once: a revoked service
	// principal must not be found on the very next request.
	if err := d.DeleteServicePrincipal(ctx, tid, sp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ServicePrincipalByAppID(ctx, tid, app.AppID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("deleted service principal still found: %v", err)
	}

	// A write through the other directory is seen at once too.
	sp2, err := d.CreateServicePrincipal(ctx, tid, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ServicePrincipalByName(ctx, tid, app.AppID); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteServicePrincipal(ctx, tid, sp2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ServicePrincipalByName(ctx, tid, app.AppID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("the other directory's delete is unseen: %v", err)
	}

	// Inside a transaction, reads see the transaction's own writes.
	err = d.InTx(ctx, func(tx *directory.Service) error {
		sp3, err := tx.CreateServicePrincipal(ctx, tid, app.AppID)
		if err != nil {
			return err
		}
		found, err := tx.ServicePrincipalByAppID(ctx, tid, app.AppID)
		if err != nil || found.ID != sp3.ID {
			t.Errorf("transaction does not see its own write: %v %v", found, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ServicePrincipalByAppID(ctx, tid, app.AppID); err != nil {
		t.Fatalf("committed service principal not found: %v", err)
	}
}

// TestTenantLookupCache: a tenant found by a reference is cached, and a
// tenant created later that the same reference finds first (GetTenant
// prefers an id to a domain; a bare name falls back to its
// .onmicrosoft.com domain) is found at once, on both stores.
func TestTenantLookupCache(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		d, _ := newDirectory(t, st)
		tb := mustTenant(t, d, "lookedup")
		for _, ref := range []string{"lookedup", "LookedUp.onmicrosoft.com"} {
			if got, err := d.Tenant(ctx, ref); err != nil || got.ID != tb.Tenant.ID {
				t.Fatalf("Tenant(%q) = %v, %v", ref, got, err)
			}
		}
		// Writes to the tenant found, and to others, leave the answer right.
		other := mustTenant(t, d, "elsewhere")
		if _, err := d.CreateGroup(ctx, other.Tenant.ID, directory.Group{DisplayName: "g"}); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Tenant(ctx, "lookedup"); err != nil || got.ID != tb.Tenant.ID {
			t.Fatalf("after writes elsewhere: %v, %v", got, err)
		}
		// A tenant whose id is the reference wins over the domain match, and
		// over the bare name's fallback.
		for _, ref := range []string{"LookedUp.onmicrosoft.com", "lookedup"} {
			x := store.Tenant{ID: strings.ToLower(ref), Name: "x" + uuid.NewString()[:8], SubscriptionID: uuid.NewString()}
			x.Domain = x.Name + ".onmicrosoft.com"
			if err := st.CreateTenant(ctx, x); err != nil {
				t.Fatal(err)
			}
			if got, err := d.Tenant(ctx, strings.ToLower(ref)); err != nil || got.ID != x.ID {
				t.Fatalf("Tenant(%q) after a tenant with that id was created = %v, %v; want %s", ref, got, err, x.ID)
			}
		}
		// A deleted tenant is not found on the next lookup.
		if _, err := d.Tenant(ctx, tb.Tenant.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteTenant(ctx, tb.Tenant.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Tenant(ctx, tb.Tenant.ID); !errors.Is(err, directory.ErrNotFound) && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted tenant still found: %v, %v", got, err)
		}
	})
}
