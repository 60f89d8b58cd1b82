package directory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestDeleteUserDeletesTheirGrants: deleting a user deletes the delegated
// grants made for that user alone, as Entra does, and nothing else: other
// users' grants and tenant-wide grants stay.
func TestDeleteUserDeletesTheirGrants(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		d, _ := newDirectory(t, st)
		tb := mustTenant(t, d, "grants")
		tid := tb.Tenant.ID
		mkUser := func(name string) *directory.User {
			u, err := d.CreateUser(ctx, tid, directory.NewUser{UserPrincipalName: name + "@" + tb.Tenant.Domain,
				DisplayName: name, Password: "Correct-Horse-9", AccountEnabled: true})
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		ada, bob := mkUser("ada"), mkUser("bob")
		app, err := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "client"})
		if err != nil {
			t.Fatal(err)
		}
		client, err := d.CreateServicePrincipal(ctx, tid, app.AppID)
		if err != nil {
			t.Fatal(err)
		}
		graphSP, err := d.ServicePrincipalByAppID(ctx, tid, directory.GraphAppID)
		if err != nil {
			t.Fatal(err)
		}
		grant := func(consentType, principal, scope string) *directory.OAuth2PermissionGrant {
			g, err := d.CreateDelegatedGrant(ctx, tid, directory.OAuth2PermissionGrant{ClientID: client.ID, ResourceID: graphSP.ID,
				ConsentType: consentType, PrincipalID: principal, Scope: scope})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		adas := grant(directory.ConsentPrincipal, ada.ID, "Mail.Read")
		bobs := grant(directory.ConsentPrincipal, bob.ID, "Mail.Read")
		everyone := grant(directory.ConsentAllPrincipals, "", "User.Read")

		if err := d.DeleteUser(ctx, tid, ada.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.GetUser(ctx, tid, ada.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("user after delete: %v", err)
		}
		if _, err := d.GetDelegatedGrant(ctx, tid, adas.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("the deleted user's grant: err = %v, want ErrNotFound", err)
		}
		for _, g := range []*directory.OAuth2PermissionGrant{bobs, everyone} {
			if _, err := d.GetDelegatedGrant(ctx, tid, g.ID); err != nil {
				t.Fatalf("grant %s (%s %s) is gone: %v", g.ID, g.ConsentType, g.PrincipalID, err)
			}
		}
		left, err := d.ListDelegatedGrants(ctx, tid, directory.GrantFilter{PrincipalID: ada.ID})
		if err != nil || len(left) != 0 {
			t.Fatalf("grants of the deleted user: %v, %v", left, err)
		}
		// A new user with the same name starts with nothing.
		ada2 := mkUser("ada")
		scopes, err := d.ConsentedScopes(ctx, tid, client.ID, ada2.ID, graphSP.ID)
		if err != nil || len(scopes) != 1 || scopes[0] != "User.Read" {
			t.Fatalf("scopes of the new user = %v, %v; want [User.Read]", scopes, err)
		}
		// Deleting a user that is gone is still ErrNotFound, and changes nothing.
		if err := d.DeleteUser(ctx, tid, ada.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := d.GetDelegatedGrant(ctx, tid, bobs.ID); err != nil {
			t.Fatal(err)
		}
	})
}
