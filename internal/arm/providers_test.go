package arm_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// responseError is err as azcore's ResponseError, or a test failure.
func responseError(t *testing.T, err error, status int, code string) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("got %v, want %d %s", err, status, code)
	}
	return re
}

// values are the strings the SDK's pointers point to.
func values(ps []*string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

// TestProvidersSDK: the provider registry through armresources'
// ProvidersClient (Get, List, Register, Unregister, at a subscription and
// at the tenant) and armsubscriptions' ListLocations, unmodified.
func TestProvidersSDK(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		subID := e.contoso.Tenant.SubscriptionID
		cred := e.credential(e.contoso.Tenant.ID, e.contoso.Admin.AppID, e.contoso.AdminSecret.SecretText)
		providers, err := armresources.NewProvidersClient(subID, cred, e.armOptions())
		must(t, err)

		// Get: the namespace as Azure spells it, whatever the request's case.
		got, err := providers.Get(ctx, "microsoft.keyvault", nil)
		must(t, err)
		p := got.Provider
		if *p.Namespace != "Microsoft.KeyVault" || *p.ID != "/subscriptions/"+subID+"/providers/Microsoft.KeyVault" ||
			*p.RegistrationState != "Registered" || *p.RegistrationPolicy != "RegistrationRequired" || len(p.ResourceTypes) != 5 ||
			*p.ResourceTypes[1].ResourceType != "checkNameAvailability" || *p.ResourceTypes[2].ResourceType != "deletedVaults" ||
			*p.ResourceTypes[3].ResourceType != "locations/deletedVaults" || *p.ResourceTypes[4].ResourceType != "vaults/secrets" ||
			*p.ResourceTypes[4].DefaultAPIVersion != "2024-11-01" {
			t.Fatalf("Microsoft.KeyVault: %+v", p)
		}
		vaults := p.ResourceTypes[0]
		if *vaults.ResourceType != "vaults" || !slices.Contains(values(vaults.APIVersions), "2024-11-01") ||
			!slices.Contains(values(vaults.Locations), "West Europe") || *vaults.DefaultAPIVersion != "2024-11-01" ||
			*vaults.Capabilities != "SupportsTags, SupportsLocation" {
			t.Fatalf("vaults: %+v", vaults)
		}
		_, err = providers.Get(ctx, "Microsoft.Nope", nil)
		responseError(t, err, http.StatusNotFound, "InvalidResourceNamespace")

		// List: the door's own namespaces first, free of registration.
		states := map[string]string{}
		pager := providers.NewListPager(&armresources.ProvidersClientListOptions{Expand: to.Ptr("resourceTypes/aliases")})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			must(t, err)
			for _, p := range page.Value {
				states[*p.Namespace] = *p.RegistrationState + "/" + *p.RegistrationPolicy
			}
		}
		for ns, want := range map[string]string{
			"Microsoft.Resources": "Registered/RegistrationFree", "Microsoft.Authorization": "Registered/RegistrationFree",
			"TenantBridge.Authorization": "Registered/RegistrationFree", "Microsoft.KeyVault": "Registered/RegistrationRequired",
			"Microsoft.ServiceBus": "Registered/RegistrationRequired", "Microsoft.ManagedIdentity": "Registered/RegistrationRequired",
			"Microsoft.Solutions": "Registered/RegistrationRequired",
		} {
			if states[ns] != want {
				t.Errorf("%s: %q, want %q", ns, states[ns], want)
			}
		}

		// At the tenant: no subscription, no registration state.
		tp, err := providers.GetAtTenantScope(ctx, "Microsoft.ServiceBus", nil)
		must(t, err)
		if *tp.ID != "/providers/Microsoft.ServiceBus" || tp.RegistrationState != nil || len(tp.ResourceTypes) != 5 {
			t.Fatalf("tenant Microsoft.ServiceBus: %+v", tp.Provider)
		}
		n := 0
		for tpager := providers.NewListAtTenantScopePager(nil); tpager.More(); {
			page, err := tpager.NextPage(ctx)
			must(t, err)
			n += len(page.Value)
		}
		if n != len(states) {
			t.Errorf("%d providers at the tenant, %d at the subscription", n, len(states))
		}

		// Unregister, and every request to the namespace is
		// MissingSubscriptionRegistration until it is registered again.
		un, err := providers.Unregister(ctx, "Microsoft.ServiceBus", nil)
		must(t, err)
		if *un.RegistrationState != "NotRegistered" {
			t.Fatalf("after unregister: %s", *un.RegistrationState)
		}
		got, err = providers.Get(ctx, "Microsoft.ServiceBus", nil)
		must(t, err)
		if *got.RegistrationState != "NotRegistered" {
			t.Fatalf("get after unregister: %s", *got.RegistrationState)
		}
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/reg-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		ns := rg + "/providers/Microsoft.ServiceBus/namespaces/reg-ns-1"
		r := e.call(admin, "PUT", ns, map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Standard"}})
		e.want(r, 409, "MissingSubscriptionRegistration")
		if r.message() != "The subscription is not registered to use namespace 'Microsoft.ServiceBus'. See https://aka.ms/rps-not-found for how to register subscriptions." {
			t.Errorf("message %q", r.message())
		}
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.ServiceBus/namespaces", nil), 409, "MissingSubscriptionRegistration")
		// Another tenant's subscription is its own: fabrikam's stays registered.
		fab := e.adminToken(e.fabrikam)
		fr := e.call(fab, "GET", "/subscriptions/"+e.fabrikam.Tenant.SubscriptionID+"/providers/Microsoft.ServiceBus", nil)
		if fr.status != 200 || fr.doc["registrationState"] != "Registered" {
			t.Fatalf("fabrikam's Microsoft.ServiceBus: %d %s", fr.status, fr.raw)
		}
		reg, err := providers.Register(ctx, "Microsoft.ServiceBus", nil)
		must(t, err)
		if *reg.RegistrationState != "Registered" {
			t.Fatalf("after register: %s", *reg.RegistrationState)
		}
		e.want(e.call(admin, "PUT", ns, map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Standard"}}), 201, "")

		// A namespace is not unregistered while the subscription holds
		// resources of it; once they are gone it is, and azcore's
		// registration policy registers it again when a request meets
		// MissingSubscriptionRegistration.
		_, err = providers.Unregister(ctx, "Microsoft.ServiceBus", nil)
		responseError(t, err, http.StatusConflict, "Conflict")
		e.want(e.call(admin, "DELETE", ns, nil), 200, "")
		_, err = providers.Unregister(ctx, "Microsoft.ServiceBus", nil)
		must(t, err)
		generic, err := armresources.NewClient(subID, cred, e.armOptions())
		must(t, err)
		poller, err := generic.BeginCreateOrUpdateByID(ctx, rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/reg-id", "2023-01-31",
			armresources.GenericResource{Location: to.Ptr("westeurope")}, nil)
		must(t, err)
		_, err = poller.PollUntilDone(ctx, fastPoll)
		must(t, err)
		_, err = providers.Unregister(ctx, "Microsoft.ManagedIdentity", nil)
		responseError(t, err, http.StatusConflict, "Conflict")
		spoller, err := generic.BeginCreateOrUpdateByID(ctx, rg+"/providers/Microsoft.ServiceBus/namespaces/reg-ns-2", "2021-11-01",
			armresources.GenericResource{Location: to.Ptr("westeurope"), SKU: &armresources.SKU{Name: to.Ptr("Standard")}}, nil)
		must(t, err)
		_, err = spoller.PollUntilDone(ctx, fastPoll)
		must(t, err)
		got, err = providers.Get(ctx, "Microsoft.ServiceBus", nil)
		must(t, err)
		if *got.RegistrationState != "Registered" {
			t.Fatalf("after the SDK's registration: %s", *got.RegistrationState)
		}

		// The door's own namespaces take no registration and stay.
		un, err = providers.Unregister(ctx, "Microsoft.Resources", nil)
		must(t, err)
		if *un.RegistrationState != "Registered" {
			t.Fatalf("Microsoft.Resources after unregister: %s", *un.RegistrationState)
		}
		_, err = providers.Register(ctx, "Microsoft.Nope", nil)
		responseError(t, err, http.StatusNotFound, "InvalidResourceNamespace")

		// Locations.
		subs, err := armsubscriptions.NewClient(cred, e.armOptions())
		must(t, err)
		var names []string
		for lp := subs.NewListLocationsPager(subID, nil); lp.More(); {
			page, err := lp.NextPage(ctx)
			must(t, err)
			for _, l := range page.Value {
				names = append(names, *l.Name)
				if *l.Name == "westeurope" && (*l.DisplayName != "West Europe" || *l.RegionalDisplayName != "(Europe) West Europe" ||
					*l.ID != "/subscriptions/"+subID+"/locations/westeurope" || *l.Type != armsubscriptions.LocationTypeRegion ||
					*l.Metadata.RegionCategory != armsubscriptions.RegionCategoryRecommended || *l.Metadata.GeographyGroup != "Europe") {
					t.Errorf("westeurope: %+v %+v", l, l.Metadata)
				}
			}
		}
		if len(names) < 40 || names[0] != "eastus" || !slices.Contains(names, "westeurope") || !slices.Contains(names, "northeurope") {
			t.Errorf("locations %v", names)
		}
	})
}

// TestProvidersRefusals: reading the registry takes what reading the
// subscription takes; registering takes {ns}/register/action; another
// tenant's token is refused; only GET and POST are served.
func TestProvidersRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		reader := e.newApp(e.contoso.Tenant.ID, "provider-reader", false)
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": sub(e) + "/providers/Microsoft.Authorization/roleDefinitions/" + rbac.RoleReader, "principalId": reader.sp.ID}}), 201, "")
		rtok := e.armToken(e.contoso.Tenant.ID, reader.app.AppID, reader.secret)
		e.want(e.call(rtok, "GET", sub(e)+"/providers/Microsoft.KeyVault", nil), 200, "")
		e.want(e.call(rtok, "GET", sub(e)+"/locations", nil), 200, "")
		r := e.call(rtok, "POST", sub(e)+"/providers/Microsoft.KeyVault/register", nil)
		e.want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.message(), "'Microsoft.KeyVault/register/action'") {
			t.Errorf("refusal %q", r.message())
		}
		nobody := e.newApp(e.contoso.Tenant.ID, "provider-nobody", false)
		ntok := e.armToken(e.contoso.Tenant.ID, nobody.app.AppID, nobody.secret)
		e.want(e.call(ntok, "GET", sub(e)+"/providers", nil), 403, "AuthorizationFailed")
		e.want(e.call(ntok, "GET", sub(e)+"/locations", nil), 403, "AuthorizationFailed")
		// The tenant's own registry needs no role: it names no resource.
		e.want(e.call(ntok, "GET", "/providers/Microsoft.KeyVault", nil), 200, "")

		fab := e.adminToken(e.fabrikam)
		for _, c := range []struct{ method, path string }{
			{"GET", sub(e) + "/providers"}, {"GET", sub(e) + "/providers/Microsoft.KeyVault"},
			{"POST", sub(e) + "/providers/Microsoft.KeyVault/unregister"}, {"GET", sub(e) + "/locations"},
		} {
			e.want(e.call(fab, c.method, c.path, nil), 401, "InvalidAuthenticationTokenTenant")
		}
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.KeyVault", nil), 405, "MethodNotAllowed")
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.KeyVault/register", nil), 405, "MethodNotAllowed")
		e.want(e.call(admin, "POST", "/subscriptions/"+uuid.NewString()+"/providers/Microsoft.KeyVault/register", nil), 404, "SubscriptionNotFound")
	})
}
