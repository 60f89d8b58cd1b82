package arm_test

import (
	"strings"
	"testing"
)

// TestAPIVersionRefusals: a version the type does not take is refused as
// Azure refuses it — Microsoft.Resources' own types with
// InvalidApiVersionParameter, a provider's with NoRegisteredProviderFound
// naming the location (only to the resource's own tenant), the type, its
// versions and locations — and every version a type lists is taken.
func TestAPIVersionRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/ver-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "northeurope"}), 201, "")
		vault := rg + "/providers/Microsoft.KeyVault/vaults/kv-versions"
		e.want(e.call(admin, "PUT", vault, vaultBody(tid, nil)), 201, "") // in westeurope

		r := e.raw(admin, "GET", sub(e)+"/resourceGroups?api-version=2022-04-01", nil)
		e.want(r, 400, "InvalidApiVersionParameter")
		if !strings.HasPrefix(r.message(), "The api-version '2022-04-01' is invalid. The supported versions are '2025-04-01,2024-08-01,2024-06-01-preview,") ||
			!strings.HasSuffix(r.message(), ",2013-03-01,2014-02-26,2014-04'.") {
			t.Errorf("message %q", r.message())
		}
		e.want(e.raw(admin, "GET", sub(e)+"?api-version=2022-04-01", nil), 400, "InvalidApiVersionParameter")
		e.want(e.raw(admin, "GET", sub(e)+"/providers?api-version=2099-01-01", nil), 400, "InvalidApiVersionParameter")

		r = e.raw(admin, "GET", vault+"?api-version=2099-01-01", nil)
		e.want(r, 400, "NoRegisteredProviderFound")
		const want = "No registered resource provider found for location 'westeurope' and API version '2099-01-01' for type 'vaults'. " +
			"The supported api-versions are '2024-11-01, 2023-07-01, 2023-02-01, 2022-11-01, 2022-07-01, 2021-10-01, 2019-09-01, 2018-02-14, 2016-10-01, 2015-06-01'. " +
			"The supported locations are 'eastus, eastus2, "
		if !strings.HasPrefix(r.message(), want) || !strings.HasSuffix(r.message(), ", uaecentral, brazilsoutheast'.") {
			t.Errorf("message %q", r.message())
		}
		// A new resource routes by its group; another tenant learns no location.
		r = e.raw(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-new?api-version=2022-04-01", vaultBody(tid, nil))
		if r.status != 400 || !strings.HasPrefix(r.message(), "No registered resource provider found for location 'northeurope' and API version '2022-04-01' for type 'vaults'.") {
			t.Errorf("new vault: %d %s", r.status, r.raw)
		}
		r = e.raw(e.adminToken(e.fabrikam), "GET", vault+"?api-version=2099-01-01", nil)
		if r.status != 400 || !strings.HasPrefix(r.message(), "No registered resource provider found for location '' and") {
			t.Errorf("another tenant: %d %s", r.status, r.raw)
		}
		r = e.raw(admin, "GET", rg+"/providers/Microsoft.Authorization/roleAssignments?api-version=2021-04-01", nil)
		if r.status != 400 || r.code() != "NoRegisteredProviderFound" || !strings.Contains(r.message(), "for type 'roleAssignments'") ||
			!strings.HasSuffix(r.message(), "The supported locations are ''.") {
			t.Errorf("role assignments: %d %s", r.status, r.raw)
		}
		// Locks take locks' versions (az sends 2016-09-01, armlocks
		// 2020-05-01), not Microsoft.Resources'.
		for _, v := range []string{"2020-05-01", "2017-04-01", "2016-09-01", "2015-01-01"} {
			e.want(e.raw(admin, "GET", rg+"/providers/Microsoft.Authorization/locks?api-version="+v, nil), 200, "")
		}
		r = e.raw(admin, "GET", rg+"/providers/Microsoft.Authorization/locks?api-version=2021-04-01", nil)
		if r.status != 400 || r.code() != "NoRegisteredProviderFound" || !strings.Contains(r.message(), "for type 'locks'") {
			t.Errorf("locks: %d %s", r.status, r.raw)
		}
		// A child type and a POST action take their type's versions.
		r = e.raw(admin, "POST", rg+"/providers/Microsoft.ServiceBus/namespaces/ns/authorizationRules/rule/listKeys?api-version=2023-07-01", nil)
		if r.status != 400 || !strings.Contains(r.message(), "for type 'namespaces/authorizationRules'") {
			t.Errorf("listKeys: %d %s", r.status, r.raw)
		}
		r = e.raw(admin, "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id/federatedIdentityCredentials?api-version=2018-11-30", nil)
		if r.status != 400 || !strings.Contains(r.message(), "for type 'userAssignedIdentities/federatedIdentityCredentials'") {
			t.Errorf("federated credentials: %d %s", r.status, r.raw)
		}

		// Every listed version is taken, in any letter case.
		for _, v := range []string{"2024-11-01", "2023-07-01", "2022-07-01", "2019-09-01", "2015-06-01"} {
			e.want(e.raw(admin, "GET", vault+"?api-version="+v, nil), 200, "")
		}
		e.want(e.raw(admin, "GET", rg+"/providers/Microsoft.ServiceBus/namespaces?api-version=2022-01-01-PREVIEW", nil), 200, "")
		for _, v := range []string{"2019-11-01", "2022-12-01", "2021-04-01", "2022-09-01", "2015-11-01", "2019-05-01"} {
			e.want(e.raw(admin, "GET", sub(e)+"?api-version="+v, nil), 200, "")
		}
	})
}
