package directory_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func TestManagedIdentitiesAndWorkloads(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		d, _ := newDirectory(t, st)
		tb := mustTenant(t, d, "compute")
		tid := tb.Tenant.ID

		uami, err := d.CreateUserAssignedIdentity(ctx, tid, "rg1", "worker-id")
		if err != nil {
			t.Fatal(err)
		}
		wantID := "/subscriptions/" + tb.Tenant.SubscriptionID + "/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-id"
		if !uami.IsManagedIdentity() || !uami.IsUserAssigned() || uami.ManagedIdentityResourceID() != wantID {
			t.Fatalf("identity = %+v", uami)
		}
		if _, err := d.CreateUserAssignedIdentity(ctx, tid, "rg1", "worker-id"); !errors.Is(err, directory.ErrConflict) {
			t.Fatalf("same identity twice: %v", err)
		}
		if _, err := d.CreateUserAssignedIdentity(ctx, tid, "rg1", "bad/name"); err == nil {
			t.Fatal("bad name accepted")
		}
		for _, ref := range []string{uami.ID, uami.AppID, "worker-id", strings.ToLower(wantID)} {
			got, err := d.ManagedIdentity(ctx, tid, ref)
			if err != nil || got.ID != uami.ID {
				t.Errorf("ManagedIdentity(%q) = %v, %v", ref, got, err)
			}
		}
		// An ordinary service principal is not a managed identity.
		if _, err := d.ManagedIdentity(ctx, tid, tb.AdminSP.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("admin sp as identity: %v", err)
		}
		other, _ := d.CreateUserAssignedIdentity(ctx, tid, "rg1", "not-granted")

		w, header, err := d.CreateWorkload(ctx, tid, "rg1", "web", true, []string{"worker-id"})
		if err != nil {
			t.Fatal(err)
		}
		if w.SystemIdentityID == "" || len(w.UserIdentityIDs) != 1 || !strings.HasPrefix(header, w.ID+".") {
			t.Fatalf("workload = %+v header %q", w, header)
		}
		if _, err := d.AuthenticateWorkload(ctx, tid, header); err != nil {
			t.Fatalf("right header: %v", err)
		}
		for _, bad := range []string{"", w.ID, w.ID + ".wrong", "x." + strings.SplitN(header, ".", 2)[1], header + "x"} {
			if _, err := d.AuthenticateWorkload(ctx, tid, bad); !errors.Is(err, directory.ErrWorkloadHeader) {
				t.Errorf("header %q: %v", bad, err)
			}
		}
		other2 := mustTenant(t, d, "elsewhere")
		if _, err := d.AuthenticateWorkload(ctx, other2.Tenant.ID, header); !errors.Is(err, directory.ErrWorkloadHeader) {
			t.Fatalf("header in another tenant: %v", err)
		}

		sys, err := d.WorkloadIdentity(ctx, w, directory.IdentitySelector{})
		if err != nil || sys.ID != w.SystemIdentityID || sys.IsUserAssigned() || sys.ManagedIdentityResourceID() != w.ResourceID {
			t.Fatalf("default identity: %+v, %v", sys, err)
		}
		for _, sel := range []directory.IdentitySelector{{ClientID: uami.AppID}, {ObjectID: uami.ID}, {ResourceID: strings.ToUpper(wantID)}} {
			if got, err := d.WorkloadIdentity(ctx, w, sel); err != nil || got.ID != uami.ID {
				t.Errorf("select %+v: %v, %v", sel, got, err)
			}
		}
		if _, err := d.WorkloadIdentity(ctx, w, directory.IdentitySelector{ClientID: other.AppID}); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("identity not granted to the workload: %v", err)
		}
		if _, err := d.WorkloadIdentity(ctx, w, directory.IdentitySelector{ClientID: uami.AppID, ObjectID: uami.ID}); err == nil {
			t.Fatal("two selectors accepted")
		}

		rotated, err := d.RotateWorkloadHeader(ctx, tid, "web")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.AuthenticateWorkload(ctx, tid, header); !errors.Is(err, directory.ErrWorkloadHeader) {
			t.Fatal("old header still works after rotation")
		}
		if _, err := d.AuthenticateWorkload(ctx, tid, rotated); err != nil {
			t.Fatalf("rotated header: %v", err)
		}

		// Federated credentials belong on user-assigned identities only.
		fic := directory.FederatedIdentityCredential{Name: "from-a", Issuer: "https://issuer.example/a", Subject: "s", Audiences: []string{directory.TokenExchangeAudience}}
		if _, err := d.AddIdentityFederatedCredential(ctx, tid, uami.ID, fic); err != nil {
			t.Fatal(err)
		}
		if _, err := d.AddIdentityFederatedCredential(ctx, tid, sys.ID, fic); err == nil {
			t.Fatal("federated credential on a system-assigned identity")
		}
		got, _ := d.ManagedIdentity(ctx, tid, uami.ID)
		if _, ok := directory.MatchFederatedCredential(got.FederatedCredentials, "https://issuer.example/a", "s", []string{directory.TokenExchangeAudience}); !ok {
			t.Fatal("federated credential does not match its own issuer, subject and audience")
		}
		if _, ok := directory.MatchFederatedCredential(got.FederatedCredentials, "https://issuer.example/A", "s", []string{directory.TokenExchangeAudience}); ok {
			t.Fatal("issuer matched case-insensitively")
		}

		if err := d.DeleteWorkload(ctx, tid, "web"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.GetServicePrincipal(ctx, tid, sys.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("system identity outlived its workload: %v", err)
		}
		if _, err := d.GetServicePrincipal(ctx, tid, uami.ID); err != nil {
			t.Fatalf("user-assigned identity deleted with the workload: %v", err)
		}
		if err := d.DeleteManagedIdentity(ctx, tid, tb.AdminSP.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("deleting a non-identity as identity: %v", err)
		}
	})
}
