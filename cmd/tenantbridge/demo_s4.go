package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/partner"
)

func (d *scenarioDemo) runS4(ctx context.Context) error {
	pub := d.pub

	d.step("%s's partner broker runs as a managed identity; its application has no secret", pub.Name)
	mi, miCred, err := d.workloadIdentity(ctx, pub, "partner-broker")
	if err != nil {
		return err
	}
	page := &swapHandler{}
	base, err := d.localServer(page)
	if err != nil {
		return err
	}
	app, err := d.registerMultiTenantApp(ctx, "Fabrikam Partner Access", base+"/callback", map[string]string{graphUserReadScope: "Scope"}, false)
	if err != nil {
		return err
	}
	if _, err := pub.graph.CreateServicePrincipal(ctx, app.AppID); err != nil {
		return fmt.Errorf("the application's service principal: %s", azclient.Describe(err))
	}
	ex, err := miCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tokenExchangeScope}})
	if err != nil {
		return fmt.Errorf("the managed identity's token: %s", azclient.Describe(err))
	}
	c := tokenClaims(ex.Token)
	if _, err := pub.graph.AddFederatedCredential(ctx, app.ObjectID, azclient.FederatedCredential{Name: "partner-broker",
		Issuer: claim(c, "iss"), Subject: claim(c, "sub"), Audiences: []string{azclient.TokenExchangeAudience}}); err != nil {
		return fmt.Errorf("the federated credential: %s", azclient.Describe(err))
	}
	d.note("identity partner-broker (client id %s); %q trusts it through a federated credential", mi.ClientID, app.DisplayName)

	d.step("%s's vault will hold the refresh token; only the broker's identity may write it", pub.Name)
	rg, err := d.createGroup(ctx, pub, "broker")
	if err != nil {
		return err
	}
	vaultName := "partner" + d.w.suffix
	vid, err := d.createVault(ctx, pub, rg, vaultName)
	if err != nil {
		return err
	}
	if err := d.assign(ctx, pub.cred, pub.sub(), vid, roleKVSecretsOfficer, mi.PrincipalID); err != nil {
		return err
	}
	secrets, err := d.vaultClient(vaultName, miCred)
	if err != nil {
		return err
	}
	cust, err := partner.New(partner.Config{Tenant: pub.TenantID, ClientID: app.AppID, Credential: partner.ManagedIdentityAssertion(miCred),
		RedirectURL: base + "/callback", Scopes: []string{"https://graph.microsoft.com/User.Read"}, Secrets: secrets,
		HTTPClient: d.w.hc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	page.set(cust.Handler())
	d.note("vault %s: partner-broker is its Secrets Officer; the consent page is %s", vaultName, base)

	d.step("%s's partner administrator connects: authorization code + PKCE, password + MFA, consent", pub.Name)
	b := d.newBrowser()
	p, err := b.get(base + "/connect")
	if err != nil {
		return err
	}
	if p.url.Host != "login.microsoftonline.com" || p.url.Query().Get("code_challenge_method") != "S256" {
		return fmt.Errorf("the Connect partner link went to %s", p.url.Redacted())
	}
	d.note("Connect partner → login.microsoftonline.com/…/authorize (code_challenge_method=S256, state, nonce, offline_access)")
	if p, err = b.signIn(p, pub); err != nil {
		return err
	}
	if !strings.Contains(p.body, "Partner connected") {
		return fmt.Errorf("the broker's callback answered HTTP %d: %s", p.status, pageText(p.body))
	}
	st, err := cust.Status(ctx)
	if err != nil {
		return err
	}
	d.note("callback: the code redeemed with the PKCE verifier and the identity's assertion (no app secret)")
	d.note("custody: vault secret %s version %s…, user %s, scopes %q", st.Secret, short(st.Version), st.User, st.Scopes)

	d.step("The broker mints a Graph access token from the refresh token in custody")
	for i := range 2 {
		at, err := cust.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com"))
		if err != nil {
			return fmt.Errorf("minting: %w", err)
		}
		d.secret(at.Token)
		tc := tokenClaims(at.Token)
		if !strings.Contains(claim(tc, "amr"), "mfa") {
			return fmt.Errorf("the access token's amr is %q: no MFA", claim(tc, "amr"))
		}
		after, err := cust.Status(ctx)
		if err != nil {
			return err
		}
		if after.Version == st.Version {
			return fmt.Errorf("the rotated refresh token was not written back (version %s)", after.Version)
		}
		if i == 0 {
			d.note("access token: aud %s, scp %q, amr %s, upn %s, tid %s", claim(tc, "aud"), claim(tc, "scp"), claim(tc, "amr"), claim(tc, "upn"), claim(tc, "tid"))
		}
		d.note("redemption %d: the cloud rotated the refresh token; the vault now holds version %s… (was %s…)", i+1, short(after.Version), short(st.Version))
		st = after
	}
	d.crossed(pub.Name+"'s partner administrator (browser)", pub.Name+"'s broker, then its vault",
		"the administrator's sign-in with MFA; the broker reaches the vault only as its managed identity",
		"the administrator's consent to User.Read; the vault's role assignment to partner-broker")
	d.note("the refresh token stays in the vault; it expires unused after %s (status %s)", "90 days", st.ExpiresAt.Format("2006-01-02"))
	return nil
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
