package servicebus_test

import (
	"context"
	"errors"
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

var nsBody = armtest.NamespaceBody

func TestServiceBusNamespaces(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-app-one"

		e.Want(e.Call(admin, "PUT", nid, nsBody()), 404, "ResourceGroupNotFound")
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "GET", nid, nil), 404, "ResourceNotFound")

		r := e.Call(admin, "PUT", nid, nsBody())
		e.Want(r, 201, "")
		props, _ := r.Doc["properties"].(map[string]any)
		sku, _ := r.Doc["sku"].(map[string]any)
		if r.Doc["id"] != nid || r.Doc["name"] != "sb-app-one" || r.Doc["type"] != "Microsoft.ServiceBus/namespaces" || r.Doc["location"] != "westeurope" ||
			sku["name"] != "Standard" || props["serviceBusEndpoint"] != "https://sb-app-one.servicebus.windows.net:443/" ||
			props["status"] != "Active" || props["provisioningState"] != "Succeeded" || props["createdAt"] == nil {
			t.Errorf("created namespace %s", r.Raw)
		}
		body := nsBody()
		body["tags"] = map[string]string{"env": "test"}
		r = e.Call(admin, "PUT", nid, body)
		e.Want(r, 200, "")
		if tags, _ := r.Doc["tags"].(map[string]any); tags["env"] != "test" {
			t.Errorf("tags %s", r.Raw)
		}
		e.Want(e.Call(admin, "PUT", nid, map[string]any{"location": "eastus"}), 400, "InvalidResourceLocation")

		// Names.
		for _, bad := range []string{"short", "1starts-with-digit", "ends-with-hyphen-", "has_underscore", strings.Repeat("a", 51)} {
			r := e.Call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/"+bad, nsBody())
			e.Want(r, 400, "BadRequest")
		}
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-other", map[string]any{"sku": map[string]any{"name": "Standard"}}), 400, "LocationRequired")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-other", map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Gold"}}), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-other", `{"location":1}`), 400, "InvalidRequestContent")
		// Global: another group, another tenant.
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/resourceGroups/second", map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/resourceGroups/second/providers/Microsoft.ServiceBus/namespaces/SB-APP-ONE", nsBody()), 409, "Conflict")
		fab := e.AdminToken(e.Fabrikam)
		fsub := "/subscriptions/" + e.Fabrikam.Tenant.SubscriptionID
		e.Want(e.Call(fab, "PUT", fsub+"/resourceGroups/f", map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(fab, "PUT", fsub+"/resourceGroups/f/providers/Microsoft.ServiceBus/namespaces/sb-app-one", nsBody()), 409, "Conflict")
		e.Want(e.Call(fab, "GET", fsub+"/resourceGroups/f/providers/Microsoft.ServiceBus/namespaces/sb-app-one", nil), 404, "ResourceNotFound")

		// Lists.
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/resourceGroups/second/providers/Microsoft.ServiceBus/namespaces/sb-second", nsBody()), 201, "")
		r = e.Call(admin, "GET", rg+"/providers/Microsoft.ServiceBus/namespaces", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("group list %d %s", r.Status, r.Raw)
		}
		r = e.Call(admin, "GET", armtest.Sub(e)+"/providers/Microsoft.ServiceBus/namespaces", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 2 {
			t.Errorf("subscription list %d %s", r.Status, r.Raw)
		}
		e.Want(e.Call(admin, "POST", nid, nil), 405, "MethodNotAllowed")

		// Deleting the namespace deletes its queues and the role assignments at its scope.
		e.Want(e.Call(admin, "PUT", nid+"/queues/orders", map[string]any{}), 200, "")
		ra := nid + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
		e.Want(e.Call(admin, "PUT", ra, map[string]any{"properties": map[string]any{"roleDefinitionId": rbac.RoleReader, "principalId": e.Contoso.AdminSP.ID}}), 201, "")
		e.Want(e.Call(admin, "DELETE", nid, nil), 200, "")
		e.Want(e.Call(admin, "DELETE", nid, nil), 204, "")
		e.Want(e.Call(admin, "GET", nid, nil), 404, "ResourceNotFound")
		e.Want(e.Call(admin, "GET", nid+"/queues/orders", nil), 404, "ParentResourceNotFound")
		if _, err := e.St.GetResource(e.Ctx, nid+"/queues/orders"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("queue after its namespace's delete: %v", err)
		}
		e.Want(e.Call(admin, "GET", ra, nil), 404, "RoleAssignmentNotFound")
		// The name is free again, for anyone.
		e.Want(e.Call(fab, "PUT", fsub+"/resourceGroups/f/providers/Microsoft.ServiceBus/namespaces/sb-app-one", nsBody()), 201, "")

		recs, err := e.St.ListAudit(e.Ctx, store.AuditQuery{TenantID: tid})
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
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		rg := armtest.Sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-queues"
		qid := nid + "/queues/orders"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", qid, map[string]any{}), 404, "ParentResourceNotFound")
		e.Want(e.Call(admin, "PUT", nid, nsBody()), 201, "")
		e.Want(e.Call(admin, "GET", qid, nil), 404, "ResourceNotFound")

		// Defaults. Created, the answer is 200 all the same (armservicebus).
		r := e.Call(admin, "PUT", qid, map[string]any{})
		e.Want(r, 200, "")
		p, _ := r.Doc["properties"].(map[string]any)
		cd, _ := p["countDetails"].(map[string]any)
		if r.Doc["id"] != qid || r.Doc["name"] != "orders" || r.Doc["type"] != "Microsoft.ServiceBus/namespaces/queues" ||
			p["lockDuration"] != "PT1M" || p["maxDeliveryCount"] != float64(10) || p["defaultMessageTimeToLive"] != "P10675199DT2H48M5.4775807S" ||
			p["requiresDuplicateDetection"] != false || p["duplicateDetectionHistoryTimeWindow"] != "PT10M" || p["deadLetteringOnMessageExpiration"] != false ||
			p["maxSizeInMegabytes"] != float64(1024) || p["requiresSession"] != false || p["status"] != "Active" ||
			cd["activeMessageCount"] != float64(0) || cd["deadLetterMessageCount"] != float64(0) || cd["scheduledMessageCount"] != float64(0) ||
			p["createdAt"] == nil || p["updatedAt"] == nil {
			t.Errorf("default queue %s", r.Raw)
		}
		r2 := e.Call(admin, "GET", qid, nil)
		e.Want(r2, 200, "")
		if string(r2.Raw) != string(r.Raw) {
			t.Errorf("GET %s, PUT %s", r2.Raw, r.Raw)
		}

		// Explicit values, normalised; PUT replaces.
		r = e.Call(admin, "PUT", qid, map[string]any{"properties": map[string]any{"lockDuration": "PT300S", "maxDeliveryCount": 3, "defaultMessageTimeToLive": "P1D",
			"duplicateDetectionHistoryTimeWindow": "PT20S", "deadLetteringOnMessageExpiration": true, "maxSizeInMegabytes": 5120, "requiresSession": false}})
		e.Want(r, 200, "")
		p, _ = r.Doc["properties"].(map[string]any)
		if p["lockDuration"] != "PT5M" || p["maxDeliveryCount"] != float64(3) || p["defaultMessageTimeToLive"] != "P1D" || p["duplicateDetectionHistoryTimeWindow"] != "PT20S" ||
			p["deadLetteringOnMessageExpiration"] != true || p["maxSizeInMegabytes"] != float64(5120) {
			t.Errorf("updated queue %s", r.Raw)
		}
		// Duplicate detection is fixed at creation.
		e.Want(e.Call(admin, "PUT", qid, map[string]any{"properties": map[string]any{"requiresDuplicateDetection": true}}), 400, "BadRequest")
		r = e.Call(admin, "PUT", nid+"/queues/dedup", map[string]any{"properties": map[string]any{"requiresDuplicateDetection": true, "duplicateDetectionHistoryTimeWindow": "P7D"}})
		e.Want(r, 200, "")
		if p, _ := r.Doc["properties"].(map[string]any); p["requiresDuplicateDetection"] != true || p["duplicateDetectionHistoryTimeWindow"] != "P7D" {
			t.Errorf("dedup queue %s", r.Raw)
		}
		// A queue read back and written again with every property it shows
		// (what az servicebus queue update does) is taken.
		got := e.Call(admin, "GET", nid+"/queues/dedup", nil)
		e.Want(got, 200, "")
		gp, _ := got.Doc["properties"].(map[string]any)
		if gp["autoDeleteOnIdle"] != "P10675199DT2H48M5.4775807S" || gp["enableBatchedOperations"] != true || gp["enablePartitioning"] != false ||
			gp["enableExpress"] != false || gp["status"] != "Active" {
			t.Errorf("queue properties %s", got.Raw)
		}
		writable := map[string]any{}
		for _, k := range []string{"lockDuration", "maxDeliveryCount", "defaultMessageTimeToLive", "requiresDuplicateDetection",
			"duplicateDetectionHistoryTimeWindow", "deadLetteringOnMessageExpiration", "maxSizeInMegabytes", "requiresSession",
			"maxMessageSizeInKilobytes", "autoDeleteOnIdle", "enableBatchedOperations", "enablePartitioning", "enableExpress", "status"} {
			writable[k] = gp[k]
		}
		writable["maxDeliveryCount"] = 7
		r = e.Call(admin, "PUT", nid+"/queues/dedup", map[string]any{"properties": writable})
		e.Want(r, 200, "")
		if p, _ := r.Doc["properties"].(map[string]any); p["maxDeliveryCount"] != float64(7) {
			t.Errorf("updated from its own view %s", r.Raw)
		}
		// So are sessions: set at creation, never changed.
		e.Want(e.Call(admin, "PUT", qid, map[string]any{"properties": map[string]any{"requiresSession": true}}), 400, "BadRequest")
		sq := nid + "/queues/orders-fifo"
		r = e.Call(admin, "PUT", sq, map[string]any{"properties": map[string]any{"requiresSession": true}})
		e.Want(r, 200, "")
		if p, _ := r.Doc["properties"].(map[string]any); p["requiresSession"] != true {
			t.Errorf("session queue %s", r.Raw)
		}
		r = e.Call(admin, "PUT", sq, map[string]any{"properties": map[string]any{"requiresSession": false}})
		e.Want(r, 400, "BadRequest")
		if !strings.Contains(r.Message(), "requiresSession cannot be changed") {
			t.Errorf("turning sessions off: %s", r.Raw)
		}
		e.Want(e.Call(admin, "DELETE", sq, nil), 200, "")
		// The Basic tier has no sessions.
		basic := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-basic"
		e.Want(e.Call(admin, "PUT", basic, map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Basic"}}), 201, "")
		r = e.Call(admin, "PUT", basic+"/queues/fifo", map[string]any{"properties": map[string]any{"requiresSession": true}})
		e.Want(r, 400, "BadRequest")
		if !strings.Contains(r.Message(), "Basic tier") {
			t.Errorf("sessions on Basic: %s", r.Raw)
		}
		e.Want(e.Call(admin, "DELETE", basic, nil), 200, "")

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
			r := e.Call(admin, "PUT", nid+"/queues/bad", map[string]any{"properties": c.props})
			e.Want(r, 400, c.code)
			if !strings.Contains(r.Message(), c.text) {
				t.Errorf("%v: message %q", c.props, r.Message())
			}
		}
		e.Want(e.Call(admin, "GET", nid+"/queues/bad", nil), 404, "ResourceNotFound")
		e.Want(e.Call(admin, "PUT", nid+"/queues/-bad", map[string]any{}), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", nid+"/queues/"+strings.Repeat("q", 261), map[string]any{}), 400, "")

		// List and delete.
		r = e.Call(admin, "GET", nid+"/queues", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 2 {
			t.Errorf("queue list %d %s", r.Status, r.Raw)
		}
		e.Want(e.Call(admin, "DELETE", qid, nil), 200, "")
		e.Want(e.Call(admin, "DELETE", qid, nil), 204, "")
		e.Want(e.Call(admin, "GET", qid, nil), 404, "ResourceNotFound")
		r = e.Call(admin, "GET", nid+"/queues", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("queue list after delete %d %s", r.Status, r.Raw)
		}
		e.Want(e.Call(admin, "GET", nid, nil), 200, "")
	})
}

func TestServiceBusPermissions(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-perm-ns"
		qid := nid + "/queues/q1"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", nid, nsBody()), 201, "")
		e.Want(e.Call(admin, "PUT", qid, map[string]any{}), 200, "")

		reader := e.NewApp(tid, "reader", false)
		tok := e.ARMToken(tid, reader.App.AppID, reader.Secret)
		e.Want(e.Call(tok, "GET", nid, nil), 403, "AuthorizationFailed")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.SP.ID}}), 201, "")
		e.Want(e.Call(tok, "GET", nid, nil), 200, "")
		e.Want(e.Call(tok, "GET", qid, nil), 200, "")
		r := e.Call(tok, "GET", nid+"/queues", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("reader's queue list %d %s", r.Status, r.Raw)
		}
		r = e.Call(tok, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-reader-ns", nsBody())
		e.Want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.Message(), "'Microsoft.ServiceBus/namespaces/write'") {
			t.Errorf("message %q", r.Message())
		}
		r = e.Call(tok, "PUT", nid+"/queues/q2", map[string]any{})
		e.Want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.Message(), "'Microsoft.ServiceBus/namespaces/queues/write'") {
			t.Errorf("message %q", r.Message())
		}
		e.Want(e.Call(tok, "DELETE", qid, nil), 403, "AuthorizationFailed")
		e.Want(e.Call(tok, "DELETE", nid, nil), 403, "AuthorizationFailed")
		e.Want(e.Call(admin, "GET", qid, nil), 200, "")
		recs, err := e.St.ListAudit(e.Ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		found := false
		for _, rec := range recs {
			if rec.Actor == reader.SP.ID && rec.Result == "AuthorizationFailed" && rec.Action == "Microsoft.ServiceBus/namespaces/queues/delete" {
				found = true
			}
		}
		if !found {
			t.Errorf("refusal not audited")
		}
	})
}

func TestServiceBusGroupCascade(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		rg := armtest.Sub(e) + "/resourceGroups/doomed"
		keep := armtest.Sub(e) + "/resourceGroups/kept"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", keep, map[string]any{"location": "westeurope"}), 201, "")
		doomed := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-doomed"
		kept := keep + "/providers/Microsoft.ServiceBus/namespaces/sb-kept"
		e.Want(e.Call(admin, "PUT", doomed, nsBody()), 201, "")
		e.Want(e.Call(admin, "PUT", doomed+"/queues/q", map[string]any{}), 200, "")
		e.Want(e.Call(admin, "PUT", kept, nsBody()), 201, "")
		e.Want(e.Call(admin, "PUT", kept+"/queues/q", map[string]any{}), 200, "")

		e.Want(e.Call(admin, "DELETE", rg, nil), 200, "")
		for _, id := range []string{doomed, doomed + "/queues/q"} {
			if _, err := e.St.GetResource(e.Ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s after its group's delete: %v", id, err)
			}
		}
		e.Want(e.Call(admin, "GET", kept+"/queues/q", nil), 200, "")
		r := e.Call(admin, "GET", armtest.Sub(e)+"/providers/Microsoft.ServiceBus/namespaces", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("list after the cascade %d %s", r.Status, r.Raw)
		}
		// The name is free again.
		e.Want(e.Call(admin, "PUT", keep+"/providers/Microsoft.ServiceBus/namespaces/sb-doomed", nsBody()), 201, "")
	})
}

// A queue whose stored properties no longer decode is reported as the
// server's failure, never shown with default settings the data plane would
// then act on.
func TestServiceBusCorruptRecord(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		rg := armtest.Sub(e) + "/resourceGroups/app"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-corrupt"
		qid := nid + "/queues/orders"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", nid, nsBody()), 201, "")
		e.Want(e.Call(admin, "PUT", qid, map[string]any{"properties": map[string]any{"maxDeliveryCount": 3}}), 200, "")
		res, err := e.St.GetResource(context.Background(), qid)
		if err != nil {
			t.Fatal(err)
		}
		res.Properties = []byte(`{"maxDeliveryCount":"three"}`)
		if err := e.St.UpdateResource(context.Background(), res); err != nil {
			t.Fatal(err)
		}
		e.Want(e.Call(admin, "GET", qid, nil), 500, "InternalServerError")
	})
}
