package servicebus_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

func rightsOfDoc(r armtest.Response) []string {
	props, _ := r.Doc["properties"].(map[string]any)
	rs, _ := props["rights"].([]any)
	var out []string
	for _, x := range rs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func str(r armtest.Response, k string) string { s, _ := r.Doc[k].(string); return s }

func TestServiceBusRulesCRUD(t *testing.T) {
	armtest.ForEachStoreWith(t, armtest.Options{KEK: true}, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		rg := armtest.Sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/Sb-Rules-NS"
		qid := nid + "/queues/orders"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", nid, nsBody()), 201, "")
		e.Want(e.Call(admin, "PUT", qid, map[string]any{}), 200, "")

		// The default rule, with rights only.
		root := nid + "/authorizationRules/RootManageSharedAccessKey"
		r := e.Call(admin, "GET", root, nil)
		e.Want(r, 200, "")
		if str(r, "name") != "RootManageSharedAccessKey" || str(r, "type") != "Microsoft.ServiceBus/Namespaces/AuthorizationRules" || str(r, "id") != root ||
			!slices.Equal(rightsOfDoc(r), []string{"Listen", "Manage", "Send"}) || len(r.Doc["properties"].(map[string]any)) != 1 || bytes.Contains(r.Raw, []byte("primaryKey")) {
			t.Errorf("default rule %s", r.Raw)
		}
		// Updating the namespace does not make another.
		e.Want(e.Call(admin, "PUT", nid, nsBody()), 200, "")
		r = e.Call(admin, "POST", root+"/listKeys", nil)
		e.Want(r, 200, "")
		pk, sk := str(r, "primaryKey"), str(r, "secondaryKey")
		if len(pk) != 44 || len(sk) != 44 || pk == sk || str(r, "keyName") != "RootManageSharedAccessKey" ||
			str(r, "primaryConnectionString") != "Endpoint=sb://sb-rules-ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey="+pk ||
			str(r, "secondaryConnectionString") != "Endpoint=sb://sb-rules-ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey="+sk {
			t.Errorf("listKeys %s", r.Raw)
		}
		if raw, err := base64.StdEncoding.DecodeString(pk); err != nil || len(raw) != 32 {
			t.Errorf("primary key %q is not base64 of 256 bits", pk)
		}
		// At rest the keys are sealed.
		res, err := e.St.GetResource(e.Ctx, root)
		must(t, err)
		if bytes.Contains(res.Properties, []byte(pk)) || bytes.Contains(res.Properties, []byte(sk)) {
			t.Errorf("stored rule holds a key in plaintext: %s", res.Properties)
		}

		// A namespace rule.
		sender := nid + "/authorizationRules/sender"
		r = e.Call(admin, "PUT", sender, map[string]any{"properties": map[string]any{"rights": []string{"send"}}})
		e.Want(r, 200, "")
		if !slices.Equal(rightsOfDoc(r), []string{"Send"}) || str(r, "id") != sender {
			t.Errorf("put rule %s", r.Raw)
		}
		keys1 := e.Call(admin, "POST", sender+"/listKeys", nil)
		e.Want(keys1, 200, "")
		// A second PUT changes the rights and keeps the keys.
		r = e.Call(admin, "PUT", sender, map[string]any{"properties": map[string]any{"rights": []string{"Send", "Listen"}}})
		e.Want(r, 200, "")
		if !slices.Equal(rightsOfDoc(r), []string{"Send", "Listen"}) {
			t.Errorf("updated rule %s", r.Raw)
		}
		keys2 := e.Call(admin, "POST", sender+"/listKeys", nil)
		if str(keys2, "primaryKey") != str(keys1, "primaryKey") || str(keys2, "secondaryKey") != str(keys1, "secondaryKey") {
			t.Errorf("keys changed on update: %s then %s", keys1.Raw, keys2.Raw)
		}
		r = e.Call(admin, "GET", nid+"/authorizationRules", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 2 {
			t.Errorf("namespace rules %d %s", r.Status, r.Raw)
		}

		// A queue rule.
		qrule := qid + "/authorizationRules/worker"
		r = e.Call(admin, "PUT", qrule, map[string]any{"properties": map[string]any{"rights": []string{"Listen"}}})
		e.Want(r, 200, "")
		if str(r, "type") != "Microsoft.ServiceBus/Namespaces/Queues/AuthorizationRules" {
			t.Errorf("queue rule %s", r.Raw)
		}
		r = e.Call(admin, "POST", qrule+"/listKeys", nil)
		e.Want(r, 200, "")
		if !strings.HasSuffix(str(r, "primaryConnectionString"), ";SharedAccessKeyName=worker;SharedAccessKey="+str(r, "primaryKey")+";EntityPath=orders") {
			t.Errorf("queue listKeys %s", r.Raw)
		}
		r = e.Call(admin, "GET", qid+"/authorizationRules", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("queue rules %d %s", r.Status, r.Raw)
		}
		r = e.Call(admin, "GET", nid+"/authorizationRules", nil)
		if vs, _ := r.Doc["value"].([]any); len(vs) != 2 {
			t.Errorf("namespace rules include the queue's: %s", r.Raw)
		}
		// Unknown rule, unknown parent, wrong methods and operations.
		e.Want(e.Call(admin, "GET", nid+"/authorizationRules/nope", nil), 404, "ResourceNotFound")
		e.Want(e.Call(admin, "POST", nid+"/authorizationRules/nope/listKeys", nil), 404, "ResourceNotFound")
		e.Want(e.Call(admin, "GET", nid+"/queues/none/authorizationRules/worker", nil), 404, "ParentResourceNotFound")
		e.Want(e.Call(admin, "PUT", nid+"/queues/none/authorizationRules/worker", map[string]any{"properties": map[string]any{"rights": []string{"Listen"}}}), 404, "ParentResourceNotFound")
		e.Want(e.Call(admin, "GET", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-none-ns/authorizationRules", nil), 404, "ParentResourceNotFound")
		e.Want(e.Call(admin, "GET", sender+"/listKeys", nil), 405, "MethodNotAllowed")
		e.Want(e.Call(admin, "POST", sender+"/rotate", nil), 400, "InvalidResourceId")
		e.Want(e.Call(admin, "PUT", nid+"/authorizationRules/bad*name", map[string]any{"properties": map[string]any{"rights": []string{"Listen"}}}), 400, "BadRequest")

		// Delete: 200, then 204; the queue's rules go with the queue.
		e.Want(e.Call(admin, "DELETE", sender, nil), 200, "")
		e.Want(e.Call(admin, "DELETE", sender, nil), 204, "")
		e.Want(e.Call(admin, "GET", sender, nil), 404, "ResourceNotFound")
		e.Want(e.Call(admin, "DELETE", qid, nil), 200, "")
		if _, err := e.St.GetResource(e.Ctx, qrule); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("queue rule after queue delete: %v", err)
		}
		e.Want(e.Call(admin, "DELETE", nid, nil), 200, "")
		if _, err := e.St.GetResource(e.Ctx, root); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("namespace rule after namespace delete: %v", err)
		}
	})
}

func TestServiceBusRuleRights(t *testing.T) {
	armtest.ForEachStoreWith(t, armtest.Options{KEK: true}, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		rg := armtest.Sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-rights-ns"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", nid, nsBody()), 201, "")
		rule := nid + "/authorizationRules/r1"
		for _, bad := range []any{
			map[string]any{"properties": map[string]any{"rights": []string{"Manage"}}},
			map[string]any{"properties": map[string]any{"rights": []string{"Manage", "Send"}}},
			map[string]any{"properties": map[string]any{"rights": []string{"Manage", "Listen"}}},
			map[string]any{"properties": map[string]any{"rights": []string{}}},
			map[string]any{"properties": map[string]any{"rights": []string{"Read"}}},
			map[string]any{"properties": map[string]any{}},
			map[string]any{},
		} {
			e.Want(e.Call(admin, "PUT", rule, bad), 400, "BadRequest")
		}
		r := e.Call(admin, "PUT", rule, map[string]any{"properties": map[string]any{"rights": []string{"manage", "LISTEN", "Send", "Send"}}})
		e.Want(r, 200, "")
		if !slices.Equal(rightsOfDoc(r), []string{"Manage", "Listen", "Send"}) {
			t.Errorf("rights %s", r.Raw)
		}
	})
}

func TestServiceBusRegenerateKeys(t *testing.T) {
	armtest.ForEachStoreWith(t, armtest.Options{KEK: true}, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		rg := armtest.Sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-regen-ns"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", nid, nsBody()), 201, "")
		e.Want(e.Call(admin, "PUT", nid+"/queues/q", map[string]any{}), 200, "")
		for _, rule := range []string{nid + "/authorizationRules/RootManageSharedAccessKey", nid + "/queues/q/authorizationRules/qr"} {
			if strings.Contains(rule, "/queues/") {
				e.Want(e.Call(admin, "PUT", rule, map[string]any{"properties": map[string]any{"rights": []string{"Send"}}}), 200, "")
			}
			before := e.Call(admin, "POST", rule+"/listKeys", nil)
			r := e.Call(admin, "POST", rule+"/regenerateKeys", map[string]any{"keyType": "PrimaryKey"})
			e.Want(r, 200, "")
			if str(r, "primaryKey") == str(before, "primaryKey") || len(str(r, "primaryKey")) != 44 || str(r, "secondaryKey") != str(before, "secondaryKey") ||
				!strings.Contains(str(r, "primaryConnectionString"), "SharedAccessKey="+str(r, "primaryKey")) {
				t.Errorf("regenerate primary: %s then %s", before.Raw, r.Raw)
			}
			var raw [32]byte
			_, _ = rand.Read(raw[:])
			chosen := base64.StdEncoding.EncodeToString(raw[:])
			r = e.Call(admin, "POST", rule+"/regenerateKeys", map[string]any{"keyType": "SecondaryKey", "key": chosen})
			e.Want(r, 200, "")
			after := e.Call(admin, "POST", rule+"/listKeys", nil)
			if str(r, "secondaryKey") != chosen || str(after, "secondaryKey") != chosen || str(after, "primaryKey") != str(r, "primaryKey") {
				t.Errorf("regenerate secondary with a key: %s then %s", r.Raw, after.Raw)
			}
			e.Want(e.Call(admin, "POST", rule+"/regenerateKeys", map[string]any{"keyType": "TertiaryKey"}), 400, "BadRequest")
			e.Want(e.Call(admin, "POST", rule+"/regenerateKeys", map[string]any{"keyType": "PrimaryKey", "key": "c2hvcnQ="}), 400, "BadRequest")
			e.Want(e.Call(admin, "POST", rule+"/regenerateKeys", nil), 400, "InvalidRequestContent")
		}
	})
}

func TestServiceBusRulePermissions(t *testing.T) {
	armtest.ForEachStoreWith(t, armtest.Options{KEK: true}, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-rperm-ns"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", nid, nsBody()), 201, "")
		e.Want(e.Call(admin, "PUT", nid+"/queues/q", map[string]any{}), 200, "")
		qrule := nid + "/queues/q/authorizationRules/qr"
		e.Want(e.Call(admin, "PUT", qrule, map[string]any{"properties": map[string]any{"rights": []string{"Listen"}}}), 200, "")
		root := nid + "/authorizationRules/RootManageSharedAccessKey"

		reader := e.NewApp(tid, "reader", false)
		tok := e.ARMToken(tid, reader.App.AppID, reader.Secret)
		e.Want(e.Call(tok, "GET", root, nil), 403, "AuthorizationFailed")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.SP.ID}}), 201, "")
		e.Want(e.Call(tok, "GET", root, nil), 200, "")
		e.Want(e.Call(tok, "GET", qrule, nil), 200, "")
		r := e.Call(tok, "GET", nid+"/authorizationRules", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("reader's rule list %d %s", r.Status, r.Raw)
		}
		r = e.Call(tok, "POST", root+"/listKeys", nil)
		e.Want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.Message(), "'Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action'") || strings.Contains(string(r.Raw), "Key\":") {
			t.Errorf("reader listKeys %s", r.Raw)
		}
		r = e.Call(tok, "POST", qrule+"/listKeys", nil)
		e.Want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.Message(), "'Microsoft.ServiceBus/namespaces/queues/authorizationRules/listKeys/action'") {
			t.Errorf("reader queue listKeys %s", r.Raw)
		}
		e.Want(e.Call(tok, "POST", root+"/regenerateKeys", map[string]any{"keyType": "PrimaryKey"}), 403, "AuthorizationFailed")
		e.Want(e.Call(tok, "PUT", nid+"/authorizationRules/mine", map[string]any{"properties": map[string]any{"rights": []string{"Send"}}}), 403, "AuthorizationFailed")
		e.Want(e.Call(tok, "DELETE", root, nil), 403, "AuthorizationFailed")
		// Another tenant sees nothing of it.
		e.Want(e.Call(e.AdminToken(e.Fabrikam), "POST", root+"/listKeys", nil), 401, "InvalidAuthenticationTokenTenant")

		// The refusal and the admin's listKeys are in the audit log.
		e.Want(e.Call(admin, "POST", root+"/listKeys", nil), 200, "")
		recs, err := e.St.ListAudit(e.Ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		var refused, listed bool
		for _, rec := range recs {
			if strings.EqualFold(rec.Action, "Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action") {
				refused = refused || rec.Result == "AuthorizationFailed"
				listed = listed || (rec.Result == audit.Success && strings.EqualFold(rec.Target, root))
			}
		}
		if !refused || !listed {
			t.Errorf("audit: refused %t listed %t", refused, listed)
		}
	})
}
