package arm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

func nsBody() map[string]any {
	return map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Standard"}}
}

func TestServiceBusNamespaces(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-app-one"

		e.want(e.call(admin, "PUT", nid, nsBody()), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "GET", nid, nil), 404, "ResourceNotFound")

		r := e.call(admin, "PUT", nid, nsBody())
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		sku, _ := r.doc["sku"].(map[string]any)
		if r.doc["id"] != nid || r.doc["name"] != "sb-app-one" || r.doc["type"] != "Microsoft.ServiceBus/namespaces" || r.doc["location"] != "westeurope" ||
			sku["name"] != "Standard" || props["serviceBusEndpoint"] != "https://sb-app-one.servicebus.windows.net:443/" ||
			props["status"] != "Active" || props["provisioningState"] != "Succeeded" || props["createdAt"] == nil {
			t.Errorf("created namespace %s", r.raw)
		}
		body := nsBody()
		body["tags"] = map[string]string{"env": "test"}
		r = e.call(admin, "PUT", nid, body)
		e.want(r, 200, "")
		if tags, _ := r.doc["tags"].(map[string]any); tags["env"] != "test" {
			t.Errorf("tags %s", r.raw)
		}
		e.want(e.call(admin, "PUT", nid, map[string]any{"location": "eastus"}), 400, "InvalidResourceLocation")

		// Names.
		for _, bad := range []string{"short", "1starts-with-digit", "ends-with-hyphen-", "has_underscore", strings.Repeat("a", 51)} {
			r := e.call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/"+bad, nsBody())
			e.want(r, 400, "BadRequest")
		}
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-other", map[string]any{"sku": map[string]any{"name": "Standard"}}), 400, "LocationRequired")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-other", map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Gold"}}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-other", `{"location":1}`), 400, "InvalidRequestContent")
		// Global: another group, another tenant.
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/second", map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/second/providers/Microsoft.ServiceBus/namespaces/SB-APP-ONE", nsBody()), 409, "Conflict")
		fab := e.adminToken(e.fabrikam)
		fsub := "/subscriptions/" + e.fabrikam.Tenant.SubscriptionID
		e.want(e.call(fab, "PUT", fsub+"/resourceGroups/f", map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(fab, "PUT", fsub+"/resourceGroups/f/providers/Microsoft.ServiceBus/namespaces/sb-app-one", nsBody()), 409, "Conflict")
		e.want(e.call(fab, "GET", fsub+"/resourceGroups/f/providers/Microsoft.ServiceBus/namespaces/sb-app-one", nil), 404, "ResourceNotFound")

		// Lists.
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/second/providers/Microsoft.ServiceBus/namespaces/sb-second", nsBody()), 201, "")
		r = e.call(admin, "GET", rg+"/providers/Microsoft.ServiceBus/namespaces", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("group list %d %s", r.status, r.raw)
		}
		r = e.call(admin, "GET", sub(e)+"/providers/Microsoft.ServiceBus/namespaces", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 2 {
			t.Errorf("subscription list %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "POST", nid, nil), 405, "MethodNotAllowed")

		// Deleting the namespace deletes its queues and the role assignments at its scope.
		e.want(e.call(admin, "PUT", nid+"/queues/orders", map[string]any{}), 200, "")
		ra := nid + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
		e.want(e.call(admin, "PUT", ra, map[string]any{"properties": map[string]any{"roleDefinitionId": rbac.RoleReader, "principalId": e.contoso.AdminSP.ID}}), 201, "")
		e.want(e.call(admin, "DELETE", nid, nil), 200, "")
		e.want(e.call(admin, "DELETE", nid, nil), 204, "")
		e.want(e.call(admin, "GET", nid, nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "GET", nid+"/queues/orders", nil), 404, "ParentResourceNotFound")
		if _, err := e.st.GetResource(e.ctx, nid+"/queues/orders"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("queue after its namespace's delete: %v", err)
		}
		e.want(e.call(admin, "GET", ra, nil), 404, "RoleAssignmentNotFound")
		// The name is free again, for anyone.
		e.want(e.call(fab, "PUT", fsub+"/resourceGroups/f/providers/Microsoft.ServiceBus/namespaces/sb-app-one", nsBody()), 201, "")

		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		found := false
		for _, rec := range recs {
			if rec.Action == "Microsoft.ServiceBus/namespaces/delete" && strings.EqualFold(rec.Target, nid) && rec.Result == "success" {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit record of the namespace delete")
		}
	})
}

func TestServiceBusQueues(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-queues"
		qid := nid + "/queues/orders"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", qid, map[string]any{}), 404, "ParentResourceNotFound")
		e.want(e.call(admin, "PUT", nid, nsBody()), 201, "")
		e.want(e.call(admin, "GET", qid, nil), 404, "ResourceNotFound")

		// Defaults. Created, the answer is 200 all the same (armservicebus).
		r := e.call(admin, "PUT", qid, map[string]any{})
		e.want(r, 200, "")
		p, _ := r.doc["properties"].(map[string]any)
		cd, _ := p["countDetails"].(map[string]any)
		if r.doc["id"] != qid || r.doc["name"] != "orders" || r.doc["type"] != "Microsoft.ServiceBus/namespaces/queues" ||
			p["lockDuration"] != "PT1M" || p["maxDeliveryCount"] != float64(10) || p["defaultMessageTimeToLive"] != "P10675199DT2H48M5.4775807S" ||
			p["requiresDuplicateDetection"] != false || p["duplicateDetectionHistoryTimeWindow"] != "PT10M" || p["deadLetteringOnMessageExpiration"] != false ||
			p["maxSizeInMegabytes"] != float64(1024) || p["requiresSession"] != false || p["status"] != "Active" ||
			cd["activeMessageCount"] != float64(0) || cd["deadLetterMessageCount"] != float64(0) || cd["scheduledMessageCount"] != float64(0) ||
			p["createdAt"] == nil || p["updatedAt"] == nil {
			t.Errorf("default queue %s", r.raw)
		}
		r2 := e.call(admin, "GET", qid, nil)
		e.want(r2, 200, "")
		if string(r2.raw) != string(r.raw) {
			t.Errorf("GET %s, PUT %s", r2.raw, r.raw)
		}

		// Explicit values, normalised; PUT replaces.
		r = e.call(admin, "PUT", qid, map[string]any{"properties": map[string]any{"lockDuration": "PT300S", "maxDeliveryCount": 3, "defaultMessageTimeToLive": "P1D",
			"duplicateDetectionHistoryTimeWindow": "PT20S", "deadLetteringOnMessageExpiration": true, "maxSizeInMegabytes": 5120, "requiresSession": false}})
		e.want(r, 200, "")
		p, _ = r.doc["properties"].(map[string]any)
		if p["lockDuration"] != "PT5M" || p["maxDeliveryCount"] != float64(3) || p["defaultMessageTimeToLive"] != "P1D" || p["duplicateDetectionHistoryTimeWindow"] != "PT20S" ||
			p["deadLetteringOnMessageExpiration"] != true || p["maxSizeInMegabytes"] != float64(5120) {
			t.Errorf("updated queue %s", r.raw)
		}
		// Duplicate detection is fixed at creation.
		e.want(e.call(admin, "PUT", qid, map[string]any{"properties": map[string]any{"requiresDuplicateDetection": true}}), 400, "BadRequest")
		r = e.call(admin, "PUT", nid+"/queues/dedup", map[string]any{"properties": map[string]any{"requiresDuplicateDetection": true, "duplicateDetectionHistoryTimeWindow": "P7D"}})
		e.want(r, 200, "")
		if p, _ := r.doc["properties"].(map[string]any); p["requiresDuplicateDetection"] != true || p["duplicateDetectionHistoryTimeWindow"] != "P7D" {
			t.Errorf("dedup queue %s", r.raw)
		}
		// A queue read back and written again with every property it shows
		// (what az servicebus queue update does) is taken.
		got := e.call(admin, "GET", nid+"/queues/dedup", nil)
		e.want(got, 200, "")
		gp, _ := got.doc["properties"].(map[string]any)
		if gp["autoDeleteOnIdle"] != "P10675199DT2H48M5.4775807S" || gp["enableBatchedOperations"] != true || gp["enablePartitioning"] != false ||
			gp["enableExpress"] != false || gp["status"] != "Active" {
			t.Errorf("queue properties %s", got.raw)
		}
		writable := map[string]any{}
		for _, k := range []string{"lockDuration", "maxDeliveryCount", "defaultMessageTimeToLive", "requiresDuplicateDetection",
			"duplicateDetectionHistoryTimeWindow", "deadLetteringOnMessageExpiration", "maxSizeInMegabytes", "requiresSession",
			"maxMessageSizeInKilobytes", "autoDeleteOnIdle", "enableBatchedOperations", "enablePartitioning", "enableExpress", "status"} {
			writable[k] = gp[k]
		}
		writable["maxDeliveryCount"] = 7
		r = e.call(admin, "PUT", nid+"/queues/dedup", map[string]any{"properties": writable})
		e.want(r, 200, "")
		if p, _ := r.doc["properties"].(map[string]any); p["maxDeliveryCount"] != float64(7) {
			t.Errorf("updated from its own view %s", r.raw)
		}
		// So are sessions: set at creation, never changed.
		e.want(e.call(admin, "PUT", qid, map[string]any{"properties": map[string]any{"requiresSession": true}}), 400, "BadRequest")
		sq := nid + "/queues/orders-fifo"
		r = e.call(admin, "PUT", sq, map[string]any{"properties": map[string]any{"requiresSession": true}})
		e.want(r, 200, "")
		if p, _ := r.doc["properties"].(map[string]any); p["requiresSession"] != true {
			t.Errorf("session queue %s", r.raw)
		}
		r = e.call(admin, "PUT", sq, map[string]any{"properties": map[string]any{"requiresSession": false}})
		e.want(r, 400, "BadRequest")
		if !strings.Contains(r.message(), "requiresSession cannot be changed") {
			t.Errorf("turning sessions off: %s", r.raw)
		}
		e.want(e.call(admin, "DELETE", sq, nil), 200, "")
		// The Basic tier has no sessions.
		basic := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-basic"
		e.want(e.call(admin, "PUT", basic, map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Basic"}}), 201, "")
		r = e.call(admin, "PUT", basic+"/queues/fifo", map[string]any{"properties": map[string]any{"requiresSession": true}})
		e.want(r, 400, "BadRequest")
		if !strings.Contains(r.message(), "Basic tier") {
			t.Errorf("sessions on Basic: %s", r.raw)
		}
		e.want(e.call(admin, "DELETE", basic, nil), 200, "")

		// Validation: 400s with clear messages, never 500.
		for _, c := range []struct {
			props map[string]any
			code  string
			text  string
		}{
			{map[string]any{"lockDuration": "PT6M"}, "BadRequest", "lockDuration"},
			{map[string]any{"lockDuration": "PT1S"}, "BadRequest", "lockDuration"},
			{map[string]any{"lockDuration": "1 minute"}, "BadRequest", "ISO 8601"},
			{map[string]any{"lockDuration": "P99999999999999999999D"}, "BadRequest", "lockDuration"},
			{map[string]any{"maxDeliveryCount": 0}, "BadRequest", "maxDeliveryCount"},
			{map[string]any{"maxDeliveryCount": -5}, "BadRequest", "maxDeliveryCount"},
			{map[string]any{"maxDeliveryCount": "ten"}, "InvalidRequestContent", ""},
			{map[string]any{"defaultMessageTimeToLive": "PT0S"}, "BadRequest", "defaultMessageTimeToLive"},
			{map[string]any{"defaultMessageTimeToLive": "P10675199DT2H48M5.4775808S"}, "BadRequest", "defaultMessageTimeToLive"},
			{map[string]any{"duplicateDetectionHistoryTimeWindow": "PT19S"}, "BadRequest", "duplicateDetectionHistoryTimeWindow"},
			{map[string]any{"duplicateDetectionHistoryTimeWindow": "P7DT1S"}, "BadRequest", "duplicateDetectionHistoryTimeWindow"},
			{map[string]any{"maxSizeInMegabytes": 1023}, "BadRequest", "maxSizeInMegabytes"},
			{map[string]any{"maxSizeInMegabytes": 5121}, "BadRequest", "maxSizeInMegabytes"},
			{map[string]any{"requiresSession": "yes"}, "InvalidRequestContent", ""},
			{map[string]any{"enablePartitioning": true}, "BadRequest", "not partitioned"},
			{map[string]any{"enableExpress": true}, "BadRequest", "enableExpress"},
			{map[string]any{"forwardTo": "other"}, "BadRequest", "auto-forwarding"},
			{map[string]any{"forwardDeadLetteredMessagesTo": "other"}, "BadRequest", "auto-forwarding"},
			{map[string]any{"status": "Disabled"}, "BadRequest", "Active"},
			{map[string]any{"autoDeleteOnIdle": "PT5M"}, "BadRequest", "not deleted when idle"},
			{map[string]any{"maxMessageSizeInKilobytes": 1024}, "BadRequest", "only on queues of a Premium namespace"},
		} {
			r := e.call(admin, "PUT", nid+"/queues/bad", map[string]any{"properties": c.props})
			e.want(r, 400, c.code)
			if !strings.Contains(r.message(), c.text) {
				t.Errorf("%v: message %q", c.props, r.message())
			}
		}
		e.want(e.call(admin, "GET", nid+"/queues/bad", nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "PUT", nid+"/queues/-bad", map[string]any{}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", nid+"/queues/"+strings.Repeat("q", 261), map[string]any{}), 400, "")

		// List and delete.
		r = e.call(admin, "GET", nid+"/queues", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 2 {
			t.Errorf("queue list %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "DELETE", qid, nil), 200, "")
		e.want(e.call(admin, "DELETE", qid, nil), 204, "")
		e.want(e.call(admin, "GET", qid, nil), 404, "ResourceNotFound")
		r = e.call(admin, "GET", nid+"/queues", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("queue list after delete %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "GET", nid, nil), 200, "")
	})
}

func TestServiceBusPermissions(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-perm-ns"
		qid := nid + "/queues/q1"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", nid, nsBody()), 201, "")
		e.want(e.call(admin, "PUT", qid, map[string]any{}), 200, "")

		reader := e.newApp(tid, "reader", false)
		tok := e.armToken(tid, reader.app.AppID, reader.secret)
		e.want(e.call(tok, "GET", nid, nil), 403, "AuthorizationFailed")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.sp.ID}}), 201, "")
		e.want(e.call(tok, "GET", nid, nil), 200, "")
		e.want(e.call(tok, "GET", qid, nil), 200, "")
		r := e.call(tok, "GET", nid+"/queues", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("reader's queue list %d %s", r.status, r.raw)
		}
		r = e.call(tok, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-reader-ns", nsBody())
		e.want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.message(), "'Microsoft.ServiceBus/namespaces/write'") {
			t.Errorf("message %q", r.message())
		}
		r = e.call(tok, "PUT", nid+"/queues/q2", map[string]any{})
		e.want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.message(), "'Microsoft.ServiceBus/namespaces/queues/write'") {
			t.Errorf("message %q", r.message())
		}
		e.want(e.call(tok, "DELETE", qid, nil), 403, "AuthorizationFailed")
		e.want(e.call(tok, "DELETE", nid, nil), 403, "AuthorizationFailed")
		e.want(e.call(admin, "GET", qid, nil), 200, "")
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		found := false
		for _, rec := range recs {
			if rec.Actor == reader.sp.ID && rec.Result == "AuthorizationFailed" && rec.Action == "Microsoft.ServiceBus/namespaces/queues/delete" {
				found = true
			}
		}
		if !found {
			t.Errorf("refusal not audited")
		}
	})
}

func TestServiceBusGroupCascade(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/doomed"
		keep := sub(e) + "/resourceGroups/kept"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", keep, map[string]any{"location": "westeurope"}), 201, "")
		doomed := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-doomed"
		kept := keep + "/providers/Microsoft.ServiceBus/namespaces/sb-kept"
		e.want(e.call(admin, "PUT", doomed, nsBody()), 201, "")
		e.want(e.call(admin, "PUT", doomed+"/queues/q", map[string]any{}), 200, "")
		e.want(e.call(admin, "PUT", kept, nsBody()), 201, "")
		e.want(e.call(admin, "PUT", kept+"/queues/q", map[string]any{}), 200, "")

		e.want(e.call(admin, "DELETE", rg, nil), 200, "")
		for _, id := range []string{doomed, doomed + "/queues/q"} {
			if _, err := e.st.GetResource(e.ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s after its group's delete: %v", id, err)
			}
		}
		e.want(e.call(admin, "GET", kept+"/queues/q", nil), 200, "")
		r := e.call(admin, "GET", sub(e)+"/providers/Microsoft.ServiceBus/namespaces", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("list after the cascade %d %s", r.status, r.raw)
		}
		// The name is free again.
		e.want(e.call(admin, "PUT", keep+"/providers/Microsoft.ServiceBus/namespaces/sb-doomed", nsBody()), 201, "")
	})
}

// A queue whose stored properties no longer decode is reported as the
// server's failure, never shown with default settings the data plane would
// then act on.
func TestServiceBusCorruptRecord(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-corrupt"
		qid := nid + "/queues/orders"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", nid, nsBody()), 201, "")
		e.want(e.call(admin, "PUT", qid, map[string]any{"properties": map[string]any{"maxDeliveryCount": 3}}), 200, "")
		res, err := e.st.GetResource(context.Background(), qid)
		if err != nil {
			t.Fatal(err)
		}
		res.Properties = []byte(`{"maxDeliveryCount":"three"}`)
		if err := e.st.UpdateResource(context.Background(), res); err != nil {
			t.Fatal(err)
		}
		e.want(e.call(admin, "GET", qid, nil), 500, "InternalServerError")
	})
}
