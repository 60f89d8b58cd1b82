package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tenantbridge/tenantbridge/examples"
	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/fanout"
	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// s1State is what S1 leaves for S2: the publisher's broker and contoso's
// installation.
type s1State struct {
	broker      *publisher.Broker
	sig         string
	usageNS     string // the publisher's shared namespace (name)
	identityIss string // the publisher admin app's token-exchange issuer and subject
	identitySub string
	offers      map[string]string // mode -> definition id
	contosoApp  string            // contoso's application id (secret mode)
	secretApp   *publisher.Installation
}

func (d *scenarioDemo) runS1(ctx context.Context) error {
	pub, contoso, northwind := d.pub, d.cust[0], d.cust[1]
	st := &d.s1

	d.step("%s prepares its shared resource and the group that may use it", pub.Name)
	g, err := pub.graph.CreateGroup(ctx, azclient.Group{DisplayName: "managed-app installations", MailNickname: "installations", SecurityEnabled: true})
	if err != nil {
		return fmt.Errorf("creating the group: %s", azclient.Describe(err))
	}
	rg, err := d.createGroup(ctx, pub, "shared")
	if err != nil {
		return err
	}
	st.usageNS = "fabrikam-usage-" + d.w.suffix
	ns := rg + "/providers/Microsoft.ServiceBus/namespaces/" + st.usageNS
	if _, err := d.arm(ctx, pub.cred, http.MethodPut, ns, demoBusAPIVersion, map[string]any{"location": demoLocation}, nil); err != nil {
		return fmt.Errorf("creating the usage namespace: %w", err)
	}
	if _, err := d.arm(ctx, pub.cred, http.MethodPut, ns+"/queues/usage", demoBusAPIVersion, map[string]any{"properties": map[string]any{}}, nil); err != nil {
		return fmt.Errorf("creating the usage queue: %w", err)
	}
	if err := d.assignAs(ctx, pub.cred, pub.sub(), ns+"/queues/usage", roleBusSender, g.ID, "Group"); err != nil {
		return err
	}
	if err := d.assign(ctx, pub.cred, pub.sub(), ns, roleBusOwner, pub.Admin.ServicePrincipalID); err != nil {
		return err
	}
	d.note("queue %s/usage; group %q holds only Azure Service Bus Data Sender on it", st.usageNS, g.DisplayName)

	d.step("%s runs its broker behind a notification endpoint that checks sig, and as an OpenID issuer", pub.Name)
	hook := &swapHandler{}
	base, err := d.localServer(hook)
	if err != nil {
		return err
	}
	// The broker's issuer: HTTPS (the cloud fetches its discovery and
	// JWKS as Entra would), its signing key an RSA key created in
	// fabrikam's vault and used only through Key Vault's sign.
	secure, err := d.localTLSServer(hook)
	if err != nil {
		return err
	}
	keyVault := "fabrikam-keys-" + d.w.suffix
	kvID, err := d.createVault(ctx, pub, rg, keyVault)
	if err != nil {
		return err
	}
	if err := d.assign(ctx, pub.cred, pub.sub(), kvID, roleCryptoOfficer, pub.Admin.ServicePrincipalID); err != nil {
		return err
	}
	signer, err := publisher.NewVaultSigner(ctx, "https://"+keyVault+".vault.azure.net", "broker-issuer", pub.cred,
		&publisher.VaultSignerOptions{ClientOptions: d.w.opts, Create: true})
	if err != nil {
		return fmt.Errorf("the broker's signing key: %s", azclient.Describe(err))
	}
	st.sig = d.newSecret("sig-")
	state, err := publisher.NewFileStore(filepath.Join(d.c.dataDir, "demo-publisher-state.json"))
	if err != nil {
		return err
	}
	// The broker knows its two offers: both install the same package,
	// one with a client secret, one secretless. Nothing but the
	// lifecycle notification tells it of an installation, as in Azure.
	offers := map[string]publisher.Offer{
		"srb":            {CredentialMode: publisher.ModeSecret, DeliveryIdentity: deliveryIdentity},
		"srb-secretless": {CredentialMode: publisher.ModeFederated, DeliveryIdentity: deliveryIdentity, InstallationIdentity: installationIdentity},
	}
	st.broker, err = publisher.New(publisher.Config{TenantID: pub.TenantID, Credential: pub.cred, ClientOptions: d.w.opts,
		IssuerURL: secure + "/oidc", Signer: signer, Offers: offers,
		GroupID: g.ID, NotificationSecret: st.sig, Subscriptions: []string{pub.SubscriptionID}, State: state,
		GroupBackoff: 20 * time.Millisecond, GroupAttempts: 5, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	hook.set(st.broker.Handler())
	d.note("endpoint %s/hooks?sig=(the publisher's secret; never shown)", base)
	d.note("the broker is a wire client: Graph, Resource Manager and Key Vault with %s's own app credential", pub.Name)
	d.note("its OpenID issuer %s: discovery and JWKS; the signing key %s/broker-issuer (kid %s)", st.broker.IssuerURL(), keyVault, signer.PublicKeys()[0].KeyID)
	d.note("  is an RSA key in %s's vault: the broker asks Key Vault to sign, the private key never leaves it", pub.Name)

	d.step("%s publishes two marketplace offers from its package examples/shared-resource-broker/mainTemplate.json", pub.Name)
	ex, err := pub.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tokenExchangeScope}})
	if err != nil {
		return fmt.Errorf("%s's token-exchange token: %s", pub.Name, azclient.Describe(err))
	}
	d.secret(ex.Token)
	c := tokenClaims(ex.Token)
	st.identityIss, st.identitySub = claim(c, "iss"), claim(c, "sub")
	if _, err := d.createGroup(ctx, pub, "offers"); err != nil {
		return err
	}
	var tmpl map[string]any
	if err := json.Unmarshal(examples.SharedResourceBrokerTemplate, &tmpl); err != nil {
		return fmt.Errorf("the shared-resource-broker package: %w", err)
	}
	st.offers = map[string]string{}
	for _, o := range []struct{ name, mode string }{{"srb", publisher.ModeSecret}, {"srb-secretless", publisher.ModeFederated}} {
		id := pub.sub() + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/" + o.name
		body := map[string]any{"location": demoLocation, "properties": map[string]any{
			"lockLevel": "ReadOnly", "displayName": "Shared resource broker (" + o.mode + ")",
			"authorizations":     []any{map[string]any{"principalId": pub.Admin.ServicePrincipalID, "roleDefinitionId": roleContributor}},
			"notificationPolicy": map[string]any{"notificationEndpoints": []any{map[string]any{"uri": base + "/hooks?sig=" + st.sig}}},
			"mainTemplate":       tmpl}}
		if _, err := d.arm(ctx, pub.cred, http.MethodPut, id, demoManagedAppAPIVer, body, nil); err != nil {
			return fmt.Errorf("publishing %s: %w", o.name, err)
		}
		// Putting it on sale is Partner Center's job in Azure, with no
		// ARM API: here the operator's (tenantbridge marketplace offer publish).
		if _, err := d.w.op.PublishOffer(ctx, id); err != nil {
			return fmt.Errorf("publishing offer %s: %s", o.name, azclient.Describe(err))
		}
		st.offers[o.mode] = id
	}
	d.note("the package makes, in each installation's managed group: a vault; identity %q (the software's: Secrets User);", installationIdentity)
	d.note("  identity %q (Secrets Officer, used only by %s's broker through listTokens); output vaultResourceId", deliveryIdentity, pub.Name)
	d.note("the definitions: that mainTemplate, %s's admin app as Contributor on the managed group, the notification endpoint", pub.Name)

	install := func(a *actor, product, name string) (string, int, error) {
		if _, err := d.createGroup(ctx, a, "apps"); err != nil {
			return "", 0, err
		}
		id := a.sub() + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/" + name
		var doc struct {
			Properties struct {
				ProvisioningState string `json:"provisioningState"`
			} `json:"properties"`
		}
		code, err := d.arm(ctx, a.cred, http.MethodPut, id, demoManagedAppAPIVer, map[string]any{"location": demoLocation, "kind": "MarketPlace",
			"plan":       map[string]any{"name": "standard", "publisher": pub.Domain, "product": product, "version": "1.0.0"},
			"identity":   map[string]any{"type": "SystemAssigned"},
			"properties": map[string]any{"managedResourceGroupId": a.sub() + "/resourceGroups/mrg-" + name}}, &doc)
		if err != nil {
			return id, code, fmt.Errorf("installing %s in %s: %w", product, a.Name, err)
		}
		if doc.Properties.ProvisioningState != "Succeeded" {
			return id, code, fmt.Errorf("installing %s in %s: provisioningState %s", product, a.Name, doc.Properties.ProvisioningState)
		}
		return id, code, nil
	}
	registered := func(appID string) (*publisher.Installation, error) {
		var in *publisher.Installation
		err := waitUntil(ctx, "the broker's registration", func() (bool, error) {
			var err error
			in, err = st.broker.Installation(ctx, appID)
			return err == nil && in != nil && in.Status == "registered", nil
		})
		return in, err
	}

	d.step("%s's admin installs \"srb\" in %s's subscription", contoso.Name, contoso.Name)
	st.contosoApp, _, err = install(contoso, "srb", "srb")
	if err != nil {
		return err
	}
	d.note("provisioningState Succeeded: managed group mrg-srb with a deny assignment for everyone but the publisher,")
	d.note("%s's Contributor role there (a cross-tenant assignment), and what the package deployed into it", pub.Name)

	d.step("The cloud notifies %s's broker; the broker reads the application and registers the installation", pub.Name)
	in, err := registered(st.contosoApp)
	if err != nil {
		return err
	}
	st.secretApp = in
	d.names[in.SPObjectID] = in.DisplayName
	d.crossed(contoso.Name+" (the cloud, for the installation)", pub.Name+"'s notification endpoint",
		"the sig in the endpoint's query, compared in constant time", pub.Name+" published the endpoint in its definition")
	d.note("in %s: application %q (client id %s), its service principal added to the group", pub.Name, in.DisplayName, in.ClientID)
	d.crossed(pub.Name+"'s broker", contoso.Name+"'s Resource Manager: GET the application",
		pub.Name+"'s admin app token", "the definition's authorization, accepted by "+contoso.Name+" at install")
	d.note("managed group %s; the package's output vaultResourceId: %s", lastSegments(in.ManagedResourceGroupID, 1), in.Vault)
	d.crossed(pub.Name+"'s broker", contoso.Name+"'s managed vault "+in.Vault,
		"listTokens: a Key Vault token of the package's identity "+deliveryIdentity+", asked with "+pub.Name+"'s admin app token",
		contoso.Name+" accepted the offer's authorization (Contributor on mrg-srb); the package made that identity Secrets Officer")
	if err := d.deliveryLog(ctx, st.offers[publisher.ModeSecret]); err != nil {
		return err
	}

	d.step("The installation reads its credential and sends usage to %s's queue", pub.Name)
	csoftware, err := d.installedSoftware(ctx, contoso, "mrg-srb", "srb-software")
	if err != nil {
		return err
	}
	cfg, secret, names, err := d.readManagedVault(ctx, csoftware, in.Vault)
	if err != nil {
		return err
	}
	d.note("vault %s holds %s; the client secret's value is not shown", in.Vault, strings.Join(names, ", "))
	if cfg.CredentialMode != publisher.ModeSecret || secret == "" {
		return fmt.Errorf("the vault holds mode %q and %d bytes of secret", cfg.CredentialMode, len(secret))
	}
	instCred, err := azclient.NewClientSecretCredential(d.w.authority, cfg.TenantID, cfg.ClientID, secret, d.w.opts)
	if err != nil {
		return err
	}
	if err := d.sendUsage(ctx, instCred, contoso.Name); err != nil {
		return err
	}
	d.crossed(contoso.Name+" (the installation)", pub.Name+"'s queue "+st.usageNS+"/usage",
		"a "+pub.Name+" token for the per-installation app, from the client secret in the managed vault",
		pub.Name+"'s group grants Data Sender on that queue only")
	if err := d.receiveUsage(ctx, contoso.Name); err != nil {
		return err
	}

	d.step("%s's admin installs \"srb-secretless\": federated, nothing secret anywhere", northwind.Name)
	fedApp, _, err := install(northwind, "srb-secretless", "srb")
	if err != nil {
		return err
	}
	fin, err := registered(fedApp)
	if err != nil {
		return err
	}
	app, err := pub.graph.GetApplication(ctx, fin.AppObjectID)
	if err != nil {
		return fmt.Errorf("reading the per-installation application: %s", azclient.Describe(err))
	}
	fics, err := pub.graph.ListFederatedCredentials(ctx, fin.AppObjectID)
	if err != nil {
		return fmt.Errorf("reading its federated credentials: %s", azclient.Describe(err))
	}
	if len(app.PasswordCredentials) != 0 || len(fics) != 1 {
		return fmt.Errorf("the secretless application has %d passwords and %d federated credentials", len(app.PasswordCredentials), len(fics))
	}
	if fics[0].Issuer != st.broker.IssuerURL() || fics[0].Subject != publisher.InstallationSubject(fedApp) {
		return fmt.Errorf("the federated credential trusts %s / %s", fics[0].Issuer, fics[0].Subject)
	}
	d.note("application %q: 0 client secrets; 1 federated credential trusting %s's broker %s", app.DisplayName, pub.Name, fics[0].Issuer)
	d.note("  subject installation:…/%s (this installation only)", lastSegments(fics[0].Subject, 2))
	software, err := d.installedSoftware(ctx, northwind, "mrg-srb", "srb-software")
	if err != nil {
		return err
	}
	fcfg, fsecret, fnames, err := d.readManagedVault(ctx, software, fin.Vault)
	if err != nil {
		return err
	}
	if fsecret != "" || len(fnames) != 1 || fcfg.ExchangeEndpoint != st.broker.ExchangeURL() {
		return fmt.Errorf("the secretless vault holds %v (exchange %q)", fnames, fcfg.ExchangeEndpoint)
	}
	d.note("vault %s holds only %s (tenant, client id and the broker's exchange endpoint; no secret)", fin.Vault, strings.Join(fnames, ", "))

	d.step("The installed software in %s signs in to %s with its managed identity: no secret", northwind.Name, pub.Name)
	fedCred, err := publisher.InstallationCredential(fcfg, software,
		&publisher.InstallationCredentialOptions{ClientOptions: d.w.opts, ExchangeClient: d.brokerTLS.client})
	if err != nil {
		return err
	}
	if err := d.sendUsage(ctx, fedCred, northwind.Name); err != nil {
		return err
	}
	d.crossed(northwind.Name+" (the installed software)", pub.Name+"'s broker "+lastSegments(st.broker.ExchangeURL(), 2),
		"its managed identity's token for api://AzureADTokenExchange, issued by "+northwind.Name,
		"the broker checked it against "+northwind.Name+"'s OpenID keys and the identity it registered for this installation")
	d.crossed(northwind.Name+" (the installed software)", pub.Name+"'s queue "+st.usageNS+"/usage",
		"the broker's assertion (signed in "+pub.Name+"'s Key Vault) as the client assertion for the per-installation app",
		pub.Name+"'s federated credential trusts exactly the broker's issuer and this installation's subject")
	if err := d.receiveUsage(ctx, northwind.Name); err != nil {
		return err
	}

	d.step("The old design: %s's app trusting %s's Entra issuer directly is refused", pub.Name, northwind.Name)
	raw, err := software.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tokenExchangeScope}})
	if err != nil {
		return fmt.Errorf("the installation's token: %s", azclient.Describe(err))
	}
	nwIssuer := claim(tokenClaims(raw.Token), "iss")
	if _, err := pub.graph.AddFederatedCredential(ctx, fin.AppObjectID, azclient.FederatedCredential{Name: "old-design",
		Issuer: nwIssuer, Subject: claim(tokenClaims(raw.Token), "sub"), Audiences: []string{azclient.TokenExchangeAudience}}); err != nil {
		return fmt.Errorf("adding the old design's credential: %s", azclient.Describe(err))
	}
	d.note("a credential trusting %s (%s's tenant) and the installation's identity: created, as Entra creates it", nwIssuer, northwind.Name)
	direct, err := azidentity.NewClientAssertionCredential(fcfg.TenantID, fcfg.ClientID,
		func(context.Context) (string, error) { return raw.Token, nil }, &azidentity.ClientAssertionCredentialOptions{ClientOptions: d.w.opts})
	if err != nil {
		return err
	}
	if _, err := direct.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}}); err == nil {
		return errors.New("SECURITY: another tenant's Entra token signed in as a federated credential")
	} else if te, ok := azclient.AsTokenError(err); !ok || !strings.Contains(te.Code+te.Description, "700236") {
		return fmt.Errorf("the old design answered %v, want AADSTS700236", err)
	} else {
		d.note("the exchange: %s", tokenRefusal(err))
	}
	d.note("Entra's rule: an Entra issuer only for the credential owner's own tenant and a user-assigned identity there")
	d.note("  (learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity; Q&A 2139753)")

	d.step("Installing \"srb\" again in %s changes nothing", contoso.Name)
	if _, code, err := install(contoso, "srb", "srb"); err != nil {
		return err
	} else if code != http.StatusOK {
		return fmt.Errorf("the second install answered %d, want 200", code)
	}
	apps, err := pub.graph.ListApplications(ctx, "displayName eq "+azclient.ODataString(in.DisplayName))
	if err != nil {
		return errors.New(azclient.Describe(err))
	}
	if again, _ := st.broker.Installation(ctx, st.contosoApp); len(apps) != 1 || again.ClientID != in.ClientID {
		return fmt.Errorf("not idempotent: %d applications named %q", len(apps), in.DisplayName)
	}
	d.note("200, no new notification; still one application %q in %s", in.DisplayName, pub.Name)

	d.step("%s uninstalls; the broker removes everything it created for that installation", northwind.Name)
	if _, err := d.arm(ctx, northwind.cred, http.MethodDelete, fedApp, demoManagedAppAPIVer, nil, nil); err != nil {
		return fmt.Errorf("uninstalling: %w", err)
	}
	if err := waitUntil(ctx, "deprovisioning", func() (bool, error) {
		in, err := st.broker.Installation(ctx, fedApp)
		return err == nil && in != nil && in.Status == "deleted", nil
	}); err != nil {
		return err
	}
	if _, err := pub.graph.GetApplication(ctx, fin.AppObjectID); !azclient.IsNotFound(err) {
		return fmt.Errorf("the per-installation application survived: %v", err)
	}
	if _, err := pub.graph.GetServicePrincipal(ctx, fin.SPObjectID); !azclient.IsNotFound(err) {
		return fmt.Errorf("its service principal survived: %v", err)
	}
	d.note("DELETE/Deleting, DELETE/Deleted reached the broker: application, service principal and group membership gone;")
	d.note("the managed group (vault, identity) went with the installation in %s", northwind.Name)
	return nil
}

type listTokensResult struct {
	Value []struct {
		AccessToken string `json:"access_token"`
		ResourceID  string `json:"resourceId"`
	} `json:"value"`
}

// listTokens asks for a token of the installation's identity (or of a
// user-assigned identity of its managed group), as the publisher.
func (d *scenarioDemo) listTokens(ctx context.Context, appID, audience string, uamis ...string) (string, error) {
	body := map[string]any{"authorizationAudience": audience}
	if len(uamis) > 0 {
		body["userAssignedIdentities"] = uamis
	}
	var out listTokensResult
	if _, err := d.arm(ctx, d.pub.cred, http.MethodPost, appID+"/listTokens", demoManagedAppAPIVer, body, &out); err != nil {
		return "", err
	}
	if len(out.Value) != 1 || out.Value[0].AccessToken == "" {
		return "", errors.New("listTokens returned no token")
	}
	d.secret(out.Value[0].AccessToken)
	return out.Value[0].AccessToken, nil
}

// readManagedVault reads the broker's delivery from an installation's
// vault as the installed software (its identity "installation", which
// the package makes Secrets User there).
func (d *scenarioDemo) readManagedVault(ctx context.Context, software azcore.TokenCredential, vaultName string) (cfg publisher.VaultConfig, secret string, names []string, err error) {
	kv, err := d.vaultClient(vaultName, software)
	if err != nil {
		return cfg, "", nil, err
	}
	if names, err = secretNames(ctx, kv); err != nil {
		return cfg, "", nil, fmt.Errorf("listing the managed vault: %s", azclient.Describe(err))
	}
	r, err := kv.GetSecret(ctx, publisher.DefaultConfigName, "", nil)
	if err != nil {
		return cfg, "", nil, fmt.Errorf("reading %s: %s", publisher.DefaultConfigName, azclient.Describe(err))
	}
	if err := json.Unmarshal([]byte(*r.Value), &cfg); err != nil {
		return cfg, "", nil, err
	}
	if cfg.SecretName != "" {
		s, err := kv.GetSecret(ctx, cfg.SecretName, "", nil)
		if err != nil {
			return cfg, "", nil, fmt.Errorf("reading %s: %s", cfg.SecretName, azclient.Describe(err))
		}
		secret = *s.Value
		d.secret(secret)
	}
	return cfg, secret, names, nil
}

// usageClient is a Service Bus client (azservicebus, AMQP 1.0 over
// WebSockets on the server's HTTPS listener) of the publisher's usage
// namespace, as cred; the caller closes it.
func (d *scenarioDemo) usageClient(cred azcore.TokenCredential) (*azservicebus.Client, error) {
	host := d.s1.usageNS + ".servicebus.windows.net"
	return azservicebus.NewClient(host, cred, fanout.WebSockets(d.w.tr)(host))
}

// sendUsage sends a usage event to the publisher's queue as cred.
func (d *scenarioDemo) sendUsage(ctx context.Context, cred azcore.TokenCredential, from string) error {
	ctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	client, err := d.usageClient(cred)
	if err != nil {
		return err
	}
	defer client.Close(context.WithoutCancel(ctx))
	sender, err := client.NewSender("usage", nil)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"customer": from, "meter": "api-calls", "quantity": 42})
	if err != nil {
		return err
	}
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: body, ContentType: new("application/json"), Subject: new("usage")}, nil); err != nil {
		return fmt.Errorf("sending usage: %w", err)
	}
	return nil
}

// receiveUsage takes the usage event off the queue as the publisher:
// peek-lock, then complete.
func (d *scenarioDemo) receiveUsage(ctx context.Context, from string) error {
	ctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	client, err := d.usageClient(d.pub.cred)
	if err != nil {
		return err
	}
	defer client.Close(context.WithoutCancel(ctx))
	receiver, err := client.NewReceiverForQueue("usage", nil)
	if err != nil {
		return err
	}
	msgs, err := receiver.ReceiveMessages(ctx, 1, nil)
	if err != nil {
		return fmt.Errorf("receiving usage: %w", err)
	}
	if len(msgs) != 1 {
		return fmt.Errorf("the usage queue gave %d messages", len(msgs))
	}
	var ev map[string]any
	if err := json.Unmarshal(msgs[0].Body, &ev); err != nil || ev["customer"] != from {
		return fmt.Errorf("the usage queue gave %q (%v)", msgs[0].Body, err)
	}
	if err := receiver.CompleteMessage(ctx, msgs[0], nil); err != nil {
		return fmt.Errorf("completing the usage event: %w", err)
	}
	d.note("%s received the usage event from %s's installation over AMQP (azservicebus, peek-lock + complete): %v api-calls",
		d.pub.Name, from, ev["quantity"])
	return nil
}

// deliveryLog shows the definition's notification deliveries, once none
// is pending (the outbox delivers in the background: the broker may have
// answered a notification before its delivery is recorded).
func (d *scenarioDemo) deliveryLog(ctx context.Context, definition string) error {
	type entry struct {
		Payload struct {
			EventType         string `json:"eventType"`
			ProvisioningState string `json:"provisioningState"`
		} `json:"payload"`
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
	}
	var entries []entry
	read := func() (bool, error) {
		var log struct {
			Value []entry `json:"value"`
		}
		if _, err := d.arm(ctx, d.pub.cred, http.MethodGet, definition+"/notifications", demoManagedAppAPIVer, nil, &log); err != nil {
			return false, fmt.Errorf("reading the delivery log: %w", err)
		}
		entries = log.Value
		for _, v := range entries {
			if v.State == "pending" {
				return false, nil
			}
		}
		return true, nil
	}
	if err := waitUntil(ctx, "the notifications' delivery", read); err != nil && ctx.Err() != nil {
		return err
	} else if err != nil && len(entries) == 0 {
		return err
	} // else: show what is there, pending or not
	var parts []string
	for i := len(entries) - 1; i >= 0; i-- {
		v := entries[i]
		parts = append(parts, fmt.Sprintf("%s/%s %s", v.Payload.EventType, v.Payload.ProvisioningState, v.State))
	}
	d.note("delivery log of the definition: %s", strings.Join(parts, "; "))
	return nil
}

const (
	// roleCryptoOfficer is Key Vault Crypto Officer (Azure's id): the
	// broker creates and signs with its issuer key.
	roleCryptoOfficer = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
	// installationIdentity is the user-assigned identity of the managed
	// group that the installed software runs as, and deliveryIdentity the
	// one the publisher's broker writes the credential as (the package
	// examples/shared-resource-broker makes both).
	installationIdentity = "installation"
	deliveryIdentity     = "publisher-delivery"
)

// installedSoftware is the installed application's managed identity: a
// workload of a's tenant running as the user-assigned identity
// "installation" of the managed group mrg.
func (d *scenarioDemo) installedSoftware(ctx context.Context, a *actor, mrg, name string) (azcore.TokenCredential, error) {
	id := a.sub() + "/resourceGroups/" + mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + installationIdentity
	var uami struct {
		Properties struct {
			ClientID    string `json:"clientId"`
			PrincipalID string `json:"principalId"`
		} `json:"properties"`
	}
	if _, err := d.arm(ctx, a.cred, http.MethodGet, id, demoIdentityAPIVersion, nil, &uami); err != nil {
		return nil, fmt.Errorf("reading the installation's identity: %w", err)
	}
	wl, err := d.w.op.CreateWorkload(ctx, a.TenantID, azclient.NewWorkload{Name: name, Identities: []string{uami.Properties.PrincipalID}})
	if err != nil {
		return nil, fmt.Errorf("creating workload %s in %s: %w", name, a.Name, err)
	}
	d.secret(wl.IdentityHeader)
	endpoint, err := d.w.opcred.IdentityEndpoint(a.TenantID)
	if err != nil {
		return nil, err
	}
	d.names[uami.Properties.PrincipalID] = "the installation's identity (" + a.Name + ")"
	d.note("the software runs as %s's managed identity %s/%s (a workload of %s)", a.Name, mrg, installationIdentity, a.Name)
	return &identityCredential{d: d, endpoint: endpoint, header: wl.IdentityHeader, clientID: uami.Properties.ClientID}, nil
}
