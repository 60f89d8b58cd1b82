package arm_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// forEachStoreKEK is forEachStore with Resource Manager holding a KEK, so
// that Service Bus authorization rules are served.
func forEachStoreKEK(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		b := testenv.New(t, st, testenv.LoginHosts("login.microsoftonline.com"), testenv.LoginURL(loginBase))
		e := &env{t: t, ctx: t.Context(), st: st, dir: b.Dir, srv: b.Server, client: b.Client(), base: b}
		kek := make([]byte, 32)
		_, _ = rand.Read(kek)
		h := arm.New(arm.Config{Directory: e.dir, Store: st, RBAC: rbac.New(st, e.dir), Verifier: b.Verifier, Audit: b.Audit, Logger: b.Logger, KEK: kek})
		b.Route(func(r *http.Request) http.Handler {
			if strings.HasPrefix(r.Host, "management.") {
				return h
			}
			return nil
		})
		e.contoso, e.fabrikam = b.Tenants(t)
		fn(t, e)
	})
}

func rightsOfDoc(r response) []string {
	props, _ := r.doc["properties"].(map[string]any)
	rs, _ := props["rights"].([]any)
	var out []string
	for _, x := range rs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func str(r response, k string) string { s, _ := r.doc[k].(string); return s }

func TestServiceBusRulesCRUD(t *testing.T) {
	forEachStoreKEK(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/Sb-Rules-NS"
		qid := nid + "/queues/orders"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", nid, nsBody()), 201, "")
		e.want(e.call(admin, "PUT", qid, map[string]any{}), 200, "")

		// The default rule, with rights only.
		root := nid + "/authorizationRules/RootManageSharedAccessKey"
		r := e.call(admin, "GET", root, nil)
		e.want(r, 200, "")
		if str(r, "name") != "RootManageSharedAccessKey" || str(r, "type") != "Microsoft.ServiceBus/Namespaces/AuthorizationRules" || str(r, "id") != root ||
			!slices.Equal(rightsOfDoc(r), []string{"Listen", "Manage", "Send"}) || len(r.doc["properties"].(map[string]any)) != 1 || bytes.Contains(r.raw, []byte("primaryKey")) {
			t.Errorf("default rule %s", r.raw)
		}
		// Updating the namespace does not make another.
		e.want(e.call(admin, "PUT", nid, nsBody()), 200, "")
		r = e.call(admin, "POST", root+"/listKeys", nil)
		e.want(r, 200, "")
		pk, sk := str(r, "primaryKey"), str(r, "secondaryKey")
		if len(pk) != 44 || len(sk) != 44 || pk == sk || str(r, "keyName") != "RootManageSharedAccessKey" ||
			str(r, "primaryConnectionString") != "Endpoint=sb://sb-rules-ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey="+pk ||
			str(r, "secondaryConnectionString") != "Endpoint=sb://sb-rules-ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey="+sk {
			t.Errorf("listKeys %s", r.raw)
		}
		if raw, err := base64.StdEncoding.DecodeString(pk); err != nil || len(raw) != 32 {
			t.Errorf("primary key %q is not base64 of 256 bits", pk)
		}
		// At rest the keys are sealed.
		res, err := e.st.GetResource(e.ctx, root)
		must(t, err)
		if bytes.Contains(res.Properties, []byte(pk)) || bytes.Contains(res.Properties, []byte(sk)) {
			t.Errorf("stored rule holds a key in plaintext: %s", res.Properties)
		}

		// A namespace rule.
		sender := nid + "/authorizationRules/sender"
		r = e.call(admin, "PUT", sender, map[string]any{"properties": map[string]any{"rights": []string{"send"}}})
		e.want(r, 200, "")
		if !slices.Equal(rightsOfDoc(r), []string{"Send"}) || str(r, "id") != sender {
			t.Errorf("put rule %s", r.raw)
		}
		keys1 := e.call(admin, "POST", sender+"/listKeys", nil)
		e.want(keys1, 200, "")
		// A second PUT changes the rights and keeps the keys.
		r = e.call(admin, "PUT", sender, map[string]any{"properties": map[string]any{"rights": []string{"Send", "Listen"}}})
		e.want(r, 200, "")
		if !slices.Equal(rightsOfDoc(r), []string{"Send", "Listen"}) {
			t.Errorf("updated rule %s", r.raw)
		}
		keys2 := e.call(admin, "POST", sender+"/listKeys", nil)
		if str(keys2, "primaryKey") != str(keys1, "primaryKey") || str(keys2, "secondaryKey") != str(keys1, "secondaryKey") {
			t.Errorf("keys changed on update: %s then %s", keys1.raw, keys2.raw)
		}
		r = e.call(admin, "GET", nid+"/authorizationRules", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 2 {
			t.Errorf("namespace rules %d %s", r.status, r.raw)
		}

		// A queue rule.
		qrule := qid + "/authorizationRules/worker"
		r = e.call(admin, "PUT", qrule, map[string]any{"properties": map[string]any{"rights": []string{"Listen"}}})
		e.want(r, 200, "")
		if str(r, "type") != "Microsoft.ServiceBus/Namespaces/Queues/AuthorizationRules" {
			t.Errorf("queue rule %s", r.raw)
		}
		r = e.call(admin, "POST", qrule+"/listKeys", nil)
		e.want(r, 200, "")
		if !strings.HasSuffix(str(r, "primaryConnectionString"), ";SharedAccessKeyName=worker;SharedAccessKey="+str(r, "primaryKey")+";EntityPath=orders") {
			t.Errorf("queue listKeys %s", r.raw)
		}
		r = e.call(admin, "GET", qid+"/authorizationRules", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("queue rules %d %s", r.status, r.raw)
		}
		r = e.call(admin, "GET", nid+"/authorizationRules", nil)
		if vs, _ := r.doc["value"].([]any); len(vs) != 2 {
			t.Errorf("namespace rules include the queue's: %s", r.raw)
		}
		// Unknown rule, unknown parent, wrong methods and operations.
		e.want(e.call(admin, "GET", nid+"/authorizationRules/nope", nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "POST", nid+"/authorizationRules/nope/listKeys", nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "GET", nid+"/queues/none/authorizationRules/worker", nil), 404, "ParentResourceNotFound")
		e.want(e.call(admin, "PUT", nid+"/queues/none/authorizationRules/worker", map[string]any{"properties": map[string]any{"rights": []string{"Listen"}}}), 404, "ParentResourceNotFound")
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-none-ns/authorizationRules", nil), 404, "ParentResourceNotFound")
		e.want(e.call(admin, "GET", sender+"/listKeys", nil), 405, "MethodNotAllowed")
		e.want(e.call(admin, "POST", sender+"/rotate", nil), 400, "InvalidResourceId")
		e.want(e.call(admin, "PUT", nid+"/authorizationRules/bad*name", map[string]any{"properties": map[string]any{"rights": []string{"Listen"}}}), 400, "BadRequest")

		// Delete: 200, then 204; the queue's rules go with the queue.
		e.want(e.call(admin, "DELETE", sender, nil), 200, "")
		e.want(e.call(admin, "DELETE", sender, nil), 204, "")
		e.want(e.call(admin, "GET", sender, nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "DELETE", qid, nil), 200, "")
		if _, err := e.st.GetResource(e.ctx, qrule); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("queue rule after queue delete: %v", err)
		}
		e.want(e.call(admin, "DELETE", nid, nil), 200, "")
		if _, err := e.st.GetResource(e.ctx, root); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("namespace rule after namespace delete: %v", err)
		}
	})
}

func TestServiceBusRuleRights(t *testing.T) {
	forEachStoreKEK(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-rights-ns"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", nid, nsBody()), 201, "")
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
			e.want(e.call(admin, "PUT", rule, bad), 400, "BadRequest")
		}
		r := e.call(admin, "PUT", rule, map[string]any{"properties": map[string]any{"rights": []string{"manage", "LISTEN", "Send", "Send"}}})
		e.want(r, 200, "")
		if !slices.Equal(rightsOfDoc(r), []string{"Manage", "Listen", "Send"}) {
			t.Errorf("rights %s", r.raw)
		}
	})
}

func TestServiceBusRegenerateKeys(t *testing.T) {
	forEachStoreKEK(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-regen-ns"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", nid, nsBody()), 201, "")
		e.want(e.call(admin, "PUT", nid+"/queues/q", map[string]any{}), 200, "")
		for _, rule := range []string{nid + "/authorizationRules/RootManageSharedAccessKey", nid + "/queues/q/authorizationRules/qr"} {
			if strings.Contains(rule, "/queues/") {
				e.want(e.call(admin, "PUT", rule, map[string]any{"properties": map[string]any{"rights": []string{"Send"}}}), 200, "")
			}
			before := e.call(admin, "POST", rule+"/listKeys", nil)
			r := e.call(admin, "POST", rule+"/regenerateKeys", map[string]any{"keyType": "PrimaryKey"})
			e.want(r, 200, "")
			if str(r, "primaryKey") == str(before, "primaryKey") || len(str(r, "primaryKey")) != 44 || str(r, "secondaryKey") != str(before, "secondaryKey") ||
				!strings.Contains(str(r, "primaryConnectionString"), "SharedAccessKey="+str(r, "primaryKey")) {
				t.Errorf("regenerate primary: %s then %s", before.raw, r.raw)
			}
			var raw [32]byte
			_, _ = rand.Read(raw[:])
			chosen := base64.StdEncoding.EncodeToString(raw[:])
			r = e.call(admin, "POST", rule+"/regenerateKeys", map[string]any{"keyType": "SecondaryKey", "key": chosen})
			e.want(r, 200, "")
			after := e.call(admin, "POST", rule+"/listKeys", nil)
			if str(r, "secondaryKey") != chosen || str(after, "secondaryKey") != chosen || str(after, "primaryKey") != str(r, "primaryKey") {
				t.Errorf("regenerate secondary with a key: %s then %s", r.raw, after.raw)
			}
			e.want(e.call(admin, "POST", rule+"/regenerateKeys", map[string]any{"keyType": "TertiaryKey"}), 400, "BadRequest")
			e.want(e.call(admin, "POST", rule+"/regenerateKeys", map[string]any{"keyType": "PrimaryKey", "key": "c2hvcnQ="}), 400, "BadRequest")
			e.want(e.call(admin, "POST", rule+"/regenerateKeys", nil), 400, "InvalidRequestContent")
		}
	})
}

func TestServiceBusRulePermissions(t *testing.T) {
	forEachStoreKEK(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-rperm-ns"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", nid, nsBody()), 201, "")
		e.want(e.call(admin, "PUT", nid+"/queues/q", map[string]any{}), 200, "")
		qrule := nid + "/queues/q/authorizationRules/qr"
		e.want(e.call(admin, "PUT", qrule, map[string]any{"properties": map[string]any{"rights": []string{"Listen"}}}), 200, "")
		root := nid + "/authorizationRules/RootManageSharedAccessKey"

		reader := e.newApp(tid, "reader", false)
		tok := e.armToken(tid, reader.app.AppID, reader.secret)
		e.want(e.call(tok, "GET", root, nil), 403, "AuthorizationFailed")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.sp.ID}}), 201, "")
		e.want(e.call(tok, "GET", root, nil), 200, "")
		e.want(e.call(tok, "GET", qrule, nil), 200, "")
		r := e.call(tok, "GET", nid+"/authorizationRules", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("reader's rule list %d %s", r.status, r.raw)
		}
		r = e.call(tok, "POST", root+"/listKeys", nil)
		e.want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.message(), "'Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action'") || strings.Contains(string(r.raw), "Key\":") {
			t.Errorf("reader listKeys %s", r.raw)
		}
		r = e.call(tok, "POST", qrule+"/listKeys", nil)
		e.want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.message(), "'Microsoft.ServiceBus/namespaces/queues/authorizationRules/listKeys/action'") {
			t.Errorf("reader queue listKeys %s", r.raw)
		}
		e.want(e.call(tok, "POST", root+"/regenerateKeys", map[string]any{"keyType": "PrimaryKey"}), 403, "AuthorizationFailed")
		e.want(e.call(tok, "PUT", nid+"/authorizationRules/mine", map[string]any{"properties": map[string]any{"rights": []string{"Send"}}}), 403, "AuthorizationFailed")
		e.want(e.call(tok, "DELETE", root, nil), 403, "AuthorizationFailed")
		// Another tenant sees nothing of it.
		e.want(e.call(e.adminToken(e.fabrikam), "POST", root+"/listKeys", nil), 401, "InvalidAuthenticationTokenTenant")

		// The refusal and the admin's listKeys are in the audit log.
		e.want(e.call(admin, "POST", root+"/listKeys", nil), 200, "")
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: tid})
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
