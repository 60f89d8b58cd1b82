package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// registeredApp is a provider's multi-tenant application and its secret
// (which stays with the provider).
type registeredApp struct {
	ObjectID, AppID, DisplayName string
	redirect                     string
	secret                       string
}

// registerMultiTenantApp registers a multi-tenant application in the
// publisher's tenant through Graph, with a redirect URI, Graph
// permissions (resourceAccess: id → "Role" or "Scope") and, when
// withSecret, a client secret.
func (d *scenarioDemo) registerMultiTenantApp(ctx context.Context, name, redirect string, access map[string]string, withSecret bool) (*registeredApp, error) {
	var ra []map[string]string
	for id, typ := range access {
		ra = append(ra, map[string]string{"id": id, "type": typ})
	}
	body := map[string]any{"displayName": name, "signInAudience": "AzureADMultipleOrgs", "web": map[string]any{"redirectUris": []string{redirect}}}
	if len(ra) > 0 {
		body["requiredResourceAccess"] = []any{map[string]any{"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": ra}}
	}
	var app azclient.Application
	if _, err := d.call(ctx, d.pub.cred, azclient.GraphScope, http.MethodPost, azclient.GraphEndpoint+"/applications", body, &app); err != nil {
		return nil, fmt.Errorf("registering %s: %w", name, err)
	}
	r := &registeredApp{ObjectID: app.ID, AppID: app.AppID, DisplayName: name, redirect: redirect}
	d.names[app.AppID] = name
	if withSecret {
		pw, err := d.pub.graph.AddPassword(ctx, app.ID, azclient.PasswordCredential{DisplayName: "demo", EndDateTime: time.Now().Add(24 * time.Hour)})
		if err != nil {
			return nil, fmt.Errorf("adding %s's secret: %s", name, azclient.Describe(err))
		}
		r.secret = pw.SecretText
		d.secret(r.secret)
	}
	return r, nil
}

// adminConsent drives the admin-consent link of app in a's tenant as a's
// Global Administrator, and returns the provider's service principal there.
func (d *scenarioDemo) adminConsent(ctx context.Context, a *actor, app *registeredApp) (*azclient.ServicePrincipal, error) {
	state := randomHex(8)
	q := url.Values{"client_id": {app.AppID}, "redirect_uri": {app.redirect}, "state": {state}}
	link := "https://login.microsoftonline.com/" + a.TenantID + "/adminconsent?" + q.Encode()
	d.note("%s opens the admin-consent link %s sent:", a.upn, d.pub.Name)
	d.note("  %s", link)
	b := d.newBrowser()
	p, err := b.get(link)
	if err != nil {
		return nil, err
	}
	if p, err = b.signIn(p, a); err != nil {
		return nil, err
	}
	got := p.url.Query()
	if !strings.HasPrefix(p.url.String(), app.redirect) || got.Get("admin_consent") != "True" || got.Get("tenant") != a.TenantID || got.Get("state") != state {
		return nil, fmt.Errorf("admin consent ended at %s (HTTP %d): %s", p.url.Redacted(), p.status, pageText(p.body))
	}
	d.note("back at %s?admin_consent=True&tenant=%s", app.redirect, a.Name)
	sps, err := a.graph.ListServicePrincipals(ctx, "appId eq "+azclient.ODataString(app.AppID))
	if err != nil || len(sps) != 1 {
		return nil, fmt.Errorf("the provider's service principal in %s: %v (%d found)", a.Name, err, len(sps))
	}
	d.names[sps[0].ID] = app.DisplayName + " in " + a.Name
	return &sps[0], nil
}

func (d *scenarioDemo) runS3(ctx context.Context) error {
	pub, contoso, adatum := d.pub, d.cust[0], d.cust[2]

	d.step("%s registers a multi-tenant application with a client secret", pub.Name)
	app, err := d.registerMultiTenantApp(ctx, "Fabrikam Monitor", "https://fabrikam.example/onboarded",
		map[string]string{graphUserReadAllRole: "Role"}, true)
	if err != nil {
		return err
	}
	d.note("%q appId %s, signInAudience AzureADMultipleOrgs, asks Graph User.Read.All (application)", app.DisplayName, app.AppID)
	d.note("its client secret stays with %s: no other tenant ever receives it", pub.Name)
	providerCred := func(tenant string) (string, error) {
		cred, err := azclient.NewClientSecretCredential(d.w.authority, tenant, app.AppID, app.secret, d.w.opts)
		if err != nil {
			return "", err
		}
		t, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
		d.secret(t.Token)
		return t.Token, err
	}

	d.step("Before any consent, %s refuses %s's application", adatum.Name, pub.Name)
	if _, err := providerCred(adatum.TenantID); err == nil {
		return fmt.Errorf("SECURITY: %s issued a token to an application it never consented to", adatum.Name)
	} else {
		d.note("token request in %s: refused (%s)", adatum.Name, tokenRefusal(err))
	}

	d.step("%s's Global Administrator consents for the organization (sign-in with password + MFA)", contoso.Name)
	sp, err := d.adminConsent(ctx, contoso, app)
	if err != nil {
		return err
	}
	d.note("in %s: service principal %s of %q (owner tenant %s), granted User.Read.All", contoso.Name, sp.ID, app.DisplayName, d.name(sp.AppOwnerOrganizationID))

	d.step("%s grants that service principal Key Vault Secrets User on one vault of its own", contoso.Name)
	rg, err := d.createGroup(ctx, contoso, "data")
	if err != nil {
		return err
	}
	vaultName := "shared" + d.w.suffix + "c"
	vid, err := d.createVault(ctx, contoso, rg, vaultName)
	if err != nil {
		return err
	}
	kv, err := d.vaultClient(vaultName, contoso.cred)
	if err != nil {
		return err
	}
	if _, err := kv.SetSecret(ctx, "quarterly-report", azsecrets.SetSecretParameters{Value: new("revenue up 12%")}, nil); err != nil {
		return fmt.Errorf("writing the customer's secret: %s", azclient.Describe(err))
	}
	if err := d.assign(ctx, contoso.cred, contoso.sub(), vid, roleKVSecretsUser, sp.ID); err != nil {
		return err
	}
	d.note("vault %s, secret quarterly-report; role assignment in %s: %s → Key Vault Secrets User", vaultName, contoso.Name, d.name(sp.ID))

	d.step("%s gets a token in %s with its own secret and reads the customer's vault", pub.Name, contoso.Name)
	tok, err := providerCred(contoso.TenantID)
	if err != nil {
		return fmt.Errorf("the provider's token in %s: %s", contoso.Name, tokenRefusal(err))
	}
	c := tokenClaims(tok)
	if claim(c, "tid") != contoso.TenantID || claim(c, "oid") != sp.ID {
		return fmt.Errorf("the token has tid %s oid %s", claim(c, "tid"), claim(c, "oid"))
	}
	d.note("token: tid %s (%s), oid %s (the service principal there), appid %s", claim(c, "tid"), contoso.Name, claim(c, "oid"), claim(c, "appid"))
	secretURL := "https://" + vaultName + ".vault.azure.net/secrets/quarterly-report?api-version=" + demoKeyVaultDataVersion
	var sec struct {
		ID string `json:"id"`
	}
	if _, err := d.bearer(ctx, tok, http.MethodGet, secretURL, nil, &sec); err != nil {
		return fmt.Errorf("reading the customer's secret: %w", err)
	}
	d.note("GET %s/secrets/quarterly-report: 200 (value not shown)", vaultName)
	d.crossed(pub.Name+"'s application", contoso.Name+"'s token service, then its Key Vault",
		pub.Name+"'s client secret, presented to "+contoso.Name+"'s token endpoint; the token is "+contoso.Name+"'s",
		contoso.Name+"'s admin consent and its role assignment on that one vault")

	d.step("%s revokes: it deletes the service principal; the token %s holds stops working", contoso.Name, pub.Name)
	if err := contoso.graph.DeleteServicePrincipal(ctx, sp.ID); err != nil {
		return fmt.Errorf("deleting the service principal: %s", azclient.Describe(err))
	}
	_, err = d.bearer(ctx, tok, http.MethodGet, secretURL, nil, nil)
	var we *wireError
	if !errors.As(err, &we) || we.Status != http.StatusUnauthorized {
		return fmt.Errorf("SECURITY: the vault answered %v to a token issued before the revocation, want 401", err)
	}
	challenge := we.Header.Get("WWW-Authenticate")
	if !strings.Contains(challenge, "insufficient_claims") {
		return fmt.Errorf("the vault's 401 carries no CAE claims challenge: %q", challenge)
	}
	d.note("the already-issued token: %s", we.Error())
	d.note("  WWW-Authenticate: error=\"insufficient_claims\" (continuous access evaluation: ask for a new token)")
	if _, err := providerCred(contoso.TenantID); err == nil {
		return fmt.Errorf("SECURITY: %s still issues tokens to the revoked application", contoso.Name)
	} else {
		d.note("a new token request in %s: refused (%s)", contoso.Name, tokenRefusal(err))
	}
	return nil
}
