package directory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
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
