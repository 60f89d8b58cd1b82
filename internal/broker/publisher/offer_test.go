package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/examples"
	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// The package's delivery identity (examples/shared-resource-broker).
const deliveryIdentity = "publisher-delivery"

// packageOffers is the broker's configuration of the two offers made
// from the shared-resource-broker package.
var packageOffers = map[string]publisher.Offer{
	"srb":            {CredentialMode: publisher.ModeSecret, DeliveryIdentity: deliveryIdentity},
	"srb-secretless": {CredentialMode: publisher.ModeFederated, DeliveryIdentity: deliveryIdentity, InstallationIdentity: installationIdentity},
}

// publishPackage writes a marketplace definition named name that carries
// template as its mainTemplate (no registration section: as in Azure)
// and puts it on sale.
func (w *world) publishPackage(t testing.TB, name string, template []byte) string {
	t.Helper()
	var tmpl map[string]any
	must(t, json.Unmarshal(template, &tmpl))
	sub := "/subscriptions/" + w.pub.SubscriptionID
	if c, _ := w.arm(t, w.pubCred, "PUT", sub+"/resourceGroups/offers", map[string]any{"location": "westeurope"}); c/100 != 2 {
		t.Fatal("offers group")
	}
	def := sub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/" + name
	c, doc := w.arm(t, w.pubCred, "PUT", def, map[string]any{"location": "westeurope", "properties": map[string]any{
		"lockLevel": "ReadOnly", "displayName": "Shared resource broker (" + name + ")",
		"authorizations":     []any{map[string]any{"principalId": w.pub.Admin.ServicePrincipalID, "roleDefinitionId": "b24988ac-6180-42a0-ab88-20f7382dd24c"}},
		"notificationPolicy": map[string]any{"notificationEndpoints": []any{map[string]any{"uri": w.hook.URL + "/hooks?sig=" + sig}}},
		"mainTemplate":       tmpl}})
	if c/100 != 2 {
		t.Fatalf("definition: %d %v", c, doc)
	}
	w.publishOffer(t, def)
	return def
}

// installedVault is a client of the vault an installation's package made,
// as cred.
func (w *world) installedVault(t testing.TB, in *publisher.Installation, cred azcore.TokenCredential) *azsecrets.Client {
	t.Helper()
	kv, err := azsecrets.NewClient("https://"+in.Vault+".vault.azure.net", cred, &azsecrets.ClientOptions{ClientOptions: w.opts})
	must(t, err)
	return kv
}

// TestOfferFromPackage: the publisher's offers are the committed package
// examples/shared-resource-broker/mainTemplate.json, with no registration
// section and no registration call; the broker registers each
// installation from the lifecycle notification alone, as it would
// against Azure: it reads the application (its managed group and the
// package's vault output), writes the credential as the package's
// delivery identity (listTokens with userAssignedIdentities), and the
// installed software — the package's other identity — reads it and signs
// in to the publisher. The federated offer does the same with nothing
// secret. Uninstalling removes what the broker made.
func TestOfferFromPackage(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.offers = packageOffers
	b := w.broker(t, nil)
	for _, name := range []string{"srb", "srb-secretless"} {
		w.publishPackage(t, name, examples.SharedResourceBrokerTemplate)
	}

	// The secret offer.
	appID, _ := w.install(t, "srb", "pkg1")
	waitFor(t, "registration", func() bool {
		in := w.installation(t, b, appID)
		return in != nil && in.Status == "registered"
	})
	in := w.installation(t, b, appID)
	mrg := "/subscriptions/" + w.cust.SubscriptionID + "/resourceGroups/mrg-pkg1"
	if in.Offer != "srb" || in.CredentialMode != publisher.ModeSecret || in.ManagedResourceGroupID != mrg ||
		!strings.HasPrefix(in.Vault, "kv") || in.CustomerTenantID != w.cust.TenantID ||
		in.DeliveryIdentityID != mrg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"+deliveryIdentity {
		t.Fatalf("installation %+v", in)
	}
	if !w.isMember(t, in.SPObjectID) {
		t.Error("the installation's service principal is not in the group")
	}
	// The installed software reads its credential with its own identity
	// (Secrets User, from the package) and signs in to the publisher.
	software := w.installedSoftware(t, appID)
	kv := w.installedVault(t, in, software)
	cfgSecret, err := kv.GetSecret(ctx, publisher.DefaultConfigName, "", nil)
	must(t, err)
	var cfg publisher.VaultConfig
	must(t, json.Unmarshal([]byte(*cfgSecret.Value), &cfg))
	if cfg.CredentialMode != publisher.ModeSecret || cfg.ClientID != in.ClientID || cfg.TenantID != w.pub.TenantID {
		t.Fatalf("config %+v", cfg)
	}
	secret, err := kv.GetSecret(ctx, cfg.SecretName, "", nil)
	must(t, err)
	cred, err := azclient.NewClientSecretCredential(w.authority, cfg.TenantID, cfg.ClientID, *secret.Value, w.opts)
	must(t, err)
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}}); err != nil {
		t.Fatalf("the delivered secret does not sign in: %v", err)
	}
	// The software may read, not write: the delivery identity's role is
	// the publisher's alone.
	v := "x"
	if _, err := kv.SetSecret(ctx, "intruder", azsecrets.SetSecretParameters{Value: &v}, nil); httpStatus(err) != http.StatusForbidden {
		t.Errorf("the installed software wrote to the vault: %v", err)
	}
	// The application's own identity has no role on the package's vault.
	if c, doc := w.arm(t, w.pubCred, "POST", appID+"/listTokens", map[string]any{"authorizationAudience": "https://vault.azure.net"}); c == 200 {
		tok := doc["value"].([]any)[0].(map[string]any)["access_token"].(string)
		if _, err := w.installedVault(t, in, staticCred(tok)).GetSecret(ctx, publisher.DefaultConfigName, "", nil); httpStatus(err) != http.StatusForbidden {
			t.Errorf("the application's identity reads the vault: %v", err)
		}
	}

	// The federated offer: nothing secret.
	fedID, _ := w.install(t, "srb-secretless", "pkg2")
	waitFor(t, "federated registration", func() bool {
		in := w.installation(t, b, fedID)
		return in != nil && in.Status == "registered"
	})
	fin := w.installation(t, b, fedID)
	if fin.WorkloadObjectID == "" || fin.FederatedCredID == "" || len(fin.Passwords) != 0 {
		t.Fatalf("federated installation %+v", fin)
	}
	fsoftware := w.installedSoftware(t, fedID)
	fkv := w.installedVault(t, fin, fsoftware)
	names := map[string]bool{}
	pager := fkv.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, p := range page.Value {
			names[p.ID.Name()] = true
		}
	}
	if len(names) != 1 || !names[publisher.DefaultConfigName] {
		t.Fatalf("the federated vault holds %v", names)
	}
	fcfgSecret, err := fkv.GetSecret(ctx, publisher.DefaultConfigName, "", nil)
	must(t, err)
	var fcfg publisher.VaultConfig
	must(t, json.Unmarshal([]byte(*fcfgSecret.Value), &fcfg))
	fcred, err := publisher.InstallationCredential(fcfg, fsoftware,
		&publisher.InstallationCredentialOptions{ClientOptions: w.opts, ExchangeClient: w.issuerSrv.Client()})
	must(t, err)
	if _, err := fcred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}}); err != nil {
		t.Fatalf("the federated installation's sign-in: %v", err)
	}

	// Uninstall: the broker removes what it made.
	if c, doc := w.arm(t, w.custCred, "DELETE", appID, nil); c/100 != 2 {
		t.Fatalf("uninstall %d %v", c, doc)
	}
	waitFor(t, "deprovisioning", func() bool {
		in := w.installation(t, b, appID)
		return in != nil && in.Status == "deleted"
	})
	if _, err := w.graph.GetApplication(ctx, in.AppObjectID); !azclient.IsNotFound(err) {
		t.Errorf("the per-installation application survived: %v", err)
	}
}

// TestOfferPackageCannotRedirectDelivery: a customer chooses a package's
// parameters, so an output naming the vault can be steered by them; the
// broker delivers only into a vault of the installation's own managed
// resource group. Here the package's output is a parameter, and the
// customer points it at a vault of its own outside the managed group
// (where it could read the publisher's secret without the package's
// roles): the broker refuses, creates nothing, and says why in its log.
// A definition the broker has no offer for is ignored.
func TestOfferPackageCannotRedirectDelivery(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.offers = map[string]publisher.Offer{"steer": {CredentialMode: publisher.ModeSecret, DeliveryIdentity: deliveryIdentity}}
	b := w.broker(t, nil)
	var tmpl map[string]any
	must(t, json.Unmarshal(examples.SharedResourceBrokerTemplate, &tmpl))
	tmpl["parameters"].(map[string]any)["vaultOutput"] = map[string]any{"type": "string",
		"defaultValue": "[resourceId('Microsoft.KeyVault/vaults', parameters('vaultName'))]"}
	tmpl["outputs"].(map[string]any)[publisher.OutputVault] = map[string]any{"type": "string", "value": "[parameters('vaultOutput')]"}
	steer, err := json.Marshal(tmpl)
	must(t, err)
	w.publishPackage(t, "steer", steer)
	w.publishPackage(t, "unconfigured", examples.SharedResourceBrokerTemplate)

	sub := "/subscriptions/" + w.cust.SubscriptionID
	w.arm(t, w.custCred, "PUT", sub+"/resourceGroups/mine", map[string]any{"location": "westeurope"})
	mine := sub + "/resourceGroups/mine/providers/Microsoft.KeyVault/vaults/custkv-steer"
	if c, doc := w.arm(t, w.custCred, "PUT", mine, map[string]any{"location": "westeurope", "properties": map[string]any{
		"tenantId": w.cust.TenantID, "sku": map[string]any{"family": "A", "name": "standard"}}}); c/100 != 2 {
		t.Fatalf("the customer's vault %d %v", c, doc)
	}
	w.arm(t, w.custCred, "PUT", sub+"/resourceGroups/apps", map[string]any{"location": "westeurope"})
	appID := sub + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/steered"
	c, doc := w.arm(t, w.custCred, "PUT", appID, map[string]any{"location": "westeurope", "kind": "MarketPlace",
		"plan":       map[string]any{"name": "standard", "publisher": w.pub.Domain, "product": "steer", "version": "1.0.0"},
		"properties": map[string]any{"managedResourceGroupId": sub + "/resourceGroups/mrg-steered", "parameters": map[string]any{"vaultOutput": map[string]any{"value": mine}}}})
	if c/100 != 2 || doc["properties"].(map[string]any)["provisioningState"] != "Succeeded" {
		t.Fatalf("install %d %v", c, doc)
	}
	waitFor(t, "the broker's refusal", func() bool {
		return strings.Contains(w.logs.String(), "is not a vault of the managed resource group")
	})
	if in := w.installation(t, b, appID); in != nil && (in.Status == "registered" || in.AppObjectID != "") {
		t.Fatalf("registered a steered installation: %+v", in)
	}
	apps, err := w.graph.ListApplications(ctx, "")
	must(t, err)
	for _, a := range apps {
		if strings.HasPrefix(a.DisplayName, "managedapp-") {
			t.Fatalf("an application was created: %s", a.DisplayName)
		}
	}

	// No offer configured: the notification is acknowledged and ignored.
	other, _ := w.install(t, "unconfigured", "plain")
	waitFor(t, "the notification", func() bool {
		in := w.installation(t, b, other)
		return in != nil && !in.LastEventTime.IsZero()
	})
	if in := w.installation(t, b, other); in.Status != "seen" || in.AppObjectID != "" {
		t.Fatalf("an unconfigured offer's installation %+v", in)
	}
}

// httpStatus is the status of a Key Vault client's error, or 0.
func httpStatus(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
