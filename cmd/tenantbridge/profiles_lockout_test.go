package main

import (
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// Deleting the application or service principal a saved profile signs in
// with asks for --yes and names the profile (confirmNotProfileApp).
func TestDeletingAProfilesApplicationNeedsYes(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")
	app, secret := signInClient(t, dir, "ci")
	var sp azclient.ServicePrincipal
	okJSON(t, dir, &sp, "ad", "sp", "show", "--id", app.AppID)
	ok(t, dir, "login", "--service-principal", "-u", app.AppID, "-p", secret, "--tenant", "contoso", "--name", "ci")
	ok(t, dir, "account", "set", "--name", "contoso")

	// The bootstrap administrator's application and service principal.
	fails(t, dir, "contoso (the bootstrap administrator of contoso)", "ad", "app", "delete", "--id", tenant.Admin.ClientID)
	fails(t, dir, "--yes", "ad", "sp", "delete", "--id", tenant.Admin.ClientID)
	// Another profile's, by appId or object id.
	msg := fails(t, dir, "ci (client "+app.AppID+" in contoso)", "ad", "app", "delete", "--id", app.ID)
	if !strings.Contains(msg, "--yes") {
		t.Errorf("the refusal does not say how to go on: %s", msg)
	}
	fails(t, dir, "ci (client", "ad", "sp", "delete", "--id", sp.ID)
	ok(t, dir, "ad", "app", "show", "--id", app.AppID)
	// With --yes it is deleted, and the note names the profile.
	r := tb(t, dir, "ad", "app", "delete", "--id", app.AppID, "--yes")
	if r.code != 0 || !strings.Contains(r.stderr, "ci (client "+app.AppID) {
		t.Fatalf("ad app delete --yes: exit %d %s", r.code, r.stderr)
	}
	fails(t, dir, "404", "ad", "app", "show", "--id", app.AppID)
	// An application no profile uses is deleted without --yes.
	var other azclient.Application
	okJSON(t, dir, &other, "ad", "app", "create", "--display-name", "other")
	ok(t, dir, "ad", "app", "delete", "--id", other.AppID)
}
