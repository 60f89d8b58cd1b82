package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

func TestRoleCommandShape(t *testing.T) {
	c := &cli{}
	cmd := c.roleCommand()
	for _, path := range [][]string{{"assignment", "create"}, {"assignment", "list"}, {"assignment", "delete"}, {"definition", "list"}, {"explain"}} {
		sub, _, err := cmd.Find(path)
		if err != nil || sub.Name() != path[len(path)-1] {
			t.Errorf("role %s: %v", strings.Join(path, " "), err)
		}
	}
	// Required flags are checked before anything is called.
	_, _, err := runShape(t, c, c.roleCommand(), "role", "assignment", "create", "--role", "Reader")
	if err == nil || !strings.Contains(err.Error(), "assignee") {
		t.Errorf("create without --assignee: %v", err)
	}
	_, _, err = runShape(t, c, c.roleCommand(), "role", "explain", "--assignee", "x")
	if err == nil || !strings.Contains(err.Error(), "action") {
		t.Errorf("explain without --action: %v", err)
	}
}

// TestArmClientErrors: the client sends api-version and maps ARM's error
// shape, whatever the host dialled.
func TestArmClientErrors(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "management.azure.com" || r.URL.Query().Get("api-version") == "" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/missing") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"RoleAssignmentNotFound","message":"gone"}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value":[{"name":"x","properties":{"roleName":"Reader"}}]}`))
	}))
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com"
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	a := &armClient{pl: runtime.NewPipeline("test", "v0", runtime.PipelineOptions{}, &policy.ClientOptions{Transport: &http.Client{Transport: tr}, Retry: policy.RetryOptions{MaxRetries: -1}})}
	var out struct{ Value []roleDefinition }
	if err := a.do(t.Context(), http.MethodGet, "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions", nil, nil, &out); err != nil || len(out.Value) != 1 || out.Value[0].Properties.RoleName != "Reader" {
		t.Fatalf("list: %v %+v", err, out)
	}
	err := a.do(t.Context(), http.MethodDelete, "/x/missing", nil, nil, nil)
	var ae *armCallError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "RoleAssignmentNotFound" {
		t.Errorf("missing: %v", err)
	}
}

// The role commands end to end, through Resource Manager on a real server:
// assign a role, see the decision and its explanation change, remove it.
func TestRoleCommandsAgainstServer(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "roles")
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", "reporter")
	ok(t, dir, "ad", "sp", "create", "--id", app.AppID)

	rg := "/subscriptions/" + tenant.SubscriptionID + "/resourceGroups/reports"
	action := "Microsoft.Resources/subscriptions/resourceGroups/read"
	before := ok(t, dir, "role", "explain", "--assignee", app.AppID, "--action", action, "--scope", rg, "-o", "json")
	if !strings.Contains(before, `"allowed": false`) {
		t.Fatalf("explain before any assignment:\n%s", before)
	}
	defs := ok(t, dir, "role", "definition", "list", "--name", "Reader", "-o", "json")
	if !strings.Contains(defs, "acdd72a7-3385-48ef-bd42-f606fba81ae7") {
		t.Fatalf("role definition list --name Reader:\n%s", defs)
	}
	created := ok(t, dir, "role", "assignment", "create", "--assignee", app.AppID, "--role", "Reader",
		"--scope", "/subscriptions/"+tenant.SubscriptionID, "-o", "json")
	var ra struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		RoleName string `json:"roleDefinitionName"`
	}
	if err := json.Unmarshal([]byte(created), &ra); err != nil || ra.ID == "" || ra.RoleName != "Reader" {
		t.Fatalf("role assignment create: %v\n%s", err, created)
	}
	// The table names the role and the assignment, not their ids.
	listed := ok(t, dir, "role", "assignment", "list", "--assignee", app.AppID, "-o", "table")
	if !strings.Contains(listed, ra.Name+"  Reader") || strings.Contains(listed, "acdd72a7-3385-48ef-bd42-f606fba81ae7") {
		t.Fatalf("role assignment list -o table:\n%s", listed)
	}
	after := ok(t, dir, "role", "explain", "--assignee", app.AppID, "--action", action, "--scope", rg, "-o", "json")
	if !strings.Contains(after, `"allowed": true`) || !strings.Contains(after, "Reader") {
		t.Fatalf("explain after the assignment:\n%s", after)
	}
	write := ok(t, dir, "role", "explain", "--assignee", app.AppID, "--action", "Microsoft.Resources/subscriptions/resourceGroups/write", "--scope", rg, "-o", "json")
	if !strings.Contains(write, `"allowed": false`) {
		t.Fatalf("Reader may write:\n%s", write)
	}
	ok(t, dir, "role", "assignment", "delete", "--ids", ra.ID)
	gone := ok(t, dir, "role", "explain", "--assignee", app.AppID, "--action", action, "--scope", rg, "-o", "json")
	if !strings.Contains(gone, `"allowed": false`) {
		t.Fatalf("explain after deleting the assignment:\n%s", gone)
	}
}

// role assignment create by object id (no Graph lookup, as az does), and
// delete by assignee, role and scope with az's rules.
func TestRoleAssignmentByObjectIDAndDeleteByFilter(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "rbac")
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", "collector")
	var sp azclient.ServicePrincipal
	okJSON(t, dir, &sp, "ad", "sp", "create", "--id", app.AppID)
	sub := "/subscriptions/" + tenant.SubscriptionID
	action := "Microsoft.Resources/subscriptions/resourceGroups/read"
	allowed := func() bool {
		t.Helper()
		var e explanation
		okJSON(t, dir, &e, "role", "explain", "--assignee", sp.ID, "--action", action, "--scope", sub)
		return e.Allowed
	}

	// az's usage rules, checked before anything is called.
	fails(t, dir, "--assignee-object-id", "role", "assignment", "create", "--role", "Reader", "--assignee", sp.ID, "--assignee-object-id", sp.ID)
	fails(t, dir, "--assignee-object-id", "role", "assignment", "create", "--role", "Reader", "--assignee", sp.ID, "--assignee-principal-type", "ServicePrincipal")
	fails(t, dir, "ServicePrincipal", "role", "assignment", "create", "--role", "Reader", "--assignee-object-id", sp.ID, "--assignee-principal-type", "Robot")
	fails(t, dir, "not an object id", "role", "assignment", "create", "--role", "Reader", "--assignee-object-id", app.AppID+"x")
	// ARM checks the type it is told (UnmatchedPrincipalType).
	fails(t, dir, "UnmatchedPrincipalType", "role", "assignment", "create", "--role", "Reader", "--assignee-object-id", sp.ID,
		"--assignee-principal-type", "User", "--scope", sub)

	var ra roleAssignment
	okJSON(t, dir, &ra, "role", "assignment", "create", "--role", "Reader", "--assignee-object-id", strings.ToUpper(sp.ID),
		"--assignee-principal-type", "serviceprincipal", "--scope", sub)
	if ra.Properties.PrincipalID != sp.ID || ra.Properties.PrincipalType != "ServicePrincipal" || !allowed() {
		t.Fatalf("create by object id: %+v", ra)
	}

	// delete: no filter needs --yes; --ids excludes the filters; the
	// filters must all match; nothing matched is an error.
	fails(t, dir, "--yes", "role", "assignment", "delete")
	fails(t, dir, "not both", "role", "assignment", "delete", "--ids", ra.ID, "--role", "Reader")
	fails(t, dir, "no matched assignments", "role", "assignment", "delete", "--assignee", app.AppID, "--role", "Contributor", "--scope", sub)
	fails(t, dir, "no matched assignments", "role", "assignment", "delete", "--assignee", app.AppID, "--role", "Reader", "--scope", sub+"/resourceGroups/elsewhere")
	if !allowed() {
		t.Fatal("a refused delete removed the assignment")
	}
	ok(t, dir, "role", "assignment", "delete", "--assignee", app.AppID, "--role", "Reader", "--scope", sub)
	if allowed() {
		t.Fatal("still allowed after delete --assignee --role --scope")
	}

	// An assignment above the scope goes only with --include-inherited.
	okJSON(t, dir, &ra, "role", "assignment", "create", "--role", "Reader", "--assignee-object-id", sp.ID, "--scope", sub)
	rg := sub + "/resourceGroups/reports"
	fails(t, dir, "no matched assignments", "role", "assignment", "delete", "--assignee-object-id", sp.ID, "--scope", rg)
	ok(t, dir, "role", "assignment", "delete", "--assignee-object-id", sp.ID, "--scope", rg, "--include-inherited")
	if allowed() {
		t.Fatal("still allowed after delete --include-inherited")
	}
}
