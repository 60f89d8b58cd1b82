package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/examples"
	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

func (d *scenarioDemo) runS2(ctx context.Context) error {
	pub, contoso := d.pub, d.cust[0]
	st := &d.s1
	appID, in := st.contosoApp, st.secretApp

	d.step("%s asks listTokens for a Key Vault token of the package's identity %s in %s", pub.Name, deliveryIdentity, contoso.Name)
	tok, err := d.listTokens(ctx, appID, "https://vault.azure.net", in.DeliveryIdentityID)
	if err != nil {
		return err
	}
	c := tokenClaims(tok)
	if claim(c, "tid") != contoso.TenantID {
		return fmt.Errorf("the listTokens token is of tenant %s, want %s", claim(c, "tid"), contoso.TenantID)
	}
	d.note("token: tid %s (%s), xms_mirid …%s", claim(c, "tid"), contoso.Name, lastSegments(claim(c, "xms_mirid"), 2))
	kv, err := d.vaultClient(in.Vault, staticToken(tok))
	if err != nil {
		return err
	}
	names, err := secretNames(ctx, kv)
	if err != nil {
		return fmt.Errorf("reading the managed vault: %s", azclient.Describe(err))
	}
	d.note("with it, %s lists the managed vault %s: %s", pub.Name, in.Vault, strings.Join(names, ", "))
	d.crossed(pub.Name+"'s admin app", contoso.Name+"'s Resource Manager, then its Key Vault",
		pub.Name+"'s own token; the cloud mints the identity's token in "+contoso.Name,
		"the definition's authorization, accepted by "+contoso.Name+" at install (Contributor on mrg-srb)")

	d.step("%s's own Owner may not call listTokens: only the publisher may", contoso.Name)
	var out listTokensResult
	_, err = d.arm(ctx, contoso.cred, http.MethodPost, appID+"/listTokens", demoManagedAppAPIVer, map[string]any{}, &out)
	if statusOf(err) != http.StatusForbidden {
		return fmt.Errorf("the customer's listTokens answered %v, want 403", err)
	}
	d.note("refused: %s", brief(err))

	d.step("%s publishes \"srb-access\" from its package examples/publisher-access/mainTemplate.json; %s installs it", pub.Name, contoso.Name)
	accessApp, mrg, vault, err := d.installPublisherAccess(ctx)
	if err != nil {
		return err
	}
	d.note("the definition carries the template (mainTemplate); the platform deployed it into %s: vault %s,", lastSegments(mrg, 1), vault)
	d.note("  identity publisher-access trusting %s's broker as issuer (subject publisher-access:{managed group id}), Secrets User on the vault", pub.Name)

	d.step("%s signs in as the managed group's identity publisher-access, which trusts %s's broker as issuer", pub.Name, pub.Name)
	uamiClientID := func(id string) (string, error) {
		var uami struct {
			Properties struct {
				ClientID string `json:"clientId"`
			} `json:"properties"`
		}
		if _, err := d.arm(ctx, pub.cred, http.MethodGet, id, demoIdentityAPIVersion, nil, &uami); err != nil {
			return "", fmt.Errorf("reading the identity: %w", err)
		}
		return uami.Properties.ClientID, nil
	}
	uamiID := mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/publisher-access"
	clientID, err := uamiClientID(uamiID)
	if err != nil {
		return err
	}
	d.note("GET %s (as %s's admin app, Contributor there): client id %s", lastSegments(uamiID, 4), pub.Name, clientID)
	brokerAssertion := func(ctx context.Context) (string, error) {
		a, err := st.broker.GroupAccessAssertion(ctx, mrg)
		d.secret(a)
		return a, err
	}
	fedCred, err := azidentity.NewClientAssertionCredential(contoso.TenantID, clientID, brokerAssertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: d.w.opts})
	if err != nil {
		return err
	}
	ukv, err := d.vaultClient(vault, fedCred)
	if err != nil {
		return err
	}
	unames, err := secretNames(ctx, ukv)
	if err != nil {
		return fmt.Errorf("reading the vault as publisher-access: %s", azclient.Describe(err))
	}
	if len(unames) == 0 {
		unames = []string{"(no secrets yet: the listing itself needs the identity's token and role)"}
	}
	d.note("the vault, read as publisher-access: %s", strings.Join(unames, ", "))
	d.crossed(pub.Name+"'s broker", contoso.Name+"'s token service, then its Key Vault",
		"the broker's own assertion (issuer "+st.broker.IssuerURL()+", signed by Key Vault) as the client assertion; the new token is issued by "+contoso.Name,
		"the identity's federated credential (issuer: the broker, subject publisher-access:{managed group id}) and its Secrets User role, made by the package in "+contoso.Name)

	d.step("The old design: an identity trusting %s's Entra tenant as issuer is refused", pub.Name)
	oldID, err := uamiClientID(mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/old-design")
	if err != nil {
		return err
	}
	oldCred, err := azidentity.NewClientAssertionCredential(contoso.TenantID, oldID,
		func(ctx context.Context) (string, error) {
			t, err := pub.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tokenExchangeScope}})
			d.secret(t.Token)
			return t.Token, err
		}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: d.w.opts})
	if err != nil {
		return err
	}
	if _, err := oldCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err == nil {
		return errors.New("SECURITY: another tenant's Entra token signed in as the customer's identity")
	} else if te, ok := azclient.AsTokenError(err); !ok || !strings.Contains(te.Code+te.Description, "700236") {
		return fmt.Errorf("the old design answered %v, want AADSTS700236", err)
	} else {
		d.note("identity old-design (issuer %s, created as Entra creates it): %s", st.identityIss, tokenRefusal(err))
	}
	d.note("Entra accepts an Entra issuer only for the identity's own tenant; a publisher uses its own issuer (this broker)")
	d.note("  or a multi-tenant app whose service principal the customer provisioned (S3)")

	d.step("%s uninstalls \"srb\" and \"srb-access\": the publisher's ways in close", contoso.Name)
	for _, id := range []string{appID, accessApp} {
		if _, err := d.arm(ctx, contoso.cred, http.MethodDelete, id, demoManagedAppAPIVer, nil, nil); err != nil {
			return fmt.Errorf("uninstalling %s: %w", lastSegments(id, 1), err)
		}
	}
	if err := waitUntil(ctx, "deprovisioning", func() (bool, error) {
		in, err := st.broker.Installation(ctx, appID)
		return err == nil && in != nil && in.Status == "deleted", nil
	}); err != nil {
		return err
	}
	if _, lerr := d.listTokens(ctx, appID, "https://vault.azure.net"); lerr == nil {
		return fmt.Errorf("SECURITY: listTokens still answers after the uninstall")
	} else if s := statusOf(lerr); s != http.StatusNotFound && s != http.StatusUnauthorized {
		return fmt.Errorf("listTokens after uninstall: %v, want 401 or 404", lerr)
	} else {
		d.note("listTokens now: %s", brief(lerr))
		d.note("  (the cross-tenant role assignment went with the managed group)")
	}
	if _, err := pub.graph.GetApplication(ctx, in.AppObjectID); !azclient.IsNotFound(err) {
		return fmt.Errorf("the per-installation application survived: %v", err)
	}
	d.note("the broker heard DELETE/Deleted and removed application %q, its service principal and client secret", in.DisplayName)
	again, err := azidentity.NewClientAssertionCredential(contoso.TenantID, clientID, brokerAssertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: d.w.opts})
	if err != nil {
		return err
	}
	if _, err := again.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err == nil {
		return fmt.Errorf("SECURITY: %s still issues tokens for the deleted identity", contoso.Name)
	} else {
		d.note("signing in as publisher-access: refused (%s)", tokenRefusal(err))
	}
	return nil
}

// installPublisherAccess publishes the offer "srb-access" from the
// committed package examples/publisher-access (the publisher builds it
// with its broker's issuer, and its own Entra tenant as the issuer of the
// old-design identity, as the parameters' defaults) and installs it in
// contoso. It answers the application's id, its managed resource group
// and the vault the package made there (as the publisher finds it: a
// list of the group's vaults).
func (d *scenarioDemo) installPublisherAccess(ctx context.Context) (appID, mrg, vault string, err error) {
	pub, contoso, st := d.pub, d.cust[0], &d.s1
	var tmpl map[string]any
	if err := json.Unmarshal(examples.PublisherAccessTemplate, &tmpl); err != nil {
		return "", "", "", fmt.Errorf("the publisher-access package: %w", err)
	}
	params, _ := tmpl["parameters"].(map[string]any)
	for name, v := range map[string]string{"brokerIssuer": st.broker.IssuerURL(), "legacyIssuer": st.identityIss, "legacySubject": st.identitySub} {
		p, ok := params[name].(map[string]any)
		if !ok {
			return "", "", "", fmt.Errorf("the publisher-access package has no parameter %s", name)
		}
		p["defaultValue"] = v
	}
	def := pub.sub() + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/srb-access"
	body := map[string]any{"location": demoLocation, "properties": map[string]any{
		"lockLevel": "ReadOnly", "displayName": "Shared resource broker, publisher access",
		"authorizations": []any{map[string]any{"principalId": pub.Admin.ServicePrincipalID, "roleDefinitionId": roleContributor}},
		"mainTemplate":   tmpl}}
	if _, err := d.arm(ctx, pub.cred, http.MethodPut, def, demoManagedAppAPIVer, body, nil); err != nil {
		return "", "", "", fmt.Errorf("publishing srb-access: %w", err)
	}
	if _, err := d.w.op.PublishOffer(ctx, def); err != nil {
		return "", "", "", fmt.Errorf("publishing offer srb-access: %s", azclient.Describe(err))
	}
	appID = contoso.sub() + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/srb-access"
	mrg = contoso.sub() + "/resourceGroups/mrg-srb-access"
	var doc struct {
		Properties struct {
			ProvisioningState string `json:"provisioningState"`
			Error             any    `json:"error"`
		} `json:"properties"`
	}
	if _, err := d.arm(ctx, contoso.cred, http.MethodPut, appID, demoManagedAppAPIVer, map[string]any{"location": demoLocation, "kind": "MarketPlace",
		"plan":       map[string]any{"name": "standard", "publisher": pub.Domain, "product": "srb-access", "version": "1.0.0"},
		"properties": map[string]any{"managedResourceGroupId": mrg}}, &doc); err != nil {
		return "", "", "", fmt.Errorf("installing srb-access in %s: %w", contoso.Name, err)
	}
	if doc.Properties.ProvisioningState != "Succeeded" {
		return "", "", "", fmt.Errorf("installing srb-access in %s: provisioningState %s (%v)", contoso.Name, doc.Properties.ProvisioningState, doc.Properties.Error)
	}
	var vaults struct {
		Value []struct {
			Name string `json:"name"`
		} `json:"value"`
	}
	if _, err := d.arm(ctx, pub.cred, http.MethodGet, mrg+"/providers/Microsoft.KeyVault/vaults", demoVaultAPIVersion, nil, &vaults); err != nil {
		return "", "", "", fmt.Errorf("listing the managed group's vaults: %w", err)
	}
	if len(vaults.Value) != 1 {
		return "", "", "", fmt.Errorf("the managed group holds %d vaults, want 1", len(vaults.Value))
	}
	return appID, mrg, vaults.Value[0].Name, nil
}

// brief is a wire error's status, code and last clause.
func brief(err error) string {
	var we *wireError
	if !errors.As(err, &we) {
		return oneLineText(err.Error())
	}
	msg := strings.Join(strings.Fields(we.Message), " ")
	if i := strings.Index(msg, ". "); i > 0 {
		msg = msg[:i+1]
	}
	if i := strings.LastIndex(msg, ": "); len(msg) > 140 && i > 0 {
		msg = msg[i+2:]
	}
	return fmt.Sprintf("HTTP %d %s: %s", we.Status, we.Code, oneLineText(msg))
}

// tokenRefusal is the AADSTS code and first sentence of a refused token request.
func tokenRefusal(err error) string {
	te, ok := azclient.AsTokenError(err)
	if !ok {
		return oneLineText(azclient.Describe(err))
	}
	desc := te.Description
	if i := strings.Index(desc, ". "); i > 0 {
		desc = desc[:i+1]
	}
	if te.Code != "" && !strings.Contains(desc, te.Code) {
		desc = te.Code + ": " + desc
	}
	return fmt.Sprintf("HTTP %d %s: %s", te.StatusCode, te.OAuthError, desc)
}

// lastSegments is the last n segments of a resource id.
func lastSegments(id string, n int) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) > n {
		parts = parts[len(parts)-n:]
	}
	return strings.Join(parts, "/")
}
