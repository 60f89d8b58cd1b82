package arm_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maSpec is a deployment spec with one of each resource.
func maSpec(publisherPrincipal string) map[string]any {
	return map[string]any{
		"vaults": []any{map[string]any{"name": "kv{uniqueSuffix}"}},
		"serviceBusNamespaces": []any{map[string]any{"name": "sb-{uniqueSuffix}", "queues": []any{
			map[string]any{"name": "commands", "properties": map[string]any{"maxDeliveryCount": 5, "lockDuration": "PT30S"}},
			map[string]any{"name": "status"}}}},
		"userAssignedIdentities": []any{map[string]any{"name": "publisher-access", "federatedCredentials": []any{
			map[string]any{"name": "publisher", "issuer": "https://login.microsoftonline.com/" + "00000000-0000-0000-0000-000000000001" + "/v2.0", "subject": "app-{uniqueSuffix}"}}}},
		"roleAssignments": []any{
			map[string]any{"role": "Reader", "principal": "applicationIdentity"},
			map[string]any{"role": "Key Vault Secrets Officer", "principal": "applicationIdentity", "scope": "vault:kv{uniqueSuffix}"},
			map[string]any{"role": rbac.RoleServiceBusDataSender, "principal": "identity:publisher-access", "scope": "queue:sb-{uniqueSuffix}/commands"},
			map[string]any{"role": "Key Vault Secrets User", "principal": "publisher:" + publisherPrincipal, "scope": "vault:kv{uniqueSuffix}"},
		},
		"registration": map[string]any{"endpoint": "https://broker.example/register", "credentialMode": "federated", "vault": "kv{uniqueSuffix}",
			"bootstrapSecret": "https://pubkv.vault.azure.net/secrets/bootstrap"},
	}
}

func defBody(lock string, auths []map[string]string, endpoint string, spec any) map[string]any {
	props := map[string]any{"lockLevel": lock, "displayName": "Broker app", "authorizations": auths, "deploymentSpec": spec}
	if endpoint != "" {
		props["notificationPolicy"] = map[string]any{"notificationEndpoints": []any{map[string]any{"uri": endpoint}}}
	}
	return map[string]any{"location": "westeurope", "properties": props}
}

type notif struct {
	EventType               string `json:"eventType"`
	ApplicationID           string `json:"applicationId"`
	EventTime               string `json:"eventTime"`
	ProvisioningState       string `json:"provisioningState"`
	ApplicationDefinitionID string `json:"applicationDefinitionId"`
	Plan                    *struct {
		Publisher, Product, Name, Version string
	} `json:"plan"`
	BillingDetails *struct {
		ResourceUsageID string `json:"resourceUsageId"`
	} `json:"billingDetails"`
	Error *struct {
		Code    string
		Message string
		Details []struct{ Code, Message string }
	} `json:"error"`
}

// outbox lists the publisher's lifecycle notifications for a definition,
// oldest first (not the registration calls: see registrations).
func (e *env) outbox(publisher, defID string) ([]store.OutboxMessage, []notif) {
	e.t.Helper()
	all, err := e.st.ListOutbox(e.ctx, store.OutboxQuery{TenantID: publisher, Topic: defID})
	must(e.t, err)
	var ms []store.OutboxMessage
	for _, m := range all {
		if m.AuthRef == "" {
			ms = append(ms, m)
		}
	}
	var ns []notif
	for i := len(ms) - 1; i >= 0; i-- {
		var n notif
		must(e.t, json.Unmarshal(ms[i].Body, &n))
		ns = append(ns, n)
	}
	out := make([]store.OutboxMessage, 0, len(ms))
	for i := len(ms) - 1; i >= 0; i-- {
		out = append(out, ms[i])
	}
	return out, ns
}

// registrations lists the publisher's registration calls for a
// definition (the messages with an AuthRef), oldest first.
func (e *env) registrations(publisher, defID string) []store.OutboxMessage {
	e.t.Helper()
	all, err := e.st.ListOutbox(e.ctx, store.OutboxQuery{TenantID: publisher, Topic: defID})
	must(e.t, err)
	var out []store.OutboxMessage
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].AuthRef != "" {
			out = append(out, all[i])
		}
	}
	return out
}

// createVault makes a vault of a tenant directly in the store.
func (e *env) createVault(tenantID, name string) {
	e.t.Helper()
	must(e.t, e.st.CreateVault(e.ctx, store.Vault{TenantID: tenantID, Name: name, Location: "westeurope", SoftDeleteRetentionDays: 90,
		EnableSoftDelete: true, ResourceID: "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/kv/providers/Microsoft.KeyVault/vaults/" + name}))
}

func states(ns []notif) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.EventType+"/"+n.ProvisioningState)
	}
	return strings.Join(s, ",")
}

func TestAppDefinitionsCRUDAndValidation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		pub := e.newApp(e.contoso.Tenant.ID, "publisher-ops", false)
		rg := sub(e) + "/resourceGroups/defs"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		def := rg + "/providers/Microsoft.Solutions/applicationDefinitions/broker"
		auths := []map[string]string{{"principalId": pub.sp.ID, "roleDefinitionId": rbac.RoleContributor}}

		r := e.call(admin, "PUT", def, defBody("ReadOnly", auths, "https://hooks.example/ma?sig=s3cret", maSpec(pub.sp.ID)))
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		if r.doc["type"] != "Microsoft.Solutions/applicationDefinitions" || props["lockLevel"] != "ReadOnly" || props["deploymentSpec"] == nil {
			t.Fatalf("definition %s", r.raw)
		}
		e.want(e.call(admin, "PUT", def, defBody("CanNotDelete", auths, "", nil)), 200, "")
		r = e.call(admin, "GET", def, nil)
		e.want(r, 200, "")
		if props, _ := r.doc["properties"].(map[string]any); props["lockLevel"] != "CanNotDelete" {
			t.Errorf("updated definition %s", r.raw)
		}
		r = e.call(admin, "GET", rg+"/providers/Microsoft.Solutions/applicationDefinitions", nil)
		e.want(r, 200, "")
		if v, _ := r.doc["value"].([]any); len(v) != 1 {
			t.Errorf("list %s", r.raw)
		}
		e.want(e.call(admin, "GET", def+"/notifications", nil), 200, "")

		// Validation: the path of the bad field is named.
		bad := []struct {
			name string
			body map[string]any
			msg  string
		}{
			{"lock", defBody("Sometimes", auths, "", nil), "lockLevel"},
			{"role", defBody("None", []map[string]string{{"principalId": pub.sp.ID, "roleDefinitionId": "nope"}}, "", nil), "authorizations[0].roleDefinitionId"},
			{"principal", defBody("None", []map[string]string{{"principalId": "11111111-1111-1111-1111-111111111111", "roleDefinitionId": rbac.RoleReader}}, "", nil), "does not exist"},
			{"endpoint", defBody("None", auths, "ftp://x", nil), "notificationEndpoints[0].uri"},
			{"vault name", defBody("None", auths, "", map[string]any{"vaults": []any{map[string]any{"name": "-bad{uniqueSuffix}"}}}), "deploymentSpec.vaults[0].name"},
			{"unknown field", defBody("None", auths, "", map[string]any{"vault": []any{}}), "unknown field"},
			{"queue", defBody("None", auths, "", map[string]any{"serviceBusNamespaces": []any{map[string]any{"name": "ns-{uniqueSuffix}", "queues": []any{map[string]any{"name": "q", "properties": map[string]any{"lockDuration": "PT10M"}}}}}}), "serviceBusNamespaces[0].queues[0]"},
			{"sessions on Basic", defBody("None", auths, "", map[string]any{"serviceBusNamespaces": []any{map[string]any{"name": "ns-{uniqueSuffix}", "sku": "Basic", "queues": []any{map[string]any{"name": "q", "properties": map[string]any{"requiresSession": true}}}}}}), "Basic tier"},
			{"message size on Standard", defBody("None", auths, "", map[string]any{"serviceBusNamespaces": []any{map[string]any{"name": "ns-{uniqueSuffix}", "queues": []any{map[string]any{"name": "q", "properties": map[string]any{"maxMessageSizeInKilobytes": 1024}}}}}}), "Premium namespace"},
			{"scope", defBody("None", auths, "", map[string]any{"roleAssignments": []any{map[string]any{"role": "Reader", "principal": "applicationIdentity", "scope": "vault:missing"}}}), "roleAssignments[0].scope"},
			{"ra principal", defBody("None", auths, "", map[string]any{"roleAssignments": []any{map[string]any{"role": "Reader", "principal": "identity:ghost"}}}), "roleAssignments[0].principal"},
			{"registration", defBody("None", auths, "", map[string]any{"registration": map[string]any{"endpoint": "https://x/r", "credentialMode": "password"}}), "registration.credentialMode"},
			{"no bootstrap secret", defBody("None", auths, "", map[string]any{"registration": map[string]any{"endpoint": "https://x/r", "credentialMode": "federated"}}), "registration.bootstrapSecret"},
			{"bootstrap secret URI", defBody("None", auths, "", map[string]any{"registration": map[string]any{"endpoint": "https://x/r", "credentialMode": "federated",
				"bootstrapSecret": "https://pubkv.example.com/keys/bootstrap"}}), "registration.bootstrapSecret"},
			{"bootstrap secret query", defBody("None", auths, "", map[string]any{"registration": map[string]any{"endpoint": "https://x/r", "credentialMode": "federated",
				"bootstrapSecret": "https://pubkv.vault.azure.net/secrets/bootstrap?x=1"}}), "registration.bootstrapSecret"},
			{"fic", defBody("None", auths, "", map[string]any{"userAssignedIdentities": []any{map[string]any{"name": "id", "federatedCredentials": []any{map[string]any{"name": "fic1", "issuer": "http://insecure", "subject": "s"}}}}}), "federatedCredentials[0].issuer"},
		}
		for _, c := range bad {
			r := e.call(admin, "PUT", rg+"/providers/Microsoft.Solutions/applicationDefinitions/bad", c.body)
			if r.status != 400 || !strings.Contains(r.message(), c.msg) {
				t.Errorf("%s: got %d %s, want 400 mentioning %q", c.name, r.status, r.raw, c.msg)
			}
		}
		e.want(e.call(admin, "DELETE", def, nil), 200, "")
		e.want(e.call(admin, "GET", def, nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "DELETE", def, nil), 204, "")
	})
}

func TestManagedApplicationServiceCatalog(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tid := e.contoso.Tenant.ID
		admin := e.adminToken(e.contoso)
		// The publisher's principal is authorized through a group.
		pub := e.newApp(tid, "publisher-ops", false)
		g, err := e.dir.CreateGroup(e.ctx, tid, directory.Group{DisplayName: "ops", MailNickname: "ops", SecurityEnabled: true})
		must(t, err)
		must(t, e.dir.AddMember(e.ctx, tid, g.ID, pub.sp.ID))
		other := e.newApp(tid, "someone-else", false)
		must(t, e.st.CreateRoleAssignment(e.ctx, store.RoleAssignment{TenantID: tid, ID: "5e4d3c2b-1a09-4876-9543-210fedcba987", Scope: sub(e),
			RoleDefinitionID: rbac.RoleOwner, PrincipalID: other.sp.ID, PrincipalType: store.PrincipalServicePrincipal, PrincipalTenantID: tid}))

		defRG := sub(e) + "/resourceGroups/defs"
		appRG := sub(e) + "/resourceGroups/apps"
		e.want(e.call(admin, "PUT", defRG, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", appRG, map[string]any{"location": "westeurope"}), 201, "")
		def := defRG + "/providers/Microsoft.Solutions/applicationDefinitions/broker"
		e.want(e.call(admin, "PUT", def, defBody("ReadOnly", []map[string]string{{"principalId": g.ID, "roleDefinitionId": rbac.RoleContributor}},
			"https://hooks.example/ma?sig=s3cret", maSpec(pub.sp.ID))), 201, "")

		appID := appRG + "/providers/Microsoft.Solutions/applications/broker1"
		mrg := sub(e) + "/resourceGroups/mrg-broker1"
		body := map[string]any{"location": "westeurope", "kind": "ServiceCatalog", "identity": map[string]any{"type": "SystemAssigned"},
			"properties": map[string]any{"applicationDefinitionId": def, "managedResourceGroupId": mrg, "parameters": map[string]any{"x": map[string]any{"value": 1}}}}
		e.createVault(tid, "pubkv") // the publisher's vault of the registration's bootstrap secret
		before := e.notified.Load()
		r := e.call(admin, "PUT", appID, body)
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		ident, _ := r.doc["identity"].(map[string]any)
		if props["provisioningState"] != "Succeeded" || props["managedResourceGroupId"] != mrg || ident["principalId"] == nil {
			t.Fatalf("installed %s", r.raw)
		}
		if e.notified.Load() == before {
			t.Error("Notify was not called")
		}
		// The managed resource group says who manages it; other groups do not.
		if g := e.call(admin, "GET", mrg, nil); g.doc["managedBy"] != appID {
			t.Errorf("managed resource group %s", g.raw)
		}
		if g := e.call(admin, "GET", appRG, nil); g.doc["managedBy"] != nil {
			t.Errorf("the application's own group %s", g.raw)
		}
		principal := ident["principalId"].(string)
		if sp, err := e.dir.GetServicePrincipal(e.ctx, tid, principal); err != nil || !sp.IsManagedIdentity() {
			t.Errorf("application identity %v %v", sp, err)
		}

		// Every spec resource exists.
		sfx := suffixOf(t, e, admin, mrg)
		for _, id := range []string{
			mrg + "/providers/Microsoft.KeyVault/vaults/kv" + sfx,
			mrg + "/providers/Microsoft.ServiceBus/namespaces/sb-" + sfx,
			mrg + "/providers/Microsoft.ServiceBus/namespaces/sb-" + sfx + "/queues/commands",
			mrg + "/providers/Microsoft.ServiceBus/namespaces/sb-" + sfx + "/queues/status",
			mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/publisher-access",
			mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/publisher-access/federatedIdentityCredentials/publisher",
		} {
			e.want(e.call(admin, "GET", id, nil), 200, "")
		}
		// The spec ran as the template it stands for: the managed group's
		// deployment named after the application, one operation per
		// resource but the publisher's grant (which the platform makes).
		dep := e.call(admin, "GET", mrg+"/providers/Microsoft.Resources/deployments/broker1", nil)
		e.want(dep, 200, "")
		if dp, _ := dep.doc["properties"].(map[string]any); dp["provisioningState"] != "Succeeded" {
			t.Fatalf("the spec's deployment %s", dep.raw)
		}
		ops := e.call(admin, "GET", mrg+"/providers/Microsoft.Resources/deployments/broker1/operations", nil)
		e.want(ops, 200, "")
		if n := len(ops.doc["value"].([]any)); n != 9 { // vault, namespace, 2 queues, identity, credential, 3 role assignments
			t.Fatalf("%d operations: %s", n, ops.raw)
		}
		q := e.call(admin, "GET", mrg+"/providers/Microsoft.ServiceBus/namespaces/sb-"+sfx+"/queues/commands", nil)
		if qp, _ := q.doc["properties"].(map[string]any); qp["maxDeliveryCount"] != float64(5) || qp["lockDuration"] != "PT30S" {
			t.Errorf("queue %s", q.raw)
		}
		ras, err := e.st.ListRoleAssignments(e.ctx, store.RoleAssignmentQuery{TenantID: tid, ScopePrefix: mrg})
		must(t, err)
		if len(ras) != 5 { // the publisher's group + 4 of the spec
			t.Errorf("role assignments in the managed group: %+v", ras)
		}
		das, err := e.st.ListDenyAssignments(e.ctx, store.DenyAssignmentQuery{TenantID: tid, Scopes: []string{mrg}})
		must(t, err)
		if len(das) != 1 || len(das[0].ExcludePrincipals) != 2 {
			t.Fatalf("deny assignments %+v", das)
		}
		r = e.call(admin, "GET", mrg+"/providers/Microsoft.Authorization/denyAssignments", nil)
		e.want(r, 200, "")

		// The customer's Owner cannot change the managed group; the
		// publisher's authorized principal (through its group) can.
		vault2 := mrg + "/providers/Microsoft.KeyVault/vaults/kv2" + sfx
		vbody := map[string]any{"location": "westeurope", "properties": map[string]any{"tenantId": tid, "sku": map[string]any{"family": "A", "name": "standard"}}}
		e.want(e.call(admin, "PUT", vault2, vbody), 403, "DenyAssignmentAuthorizationFailed")
		e.want(e.call(admin, "DELETE", mrg, nil), 403, "DenyAssignmentAuthorizationFailed")
		e.want(e.call(admin, "GET", mrg, nil), 200, "")
		pubTok := e.armToken(tid, pub.app.AppID, pub.secret)
		e.want(e.call(pubTok, "PUT", vault2, vbody), 201, "")
		e.want(e.call(pubTok, "DELETE", vault2, nil), 200, "")

		// Installing again is a no-op.
		r = e.call(admin, "PUT", appID, body)
		e.want(r, 200, "")
		if ident2, _ := r.doc["identity"].(map[string]any); ident2["principalId"] != principal {
			t.Errorf("second install %s", r.raw)
		}

		// Notifications: Accepted then Succeeded, in order, to {endpoint}/resource?sig=…
		msgs, ns := e.outbox(tid, def)
		if states(ns) != "PUT/Accepted,PUT/Succeeded" {
			t.Fatalf("notifications %s", states(ns))
		}
		if u, _ := url.Parse(msgs[0].URL); u.Path != "/ma/resource" || u.Query().Get("sig") != "s3cret" || msgs[0].Key != strings.ToLower(appID) || msgs[0].ContentType != "application/json" {
			t.Errorf("message %+v", msgs[0])
		}
		if ns[1].ApplicationDefinitionID != def || ns[1].ApplicationID != appID || ns[1].Plan != nil || !strings.HasSuffix(ns[1].EventTime, "Z") {
			t.Errorf("payload %+v", ns[1])
		}
		log := e.call(admin, "GET", def+"/notifications", nil)
		e.want(log, 200, "")
		if v, _ := log.doc["value"].([]any); len(v) != 3 || strings.Contains(string(log.raw), "s3cret") { // + the registration call
			t.Errorf("delivery log %s", log.raw)
		}

		// listTokens: the publisher's principal, not the customer's Owner.
		r = e.call(pubTok, "POST", appID+"/listTokens", map[string]any{"authorizationAudience": "https://management.azure.com/"})
		e.want(r, 200, "")
		vals, _ := r.doc["value"].([]any)
		if len(vals) != 1 {
			t.Fatalf("listTokens %s", r.raw)
		}
		tok := vals[0].(map[string]any)
		if tok["token_type"] != "Bearer" || tok["resourceId"] != appID || tok["access_token"] == "" || tok["expires_on"] == "" {
			t.Errorf("token %s", r.raw)
		}
		// Both spellings, the same values (the article's and the REST spec's).
		for snake, camel := range map[string]string{"access_token": "accessToken", "expires_in": "expiresIn", "expires_on": "expiresOn",
			"not_before": "notBefore", "token_type": "tokenType"} {
			if tok[snake] == nil || tok[snake] != tok[camel] {
				t.Errorf("%s %v, %s %v", snake, tok[snake], camel, tok[camel])
			}
		}
		// The token is the application identity's: it reads the managed
		// group (Reader from the spec) through ARM.
		miTok := tok["access_token"].(string)
		e.want(e.call(miTok, "GET", mrg, nil), 200, "")
		e.want(e.call(miTok, "GET", defRG, nil), 403, "AuthorizationFailed")
		// A user-assigned identity of the managed group.
		uami := mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/publisher-access"
		r = e.call(pubTok, "POST", appID+"/listTokens", map[string]any{"userAssignedIdentities": []string{uami}})
		e.want(r, 200, "")
		if vals, _ := r.doc["value"].([]any); len(vals) != 1 || vals[0].(map[string]any)["resourceId"] != uami {
			t.Errorf("listTokens uami %s", r.raw)
		}
		e.want(e.call(pubTok, "POST", appID+"/listTokens", map[string]any{"userAssignedIdentities": []string{defRG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"}}), 400, "BadRequest")
		e.want(e.call(admin, "POST", appID+"/listTokens", map[string]any{}), 403, "AuthorizationFailed")
		otherTok := e.armToken(tid, other.app.AppID, other.secret)
		e.want(e.call(otherTok, "POST", appID+"/listTokens", map[string]any{}), 403, "AuthorizationFailed")
		// The publisher's authorized principal reads the application (as
		// Microsoft's perms.sh does before listTokens), with its managed
		// group and outputs; a principal the authorizations do not name
		// gets what any non-reader gets.
		r = e.call(pubTok, "GET", appID, nil)
		e.want(r, 200, "")
		if p, _ := r.doc["properties"].(map[string]any); p["managedResourceGroupId"] != mrg {
			t.Errorf("the publisher's GET %s", r.raw)
		}
		stranger := e.newApp(tid, "stranger", false)
		strangerTok := e.armToken(tid, stranger.app.AppID, stranger.secret)
		e.want(e.call(strangerTok, "GET", appID, nil), 403, "AuthorizationFailed")
		e.want(e.call(strangerTok, "GET", appRG+"/providers/Microsoft.Solutions/applications/nosuchapp", nil), 403, "AuthorizationFailed")

		// A second installation whose spec fails: the vault name is taken.
		def2 := defRG + "/providers/Microsoft.Solutions/applicationDefinitions/fixed"
		e.want(e.call(admin, "PUT", def2, defBody("CanNotDelete", nil, "https://hooks.example/ma2",
			map[string]any{"vaults": []any{map[string]any{"name": "kv" + sfx}}})), 201, "")
		app2 := appRG + "/providers/Microsoft.Solutions/applications/fixed1"
		r = e.call(admin, "PUT", app2, map[string]any{"location": "westeurope", "kind": "ServiceCatalog",
			"properties": map[string]any{"applicationDefinitionId": def2, "managedResourceGroupId": sub(e) + "/resourceGroups/mrg-fixed1"}})
		e.want(r, 201, "")
		props, _ = r.doc["properties"].(map[string]any)
		perr, _ := props["error"].(map[string]any)
		if props["provisioningState"] != "Failed" || perr == nil || !strings.Contains(string(r.raw), "VaultAlreadyExists") {
			t.Errorf("failed install %s", r.raw)
		}
		_, ns2 := e.outbox(tid, def2)
		if states(ns2) != "PUT/Accepted,PUT/Failed" || ns2[1].Error == nil || len(ns2[1].Error.Details) != 1 || ns2[1].Error.Details[0].Code != "VaultAlreadyExists" {
			t.Errorf("failed notifications %s %+v", states(ns2), ns2)
		}
		// The managed group must be new.
		e.want(e.call(admin, "PUT", appRG+"/providers/Microsoft.Solutions/applications/dup", map[string]any{"location": "westeurope", "kind": "ServiceCatalog",
			"properties": map[string]any{"applicationDefinitionId": def2, "managedResourceGroupId": mrg}}), 409, "ManagedResourceGroupAlreadyExists")

		// DELETE removes everything and tells the publisher.
		e.want(e.call(admin, "DELETE", appID, nil), 200, "")
		e.want(e.call(admin, "GET", appID, nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "GET", mrg, nil), 404, "ResourceGroupNotFound")
		if _, err := e.st.GetVault(e.ctx, "kv"+sfx); err == nil {
			t.Error("the managed vault survived")
		}
		if _, err := e.dir.GetServicePrincipal(e.ctx, tid, principal); err == nil {
			t.Error("the application identity survived")
		}
		ras, err = e.st.ListRoleAssignments(e.ctx, store.RoleAssignmentQuery{TenantID: tid, ScopePrefix: mrg})
		must(t, err)
		das, err = e.st.ListDenyAssignments(e.ctx, store.DenyAssignmentQuery{TenantID: tid, ScopePrefix: mrg})
		must(t, err)
		if len(ras) != 0 || len(das) != 0 {
			t.Errorf("left behind: %+v %+v", ras, das)
		}
		_, ns = e.outbox(tid, def)
		if states(ns) != "PUT/Accepted,PUT/Succeeded,DELETE/Deleting,DELETE/Deleted" {
			t.Errorf("notifications after delete %s", states(ns))
		}
		e.want(e.call(pubTok, "POST", appID+"/listTokens", map[string]any{}), 404, "ResourceNotFound")
		e.want(e.call(admin, "DELETE", appID, nil), 204, "")
	})
}

// suffixOf reads the unique suffix from the managed group's vault.
func suffixOf(t *testing.T, e *env, token, mrg string) string {
	t.Helper()
	r := e.call(token, "GET", mrg+"/providers/Microsoft.KeyVault/vaults", nil)
	e.want(r, 200, "")
	v, _ := r.doc["value"].([]any)
	if len(v) != 1 {
		t.Fatalf("vaults of the managed group %s", r.raw)
	}
	name := v[0].(map[string]any)["name"].(string)
	return strings.TrimPrefix(name, "kv")
}

func TestManagedApplicationMarketplace(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ptid, ctid := e.contoso.Tenant.ID, e.fabrikam.Tenant.ID
		padmin, cadmin := e.adminToken(e.contoso), e.adminToken(e.fabrikam)
		pub := e.newApp(ptid, "publisher-ops", false)
		defRG := sub(e) + "/resourceGroups/offers"
		e.want(e.call(padmin, "PUT", defRG, map[string]any{"location": "westeurope"}), 201, "")
		def := defRG + "/providers/Microsoft.Solutions/applicationDefinitions/broker-offer"
		spec := map[string]any{"vaults": []any{map[string]any{"name": "kv{uniqueSuffix}"}},
			"roleAssignments": []any{map[string]any{"role": "Key Vault Secrets Officer", "principal": "publisher:" + pub.sp.ID, "scope": "vault:kv{uniqueSuffix}"}}}
		auths := []map[string]string{{"principalId": pub.sp.ID, "roleDefinitionId": rbac.RoleOwner}}
		e.want(e.call(padmin, "PUT", def, defBody("ReadOnly", auths, "https://hooks.example/m", spec)), 201, "")

		csub := "/subscriptions/" + e.fabrikam.Tenant.SubscriptionID
		appRG := csub + "/resourceGroups/apps"
		e.want(e.call(cadmin, "PUT", appRG, map[string]any{"location": "westeurope"}), 201, "")
		appID := appRG + "/providers/Microsoft.Solutions/applications/offer1"
		mrg := csub + "/resourceGroups/mrg-offer1"
		plan := map[string]any{"name": "standard", "publisher": e.contoso.Tenant.Domain, "product": "broker-offer", "version": "1.0.0"}
		body := map[string]any{"location": "westeurope", "kind": "MarketPlace", "plan": plan, "identity": map[string]any{"type": "SystemAssigned"},
			"properties": map[string]any{"managedResourceGroupId": mrg}}
		// Not published yet: no offer.
		e.want(e.call(cadmin, "PUT", appID, body), 404, "MarketplaceOfferNotFound")
		// A service catalog definition of another tenant cannot be referenced.
		e.want(e.call(cadmin, "PUT", appID, map[string]any{"location": "westeurope", "kind": "ServiceCatalog",
			"properties": map[string]any{"applicationDefinitionId": def, "managedResourceGroupId": mrg}}), 404, "ApplicationDefinitionNotFound")
		// The definition itself cannot say it is on sale (Azure's has no
		// such property); the operator publishes it.
		body2 := defBody("ReadOnly", auths, "https://hooks.example/m", spec)
		body2["properties"].(map[string]any)["isPublishedToMarketplace"] = true
		e.want(e.call(padmin, "PUT", def, body2), 400, "BadRequest")
		e.publish(def)

		r := e.call(cadmin, "PUT", appID, body)
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		if props["provisioningState"] != "Succeeded" || props["publisherTenantId"] != ptid || r.doc["plan"] == nil {
			t.Fatalf("installed %s", r.raw)
		}
		// The publisher's cross-tenant assignment on the managed group.
		ras, err := e.st.ListRoleAssignments(e.ctx, store.RoleAssignmentQuery{TenantID: ctid, ScopePrefix: mrg, PrincipalTenantID: ptid})
		must(t, err)
		if len(ras) != 2 {
			t.Errorf("cross-tenant assignments %+v", ras)
		}
		// The publisher acts in the customer's managed group with a token
		// of its own tenant; the customer cannot.
		pubTok := e.armToken(ptid, pub.app.AppID, pub.secret)
		uami := mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/extra"
		e.want(e.call(cadmin, "PUT", uami, map[string]any{"location": "westeurope"}), 403, "DenyAssignmentAuthorizationFailed")
		e.want(e.call(pubTok, "PUT", uami, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(pubTok, "GET", csub+"/resourceGroups/apps", nil), 403, "AuthorizationFailed")
		r = e.call(pubTok, "POST", appID+"/listTokens", map[string]any{"authorizationAudience": "https://management.azure.com/"})
		e.want(r, 200, "")
		e.want(e.call(cadmin, "POST", appID+"/listTokens", map[string]any{}), 403, "AuthorizationFailed")
		// Across tenants too, the publisher reads the application (not
		// the group it is in, nor the group's other resources).
		r = e.call(pubTok, "GET", appID, nil)
		e.want(r, 200, "")
		if p, _ := r.doc["properties"].(map[string]any); p["managedResourceGroupId"] != mrg {
			t.Errorf("the publisher's GET %s", r.raw)
		}
		if r := e.call(pubTok, "GET", csub+"/resourceGroups/apps/providers/Microsoft.Solutions/applications", nil); r.status != 200 || len(r.doc["value"].([]any)) != 0 {
			t.Errorf("the publisher lists %d %s", r.status, r.raw)
		}

		_, ns := e.outbox(ptid, def)
		if states(ns) != "PUT/Accepted,PUT/Succeeded" || ns[1].Plan == nil || ns[1].Plan.Product != "broker-offer" ||
			ns[1].BillingDetails == nil || ns[1].BillingDetails.ResourceUsageID == "" || ns[1].ApplicationDefinitionID != "" {
			t.Errorf("marketplace notifications %s %+v", states(ns), ns)
		}
		// Nothing for the customer's own log.
		if ms, err := e.st.ListOutbox(e.ctx, store.OutboxQuery{TenantID: ctid}); err != nil || len(ms) != 0 {
			t.Errorf("customer outbox %v %v", ms, err)
		}
		e.want(e.call(cadmin, "DELETE", appID, nil), 200, "")
		e.want(e.call(cadmin, "GET", mrg, nil), 404, "ResourceGroupNotFound")
		if ras, err := e.st.ListRoleAssignments(e.ctx, store.RoleAssignmentQuery{TenantID: ctid, PrincipalTenantID: ptid}); err != nil || len(ras) != 0 {
			t.Errorf("cross-tenant assignments left %+v %v", ras, err)
		}
		if _, err := e.dir.ManagedIdentityByResourceID(e.ctx, ctid, uami); err == nil {
			t.Error("the publisher's identity survived")
		}
		_, ns = e.outbox(ptid, def)
		if states(ns) != "PUT/Accepted,PUT/Succeeded,DELETE/Deleting,DELETE/Deleted" {
			t.Errorf("notifications %s", states(ns))
		}
	})
}

// TestManagedApplicationRegistration: a marketplace install whose spec has
// registration.endpoint enqueues, in the Succeeded transaction, the
// registration call after the Accepted and Succeeded notifications, with
// the bootstrap secret as a reference (AuthRef), never in the body; a
// bootstrap secret outside the publisher's tenant fails the install.
func TestManagedApplicationRegistration(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ptid, ctid := e.contoso.Tenant.ID, e.fabrikam.Tenant.ID
		padmin, cadmin := e.adminToken(e.contoso), e.adminToken(e.fabrikam)
		e.createVault(ptid, "pubboot")
		e.createVault(ctid, "custkv")
		defRG := sub(e) + "/resourceGroups/offers"
		e.want(e.call(padmin, "PUT", defRG, map[string]any{"location": "westeurope"}), 201, "")
		publish := func(name, secretURI string) string {
			def := defRG + "/providers/Microsoft.Solutions/applicationDefinitions/" + name
			spec := map[string]any{"vaults": []any{map[string]any{"name": "kv{uniqueSuffix}"}},
				"registration": map[string]any{"endpoint": "https://broker.example/register?x=1", "credentialMode": "secret", "vault": "kv{uniqueSuffix}",
					"bootstrapSecret": secretURI}}
			e.want(e.call(padmin, "PUT", def, defBody("None", nil, "https://hooks.example/m", spec)), 201, "")
			e.publish(def)
			return def
		}
		csub := "/subscriptions/" + e.fabrikam.Tenant.SubscriptionID
		e.want(e.call(cadmin, "PUT", csub+"/resourceGroups/apps", map[string]any{"location": "westeurope"}), 201, "")
		install := func(product, name string) (string, response) {
			appID := csub + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/" + name
			plan := map[string]any{"name": "standard", "publisher": e.contoso.Tenant.Domain, "product": product, "version": "1.0.0"}
			return appID, e.call(cadmin, "PUT", appID, map[string]any{"location": "westeurope", "kind": "MarketPlace", "plan": plan,
				"identity": map[string]any{"type": "SystemAssigned"}, "properties": map[string]any{"managedResourceGroupId": csub + "/resourceGroups/mrg-" + name}})
		}

		const secretURI = "https://pubboot.vault.azure.net/secrets/bootstrap"
		def := publish("reg-offer", secretURI)
		appID, r := install("reg-offer", "reg1")
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		ident, _ := r.doc["identity"].(map[string]any)
		if props["provisioningState"] != "Succeeded" {
			t.Fatalf("installed %s", r.raw)
		}
		if strings.Contains(string(r.raw), "pubboot") {
			t.Errorf("the customer's view shows the publisher's bootstrap secret reference: %s", r.raw)
		}
		all, err := e.st.ListOutbox(e.ctx, store.OutboxQuery{TenantID: ptid, Topic: def})
		must(t, err)
		if len(all) != 3 || all[0].AuthRef == "" || all[1].AuthRef != "" || all[2].AuthRef != "" {
			t.Fatalf("messages (newest first) %+v: want the registration after Accepted and Succeeded", all)
		}
		m := all[0]
		if m.URL != "https://broker.example/register?x=1" || m.TenantID != ptid || m.Topic != def || m.Key != strings.ToLower(appID) || m.Key != all[1].Key ||
			m.ContentType != "application/json" || m.Deadline.IsZero() || m.Seq <= all[1].Seq {
			t.Errorf("registration message %+v", m)
		}
		if tn, uri, ok := arm.ParseRegistrationAuthRef(m.AuthRef); !ok || tn != ptid || uri != secretURI {
			t.Errorf("AuthRef %q: want the publisher's tenant and %s", m.AuthRef, secretURI)
		}
		var body map[string]any
		must(t, json.Unmarshal(m.Body, &body))
		plan, _ := body["plan"].(map[string]any)
		if body["applicationId"] != appID || body["customerTenantId"] != ctid || body["managedResourceGroupId"] != csub+"/resourceGroups/mrg-reg1" ||
			body["identityPrincipalId"] != ident["principalId"] || body["identityPrincipalId"] == nil || plan["product"] != "reg-offer" ||
			body["applicationDefinitionId"] != nil || body["eventTime"] == nil {
			t.Errorf("registration body %s", m.Body)
		}
		if _, err := time.Parse(time.RFC3339, body["eventTime"].(string)); err != nil {
			t.Errorf("eventTime: %v", err)
		}
		for _, leak := range []string{"pubboot", "bootstrap", "Bootstrap", "secret"} {
			if strings.Contains(string(m.Body), leak) {
				t.Errorf("the registration body mentions %q: %s", leak, m.Body)
			}
		}

		// A bootstrap secret in the customer's vault, or in no vault: Failed,
		// no registration.
		for i, uri := range []string{"https://custkv.vault.azure.net/secrets/bootstrap", "https://nosuchvault.vault.azure.net/secrets/bootstrap"} {
			product := fmt.Sprintf("bad-offer%d", i)
			def := publish(product, uri)
			_, r := install(product, fmt.Sprintf("bad%d", i))
			e.want(r, 201, "")
			props, _ := r.doc["properties"].(map[string]any)
			if props["provisioningState"] != "Failed" || !strings.Contains(string(r.raw), "InvalidBootstrapSecret") || !strings.Contains(string(r.raw), "publisher") {
				t.Errorf("install with bootstrap secret %s: %s", uri, r.raw)
			}
			if regs := e.registrations(ptid, def); len(regs) != 0 {
				t.Errorf("registration enqueued for a failed install: %+v", regs)
			}
			if _, ns := e.outbox(ptid, def); states(ns) != "PUT/Accepted,PUT/Failed" {
				t.Errorf("notifications %s", states(ns))
			}
		}
	})
}

// operatorARM is a Resource Manager handler on the test's store, for the
// operator's steps (marketplace offers), which no ARM request makes.
func (e *env) operatorARM() *arm.Handler {
	return arm.New(arm.Config{Directory: e.dir, Store: e.st, RBAC: rbac.New(e.st, e.dir), Verifier: e.base.Verifier, Audit: e.base.Audit, Logger: e.base.Logger})
}

// publish publishes the definition as a marketplace offer, as the
// operator does (tenantbridge marketplace offer publish).
func (e *env) publish(defID string) {
	e.t.Helper()
	if _, err := e.operatorARM().PublishOffer(e.ctx, defID); err != nil {
		e.t.Fatalf("publishing %s: %v", defID, err)
	}
}
