package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tenantbridge/tenantbridge/internal/console"
	"github.com/tenantbridge/tenantbridge/internal/console/consoletest"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// TestBrowserConsole: in headless Chromium, a customer's Global
// Administrator opens the console on the server's address, signs in
// through the sign-in pages (name, password, TOTP), opens the trust graph
// of their tenant, which shows the provider's principals, follows the
// cross-tenant audit live in a second tab, revokes the provider's
// delegation, and sees the edge disappear from the graph and the
// revocation arrive in the audit without reloading; after signing out,
// the operator signs in with the key and sees the provider's reach into
// both customers.
func TestBrowserConsole(t *testing.T) {
	chromiumPath(t)
	ctx := context.Background()
	r := start(t, server.Config{ProxyListen: "127.0.0.1:0"})
	w, err := consoletest.Build(ctx, r.srv.Directory(), r.srv.Store(), "")
	browserMust(t, err)
	art := newArtifacts(t)
	c := startChromium(t, r, art, spkiHash(r.serverCertificate(t)))
	consoleURL := "https://" + r.addr + console.Prefix

	b := c.newTab(t)
	b.do("open the console", chromedp.Navigate(consoleURL))
	b.expectHeading("Sign in to the console", "#signin-admin")
	b.screenshot("console-01-signin")
	b.do("sign in as an administrator", chromedp.Click(chromedp.CSS("#signin-admin")))
	b.expectHeading("Sign in", "#username")
	b.do("enter the sign-in name",
		chromedp.SendKeys(chromedp.CSS("#username"), w.Admin.UserPrincipalName),
		chromedp.Click(chromedp.CSS("button.primary")))
	b.expectHeading("Enter password", "#password")
	b.do("enter the password",
		chromedp.SendKeys(chromedp.CSS("#password"), consoletest.Password),
		chromedp.Click(chromedp.CSS("button.primary")))
	b.expectHeading("Enter code", "#otc")
	code, err := directory.TOTPCode(w.AdminTOTP, time.Now())
	browserMust(t, err)
	b.do("enter the TOTP code",
		chromedp.SendKeys(chromedp.CSS("#otc"), code),
		chromedp.Click(chromedp.CSS("button.primary")))
	b.expectHeading("Tenants", "#tenants")
	if loc := b.location(); loc != consoleURL {
		t.Errorf("after sign-in the browser is at %s, want %s", loc, consoleURL)
	}
	if got := b.text("#tenants"); !strings.Contains(got, w.Customer.Name) || strings.Contains(got, w.Provider.Name) || strings.Contains(got, w.Other.Name) {
		t.Errorf("the administrator's tenants: %q", got)
	}
	b.screenshot("console-02-tenants")

	// The graph: the provider's principals in their cluster.
	b.do("open the trust graph", chromedp.Click(chromedp.CSS("a.open-graph")))
	b.expectHeading("Trust graph of "+w.Customer.Name, "svg#graph")
	g := &console.Graph{Dir: r.srv.Directory(), St: r.srv.Store()}
	in, err := g.Inbound(ctx, w.Customer.ID)
	browserMust(t, err)
	var delegation console.Edge
	for _, e := range in {
		if e.Kind == console.EdgeDelegation && e.ObjectID == w.Delegation.ID {
			delegation = e
		}
	}
	if delegation.ObjectID == "" {
		t.Fatalf("no delegation edge among %+v", in)
	}
	svg, err := chromedp.Run(b.ctx, chromedp.Evaluate[string]("document.querySelector('svg#graph').textContent"))
	if err != nil {
		b.fail("the graph's text", err)
	}
	for _, want := range []string{w.Provider.Name, w.Customer.Name, w.App.DisplayName, "delegation", "roleAssignment", "servicePrincipal"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the graph lacks %q: %q", want, svg)
		}
	}
	if why := b.text("#" + delegation.ID() + " td.why"); !strings.Contains(why, `grants "Contributor"`) {
		t.Errorf("the delegation's explanation: %q", why)
	}
	b.do("the delegation's edge is drawn", chromedp.WaitVisible(chromedp.CSS("#svg-"+delegation.ID())))
	b.screenshot("console-03-graph")

	// The audit, live, in a second tab of the same browser (same session).
	auditCtx, cancelAudit := chromedp.NewContext(b.ctx)
	defer cancelAudit()
	if err := chromedp.Do(auditCtx); err != nil { // opens the tab: no deadline
		t.Fatalf("second tab: %v", err)
	}
	audit := &browserTab{t: t, ctx: auditCtx, c: c}
	audit.do("open the audit", chromedp.Navigate(consoleURL+"tenants/"+w.Customer.ID+"/audit"))
	audit.expectHeading("Audit of "+w.Customer.Name, "#audit")
	audit.do("the live view connects", chromedp.WaitVisible(chromedp.CSS("#live.on")))
	if strings.Contains(audit.text("#audit"), "roleAssignments/delete") {
		t.Fatal("the audit shows a revocation before there was one")
	}

	// Revoke the delegation.
	b.do("revoke the delegation", chromedp.Click(chromedp.CSS("#"+delegation.ID()+" form.revoke button")))
	b.expectHeading("Trust graph of "+w.Customer.Name, "#notice")
	gone, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("document.getElementById('"+delegation.ID()+"') === null && document.getElementById('svg-"+delegation.ID()+"') === null"))
	if err != nil || !gone {
		b.fail("the edge disappears", errors.Join(err, errors.New("the delegation is still on the page")))
	}
	b.screenshot("console-04-revoked")
	if _, err := r.srv.Store().GetRoleAssignment(ctx, w.Customer.ID, w.Delegation.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the delegation is still stored: %v", err)
	}

	// The audit tab shows it without a reload.
	audit.do("the revocation arrives in the audit",
		chromedp.WaitVisible(chromedp.CSS(`#audit tbody tr.new`)))
	row := audit.text("#audit tbody tr.new")
	if !strings.Contains(row, "Microsoft.Authorization/roleAssignments/delete") || !strings.Contains(row, w.Delegation.ID) {
		t.Errorf("the live audit row: %q", row)
	}
	audit.screenshot("console-05-audit-live")

	// Signing out ends the live view.
	b.do("sign out", chromedp.Click(chromedp.CSS("#signout")))
	b.expectHeading("Signed out", "#message")
	audit.do("the live view ends", chromedp.WaitVisible(chromedp.CSS("#live.off")))

	// The operator sees every tenant, and the provider's reach into its
	// customers (the reverse view).
	b.do("back to the console", chromedp.Navigate(consoleURL))
	b.expectHeading("Sign in to the console", "#operator-key")
	b.do("sign in as the operator",
		chromedp.SendKeys(chromedp.CSS("#operator-key"), r.srv.Operator().Key),
		chromedp.Click(chromedp.CSS("#signin-operator")))
	b.expectHeading("Tenants", "#tenants")
	if got := b.text("#tenants"); !strings.Contains(got, w.Provider.Name) || !strings.Contains(got, w.Other.Name) {
		t.Errorf("the operator's tenants: %q", got)
	}
	b.do("open the provider's reverse view", chromedp.Navigate(consoleURL+"tenants/"+w.Provider.ID+"/graph?view=out"))
	b.expectHeading("Trust graph of "+w.Provider.Name, "svg#graph")
	svg, err = chromedp.Run(b.ctx, chromedp.Evaluate[string]("document.querySelector('svg#graph').textContent"))
	if err != nil {
		b.fail("the reverse graph's text", err)
	}
	for _, want := range []string{w.Provider.Name, w.Customer.Name, w.Other.Name} {
		if !strings.Contains(svg, want) {
			t.Errorf("the provider's reverse view lacks the cluster %q: %q", want, svg)
		}
	}
	b.screenshot("console-06-operator-reverse")
}
