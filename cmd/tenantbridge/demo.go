package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

func (c *cli) demoCommand() *cobra.Command {
	var listen, logLevel string
	var exit bool
	cmd := &cobra.Command{
		Use:   "demo [--data DIR] [--listen ADDR] [--exit]",
		Short: "A guided demo: a provider gets tokens in a customer tenant with no secret crossing the boundary",
		Long: `demo starts tenantbridge in-process on the embedded store (in a fresh
temporary directory unless --data is given) and narrates a cross-tenant
scenario step by step, using the same wire APIs as any Azure client: a
provider registers a multi-tenant app, a customer provisions it, the provider
gets customer-tenant tokens with its own secret, a third tenant refuses it,
and the customer revokes it. Unless --exit, the server keeps running for the
CLI to explore.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := newLogger(c.stderr, logLevel)
			if err != nil {
				return err
			}
			created := false
			if f := cmd.Flag("data"); f == nil || !f.Changed {
				dir, err := os.MkdirTemp("", "tenantbridge-demo-")
				if err != nil {
					return err
				}
				c.dataDir, created = dir, true
			}
			ctx := cmd.Context()
			srv, err := server.New(ctx, server.Config{DataDir: c.dataDir, Listen: listen, Logger: logger})
			if err != nil {
				return err
			}
			ln, err := srv.Listen()
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			stop := serveInBackground(ctx, srv, ln)
			d := &demo{c: c, w: c.stdout}
			d.dataDir = dataDirOf(srv)
			d.caFile = srv.CA().CertFile()
			runErr := d.run(ctx)
			if runErr == nil && !exit {
				d.printExplore()
				<-ctx.Done()
			}
			stopErr := stop()
			if created && exit {
				_ = os.RemoveAll(c.dataDir)
			}
			return errors.Join(runErr, stopErr)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "HTTPS listen address (port 0 picks a free port)")
	cmd.Flags().BoolVar(&exit, "exit", false, "stop when the demo is done instead of serving on")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "server log level: debug, info, warn or error")
	return cmd
}

// demo narrates the cross-tenant scenario as it happens.
type demo struct {
	c         *cli
	w         io.Writer
	dataDir   string
	caFile    string
	url       string
	op        *azclient.Operator
	opts      policy.ClientOptions
	authority string
	names     map[string]string // tenant id -> name

	provider, customer, outsider *azclient.Tenant
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.w, format, args...) }

func (d *demo) step(n int, title string) { d.printf("\n%d. %s\n", n, title) }

func (d *demo) run(ctx context.Context) error {
	cred, err := d.c.serverInfo()
	if err != nil {
		return err
	}
	d.url = cred.URL
	if d.op, err = azclient.NewOperatorFromCredential(cred); err != nil {
		return err
	}
	if d.opts, d.authority, err = d.c.clientOptions(); err != nil {
		return err
	}
	d.names = map[string]string{}

	d.printf("tenantbridge demo: a provider works in a customer's tenant, and no secret crosses the boundary\n\n")
	d.printf("  server          %s (in-process, embedded store)\n", d.url)
	d.printf("  data directory  %s\n", d.dataDir)
	d.printf("  clients         the operator API, the token service (azidentity) and Microsoft Graph,\n")
	d.printf("                  reached by their Azure names (login.microsoftonline.com, graph.microsoft.com)\n")

	// 1. Tenants.
	d.step(1, "The operator creates a provider tenant, a customer tenant and a third tenant")
	if d.provider, err = d.createTenant(ctx, "fabrikam", "provider"); err != nil {
		return err
	}
	if d.customer, err = d.createTenant(ctx, "contoso", "customer"); err != nil {
		return err
	}
	if d.outsider, err = d.createTenant(ctx, "northwind", "third tenant"); err != nil {
		return err
	}

	// 2. The provider's multi-tenant app.
	d.step(2, "The provider registers a multi-tenant application and gives it a client secret")
	providerGraph, err := d.adminGraph(d.provider)
	if err != nil {
		return err
	}
	d.printf("   %s's admin: POST https://graph.microsoft.com/v1.0/applications {\"signInAudience\":\"AzureADMultipleOrgs\"}\n", d.provider.Name)
	app, err := providerGraph.CreateApplication(ctx, azclient.Application{DisplayName: "Fabrikam Monitor", SignInAudience: "AzureADMultipleOrgs"})
	if err != nil {
		return fmt.Errorf("registering the provider's application: %w", err)
	}
	d.printf("   application %q  appId %s\n", app.DisplayName, app.AppID)
	d.names[app.AppID] = app.DisplayName + " (" + d.provider.Name + ")"
	now := time.Now().UTC()
	secret, err := providerGraph.AddPassword(ctx, app.ID, azclient.PasswordCredential{DisplayName: "demo", EndDateTime: now.AddDate(1, 0, 0)})
	if err != nil {
		return fmt.Errorf("adding the application's secret: %w", err)
	}
	if secret.SecretText == "" {
		return errors.New("the server returned no secret text for the provider's application")
	}
	d.printf("   client secret %s…  (kept by %s; it is never given to any other tenant)\n", secret.Hint, d.provider.Name)

	// 3. The customer provisions it.
	d.step(3, "The customer's admin provisions the provider's application into the customer tenant")
	customerGraph, err := d.adminGraph(d.customer)
	if err != nil {
		return err
	}
	d.printf("   %s's admin: POST https://graph.microsoft.com/v1.0/servicePrincipals {\"appId\":%q}\n", d.customer.Name, app.AppID)
	d.printf("   (this is what admin consent will do)\n")
	sp, err := customerGraph.CreateServicePrincipal(ctx, app.AppID)
	if err != nil {
		return fmt.Errorf("provisioning the provider's service principal: %w", err)
	}
	d.printf("   service principal %s in %s, owned by tenant %s\n", sp.ID, d.customer.Name, d.name(sp.AppOwnerOrganizationID))
	d.names[sp.ID] = app.DisplayName + "'s service principal"

	// 4. A customer-tenant token with the provider's own secret.
	d.step(4, "The provider gets a token in the customer tenant with its own secret")
	d.printf("   POST %s/%s/oauth2/v2.0/token  client_id=%s  grant_type=client_credentials\n", d.authority, d.customer.TenantID, app.AppID)
	tok, err := d.providerToken(ctx, d.customer, app.AppID, secret.SecretText)
	if err != nil {
		return fmt.Errorf("the provider's token in the customer tenant: %s", azclient.Describe(err))
	}
	claims, err := azclient.UnverifiedClaims(tok)
	if err != nil {
		return err
	}
	d.printf("   token issued; its claims:\n")
	if err := d.checkClaim(claims, "tid", d.customer.TenantID, "the customer's tenant ("+d.customer.Name+")"); err != nil {
		return err
	}
	if err := d.checkClaim(claims, "oid", sp.ID, "the service principal in "+d.customer.Name); err != nil {
		return err
	}
	appClaim := "appid"
	if _, ok := claims["appid"]; !ok {
		appClaim = "azp"
	}
	if err := d.checkClaim(claims, appClaim, app.AppID, "the provider's application"); err != nil {
		return err
	}
	idp, _ := claims["idp"].(string)
	switch {
	case idp == "":
		d.printf("     %-6s (absent)\n", "idp")
	case strings.Contains(idp, d.provider.TenantID):
		d.printf("     %-6s %s  the provider's tenant: where the application is at home\n", "idp", idp)
	default:
		d.printf("     %-6s %s\n", "idp", idp)
	}

	// 5. A tenant that never provisioned the app.
	d.step(5, "A tenant that never provisioned the application refuses the provider")
	d.printf("   POST %s/%s/oauth2/v2.0/token  client_id=%s\n", d.authority, d.outsider.TenantID, app.AppID)
	if err := d.expectRefusal(ctx, d.outsider, app.AppID, secret.SecretText); err != nil {
		return err
	}

	// 6. The customer revokes.
	d.step(6, "The customer deletes the provider's service principal; the next token request is refused")
	d.printf("   %s's admin: DELETE https://graph.microsoft.com/v1.0/servicePrincipals/%s\n", d.customer.Name, sp.ID)
	if err := customerGraph.DeleteServicePrincipal(ctx, sp.ID); err != nil {
		return fmt.Errorf("deleting the provider's service principal: %w", err)
	}
	d.printf("   POST %s/%s/oauth2/v2.0/token  client_id=%s\n", d.authority, d.customer.TenantID, app.AppID)
	if err := d.expectRefusal(ctx, d.customer, app.AppID, secret.SecretText); err != nil {
		return err
	}

	// 7. The audit log.
	d.step(7, "The customer tenant's audit log: everything done in it, and by whom")
	recs, err := d.op.Audit(ctx, azclient.AuditQuery{Tenant: d.customer.TenantID})
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	var buf strings.Builder
	if err := auditTable(recs, d.names).write(&buf); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		d.printf("   %s", line)
	}
	d.printf("\nDone: %s worked in %s with its own secret, only while %s allowed it, and every step is on record.\n",
		d.provider.Name, d.customer.Name, d.customer.Name)
	return nil
}

// createTenant creates a tenant named base (or base with a number, if the
// data directory already has one) and saves its admin profile for the CLI.
func (d *demo) createTenant(ctx context.Context, base, role string) (*azclient.Tenant, error) {
	name := base
	for range 5 {
		t, err := d.op.CreateTenant(ctx, name)
		var re *azclient.ResponseError
		if errors.As(err, &re) && re.StatusCode == 409 {
			name = base + strconv.Itoa(1000+rand.IntN(9000))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("creating the %s tenant: %w", role, err)
		}
		if t.Admin == nil || t.Admin.ClientSecret == "" {
			return nil, fmt.Errorf("tenant %s has no admin credential", t.Name)
		}
		if err := d.c.saveProfile(profileOf(t)); err != nil {
			return nil, err
		}
		d.names[t.TenantID] = t.Name
		for _, id := range []string{t.Admin.ClientID, t.Admin.ObjectID, t.Admin.ServicePrincipalID} {
			if id != "" {
				d.names[id] = t.Name + " admin"
			}
		}
		d.printf("   %-13s %-10s %-27s tenant %s\n", role, t.Name, t.Domain, t.TenantID)
		return t, nil
	}
	return nil, fmt.Errorf("creating the %s tenant: names are taken", role)
}

func (d *demo) name(tenantID string) string {
	if n, ok := d.names[tenantID]; ok {
		return n
	}
	return tenantID
}

// adminGraph is a Graph client signed in as a tenant's bootstrap admin.
func (d *demo) adminGraph(t *azclient.Tenant) (*azclient.Graph, error) {
	cred, err := azclient.NewClientSecretCredential(d.authority, t.TenantID, t.Admin.ClientID, t.Admin.ClientSecret, d.opts)
	if err != nil {
		return nil, err
	}
	return azclient.NewGraph(azclient.GraphEndpoint, cred, &d.opts)
}

// providerToken asks for a Graph token in tenant t as the provider's app,
// with a fresh credential (so nothing is served from a token cache).
func (d *demo) providerToken(ctx context.Context, t *azclient.Tenant, appID, secret string) (string, error) {
	cred, err := azclient.NewClientSecretCredential(d.authority, t.TenantID, appID, secret, d.opts)
	if err != nil {
		return "", err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
	return tok.Token, err
}

func (d *demo) checkClaim(claims map[string]any, name, want, meaning string) error {
	got, _ := claims[name].(string)
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("the token's %s claim is %q; expected %q (%s)", name, got, want, meaning)
	}
	d.printf("     %-6s %s  %s\n", name, got, meaning)
	return nil
}

// expectRefusal asks for a token that must be refused, and shows the refusal.
func (d *demo) expectRefusal(ctx context.Context, t *azclient.Tenant, appID, secret string) error {
	_, err := d.providerToken(ctx, t, appID, secret)
	if err == nil {
		return fmt.Errorf("SECURITY: %s issued a token to the provider's application, which it must refuse", t.Name)
	}
	te, ok := azclient.AsTokenError(err)
	if !ok {
		return fmt.Errorf("the token request in %s failed, but not with a refusal: %s", t.Name, azclient.Describe(err))
	}
	desc := te.Description
	// The first sentence says it; the rest is Entra's general advice.
	if i := strings.Index(desc, ". "); i > 0 {
		desc = desc[:i+1]
	}
	if te.Code != "" && !strings.Contains(desc, te.Code) {
		desc = te.Code + ": " + desc
	}
	d.printf("   refused (HTTP %d %s): %s\n", te.StatusCode, te.OAuthError, desc)
	return nil
}

func (d *demo) printExplore() {
	d.printf("\ntenantbridge keeps serving on %s. In another terminal, try the CLI against it:\n\n", d.url)
	d.printf("  export TENANTBRIDGE_DATA=%s\n", d.dataDir)
	d.printf("  export SSL_CERT_FILE=%s\n", d.caFile)
	d.printf("  tenantbridge tenant list\n")
	d.printf("  tenantbridge ad app list --tenant %s\n", d.provider.Name)
	d.printf("  tenantbridge ad sp list --tenant %s\n", d.customer.Name)
	d.printf("  tenantbridge account get-access-token --tenant %s --resource https://graph.microsoft.com\n", d.customer.Name)
	d.printf("  tenantbridge audit --tenant %s\n", d.customer.Name)
	d.printf("\nPress Ctrl-C to stop.\n")
}
