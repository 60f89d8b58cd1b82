package arm_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

func (e *env) armOptions() *azarm.ClientOptions { return armtest.ClientOptions(e.client) }

func (e *env) credential(tenantID, clientID, secret string) azcore.TokenCredential {
	e.t.Helper()
	return armtest.SecretCredential(e.t, e.client, tenantID, clientID, secret)
}

func (e *env) deploymentsClient(sub string, cred azcore.TokenCredential) (*armresources.DeploymentsClient, *armresources.DeploymentOperationsClient) {
	e.t.Helper()
	d, err := armresources.NewDeploymentsClient(sub, cred, e.armOptions())
	must(e.t, err)
	o, err := armresources.NewDeploymentOperationsClient(sub, cred, e.armOptions())
	must(e.t, err)
	return d, o
}

var fastPoll = &runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond}

// brokerTemplate is the shared-resource-broker package's mainTemplate
// (examples/): a user-assigned identity, a vault, and a role assignment of
// the identity on the vault whose principalId comes from reference().
var brokerTemplate = func() string {
	b, err := os.ReadFile("../../examples/shared-resource-broker/mainTemplate.json")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func parseJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	must(t, json.Unmarshal([]byte(s), &m))
	return m
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("got %v, want %d %s", err, status, code)
	}
}

// TestDeploymentsSDK drives Microsoft.Resources/deployments in a resource
// group with the real armresources clients: the poller of
// BeginCreateOrUpdate to Succeeded, Get, the group's list, the operations
// (one per resource), exportTemplate, validate, a failed deployment with
// the resource provider's own error, and delete.
func TestDeploymentsSDK(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		sub := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		rg := "/subscriptions/" + sub + "/resourceGroups/deploy-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		cred := e.credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
		dc, oc := e.deploymentsClient(sub, cred)
		ctx := e.ctx

		params := map[string]any{"vaultName": map[string]any{"value": "kv-broker-1"}, "identityName": map[string]any{"value": "id-kv-broker-1"}}
		poller, err := dc.BeginCreateOrUpdate(ctx, "deploy-rg", "broker", armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: parseJSON(t, brokerTemplate), Parameters: params}}, nil)
		must(t, err)
		res, err := poller.PollUntilDone(ctx, fastPoll)
		must(t, err)
		p := res.Properties
		if *p.ProvisioningState != armresources.ProvisioningStateSucceeded || *p.Mode != armresources.DeploymentModeIncremental || *res.Name != "broker" {
			t.Fatalf("result %+v", p)
		}
		outs := p.Outputs.(map[string]any)
		uri := outs["vaultUri"].(map[string]any)["value"]
		if uri != "https://kv-broker-1.vault.azure.net/" {
			t.Fatalf("vaultUri output %v", outs)
		}
		ident := e.call(admin, "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-kv-broker-1", nil)
		e.want(ident, 200, "")
		principal := ident.doc["properties"].(map[string]any)["principalId"]
		if outs["identityPrincipalId"].(map[string]any)["value"] != principal {
			t.Fatalf("identityPrincipalId output %v, identity's %v", outs["identityPrincipalId"], principal)
		}
		// The role assignment exists, for the identity, on the vault.
		ras := e.call(admin, "GET", rg+"/providers/Microsoft.KeyVault/vaults/kv-broker-1/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()", nil)
		e.want(ras, 200, "")
		found := false
		for _, v := range ras.doc["value"].([]any) {
			pr := v.(map[string]any)["properties"].(map[string]any)
			found = found || pr["principalId"] == principal
		}
		if !found {
			t.Fatalf("no role assignment for %v: %s", principal, ras.raw)
		}
		// Parameters show with their values, defaults included.
		loc := p.Parameters.(map[string]any)["location"].(map[string]any)
		if loc["type"] != "String" || loc["value"] != "westeurope" {
			t.Fatalf("parameter shown as %v", loc)
		}

		got, err := dc.Get(ctx, "deploy-rg", "broker", nil)
		must(t, err)
		if *got.Properties.ProvisioningState != armresources.ProvisioningStateSucceeded || len(got.Properties.OutputResources) != 5 {
			t.Fatalf("get %+v", got.Properties)
		}
		var names []string
		for pg := dc.NewListByResourceGroupPager("deploy-rg", nil); pg.More(); {
			page, err := pg.NextPage(ctx)
			must(t, err)
			for _, d := range page.Value {
				names = append(names, *d.Name)
			}
		}
		if strings.Join(names, ",") != "broker" {
			t.Fatalf("list %v", names)
		}
		var ops []*armresources.DeploymentOperation
		for pg := oc.NewListPager("deploy-rg", "broker", nil); pg.More(); {
			page, err := pg.NextPage(ctx)
			must(t, err)
			ops = append(ops, page.Value...)
		}
		if len(ops) != 5 {
			t.Fatalf("%d operations", len(ops))
		}
		for _, op := range ops {
			if *op.Properties.ProvisioningState != "Succeeded" || *op.Properties.ProvisioningOperation != armresources.ProvisioningOperationCreate || op.Properties.TargetResource.ID == nil {
				t.Fatalf("operation %+v", op.Properties)
			}
		}
		one, err := oc.Get(ctx, "deploy-rg", "broker", *ops[0].OperationID, nil)
		must(t, err)
		if *one.Properties.TargetResource.ID != *ops[0].Properties.TargetResource.ID {
			t.Fatalf("operation get %+v", one.Properties)
		}
		exp, err := dc.ExportTemplate(ctx, "deploy-rg", "broker", nil)
		must(t, err)
		if exp.Template.(map[string]any)["contentVersion"] != "1.0.0.0" || len(exp.Template.(map[string]any)["resources"].([]any)) != 5 {
			t.Fatalf("exported %v", exp.Template)
		}

		// validate: a good deployment lists what it would create; a bad
		// one answers InvalidTemplate with the template's position.
		vp, err := dc.BeginValidate(ctx, "deploy-rg", "check", armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: parseJSON(t, brokerTemplate), Parameters: map[string]any{"vaultName": map[string]any{"value": "kv-other"}}}}, nil)
		must(t, err)
		vr, err := vp.PollUntilDone(ctx, fastPoll)
		must(t, err)
		if len(vr.Properties.ValidatedResources) != 5 {
			t.Fatalf("validate %+v", vr.Properties)
		}
		vp, err = dc.BeginValidate(ctx, "deploy-rg", "check", armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: parseJSON(t, brokerTemplate), Parameters: map[string]any{"vaultName": map[string]any{"value": "ab"}}}}, nil)
		if err == nil {
			_, err = vp.PollUntilDone(ctx, fastPoll)
		}
		wantCode(t, err, http.StatusBadRequest, "InvalidTemplate")
		if _, err := dc.Get(ctx, "deploy-rg", "check", nil); err == nil {
			t.Fatal("validate stored a deployment")
		}

		// A resource its provider refuses fails the deployment with the
		// provider's own error in the operation.
		poller, err = dc.BeginCreateOrUpdate(ctx, "deploy-rg", "bad", armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: parseJSON(t, brokerTemplate), Parameters: map[string]any{"vaultName": map[string]any{"value": "a--b"}}}}, nil)
		must(t, err)
		_, err = poller.PollUntilDone(ctx, fastPoll)
		wantCode(t, err, http.StatusOK, "DeploymentFailed")
		bad, err := dc.Get(ctx, "deploy-rg", "bad", nil)
		must(t, err)
		if *bad.Properties.ProvisioningState != armresources.ProvisioningStateFailed || *bad.Properties.Error.Code != "DeploymentFailed" ||
			*bad.Properties.Error.Details[0].Code != "VaultNameNotValid" {
			t.Fatalf("failed deployment %+v", bad.Properties.Error)
		}

		// Delete removes the record, not the resources.
		dp, err := dc.BeginDelete(ctx, "deploy-rg", "broker", nil)
		must(t, err)
		_, err = dp.PollUntilDone(ctx, fastPoll)
		must(t, err)
		_, err = dc.Get(ctx, "deploy-rg", "broker", nil)
		wantCode(t, err, http.StatusNotFound, "DeploymentNotFound")
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.KeyVault/vaults/kv-broker-1", nil), 200, "")
	})
}

// TestDeploymentActsAsCaller: a deployment creates each resource as the
// principal that sent it. A Contributor of the group may deploy the
// identity and the vault but not the role assignment (Contributor has no
// Microsoft.Authorization/*/write), exactly as a PUT of its own would be
// refused; a Reader may not deploy at all.
func TestDeploymentActsAsCaller(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		sub := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		rg := "/subscriptions/" + sub + "/resourceGroups/caller-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		contributor := e.newApp(tb.Tenant.ID, "contributor", false)
		reader := e.newApp(tb.Tenant.ID, "reader", false)
		for _, a := range []struct {
			who  app
			role string
		}{{contributor, rbac.RoleContributor}, {reader, rbac.RoleReader}} {
			must(t, e.st.CreateRoleAssignment(e.ctx, store.RoleAssignment{TenantID: tb.Tenant.ID, ID: uuid.NewString(), Scope: rg,
				RoleDefinitionID: a.role, PrincipalID: a.who.sp.ID, PrincipalType: store.PrincipalServicePrincipal}))
		}
		body := armresources.Deployment{Properties: &armresources.DeploymentProperties{Mode: to.Ptr(armresources.DeploymentModeIncremental),
			Template: parseJSON(t, brokerTemplate), Parameters: map[string]any{"vaultName": map[string]any{"value": "kv-contrib"}}}}

		rc, _ := e.deploymentsClient(sub, e.credential(tb.Tenant.ID, reader.app.AppID, reader.secret))
		_, err := rc.BeginCreateOrUpdate(e.ctx, "caller-rg", "d", body, nil)
		wantCode(t, err, http.StatusForbidden, "AuthorizationFailed")

		cc, oc := e.deploymentsClient(sub, e.credential(tb.Tenant.ID, contributor.app.AppID, contributor.secret))
		poller, err := cc.BeginCreateOrUpdate(e.ctx, "caller-rg", "d", body, nil)
		must(t, err)
		_, err = poller.PollUntilDone(e.ctx, fastPoll)
		wantCode(t, err, http.StatusOK, "DeploymentFailed")
		states := map[string]string{}
		for pg := oc.NewListPager("caller-rg", "d", nil); pg.More(); {
			page, err := pg.NextPage(e.ctx)
			must(t, err)
			for _, op := range page.Value {
				code := ""
				if m := op.Properties.StatusMessage; m != nil && m.Error != nil {
					code = *m.Error.Code
				}
				states[*op.Properties.TargetResource.ResourceType] = *op.Properties.ProvisioningState + " " + code
			}
		}
		want := map[string]string{"Microsoft.ManagedIdentity/userAssignedIdentities": "Succeeded ", "Microsoft.KeyVault/vaults": "Succeeded ",
			"Microsoft.Authorization/roleAssignments": "Failed AuthorizationFailed"}
		if fmt.Sprint(states) != fmt.Sprint(want) {
			t.Fatalf("operations %v, want %v", states, want)
		}
	})
}

// TestDeploymentModesAndRefusals: Complete mode deletes the group's
// resources the template does not list; deploymentScripts and types no
// provider serves are refused at validation; a subscription deployment
// creates a resource group; cancel stops a running deployment.
func TestDeploymentModesAndRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		sub := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		rg := "/subscriptions/" + sub + "/resourceGroups/modes-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/stray", map[string]any{"location": "westeurope"}), 201, "")
		dc, oc := e.deploymentsClient(sub, e.credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText))
		ctx := e.ctx
		tmpl := func(resources string) map[string]any {
			return parseJSON(t, `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "resources": [`+resources+`]}`)
		}
		deploy := func(name string, mode armresources.DeploymentMode, template map[string]any) error {
			poller, err := dc.BeginCreateOrUpdate(ctx, "modes-rg", name, armresources.Deployment{Properties: &armresources.DeploymentProperties{Mode: to.Ptr(mode), Template: template}}, nil)
			if err != nil {
				return err
			}
			_, err = poller.PollUntilDone(ctx, fastPoll)
			return err
		}
		kept := `{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "kept", "location": "westeurope"}`
		must(t, deploy("complete", armresources.DeploymentModeComplete, tmpl(kept)))
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kept", nil), 200, "")
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/stray", nil), 404, "")
		deleted := false
		for pg := oc.NewListPager("modes-rg", "complete", nil); pg.More(); {
			page, err := pg.NextPage(ctx)
			must(t, err)
			for _, op := range page.Value {
				deleted = deleted || (*op.Properties.ProvisioningOperation == armresources.ProvisioningOperationDelete && strings.HasSuffix(*op.Properties.TargetResource.ID, "/stray"))
			}
		}
		if !deleted {
			t.Fatal("no Delete operation for the stray identity")
		}

		err := deploy("script", armresources.DeploymentModeIncremental, tmpl(`{"type": "Microsoft.Resources/deploymentScripts", "apiVersion": "2023-08-01", "name": "s", "location": "westeurope", "kind": "AzureCLI", "properties": {}}`))
		wantCode(t, err, http.StatusBadRequest, "InvalidTemplate")
		if !strings.Contains(err.Error(), "container runtime") {
			t.Fatalf("deploymentScripts refusal: %v", err)
		}
		err = deploy("unknown", armresources.DeploymentModeIncremental, tmpl(`{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "st", "location": "westeurope"}`))
		wantCode(t, err, http.StatusBadRequest, "NoRegisteredProviderFound")
		err = deploy("parse", armresources.DeploymentModeIncremental, map[string]any{"resources": []any{}})
		wantCode(t, err, http.StatusBadRequest, "InvalidTemplate")

		// Cancel: a long serial loop is canceled while it runs.
		poller, err := dc.BeginCreateOrUpdate(ctx, "modes-rg", "long", armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: tmpl(`{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
			  "name": "[concat('serial-', copyIndex())]", "location": "westeurope", "copy": {"name": "c", "count": 600, "mode": "serial", "batchSize": 1}}`)}}, nil)
		must(t, err)
		_, err = dc.Cancel(ctx, "modes-rg", "long", nil)
		must(t, err)
		_, err = poller.PollUntilDone(ctx, fastPoll)
		if err == nil {
			t.Fatal("a canceled deployment succeeded")
		}
		long, err := dc.Get(ctx, "modes-rg", "long", nil)
		must(t, err)
		if *long.Properties.ProvisioningState != armresources.ProvisioningStateCanceled {
			b, _ := json.Marshal(long.Properties.Error)
			t.Fatalf("after cancel: %s %s", *long.Properties.ProvisioningState, b)
		}
		_, err = dc.Cancel(ctx, "modes-rg", "long", nil)
		wantCode(t, err, http.StatusConflict, "DeploymentCannotBeCanceled")

		// A subscription deployment makes a resource group.
		sp, err := dc.BeginCreateOrUpdateAtSubscriptionScope(ctx, "groups", armresources.Deployment{Location: to.Ptr("westeurope"), Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: parseJSON(t, `{"$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#", "contentVersion": "1.0.0.0",
			  "resources": [{"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2022-09-01", "name": "made-by-template", "location": "northeurope"}],
			  "outputs": {"rg": {"type": "string", "value": "[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'made-by-template')]"}}}`)}}, nil)
		must(t, err)
		_, err = sp.PollUntilDone(ctx, fastPoll)
		must(t, err)
		e.want(e.call(admin, "GET", "/subscriptions/"+sub+"/resourceGroups/made-by-template", nil), 200, "")
		sd, err := dc.GetAtSubscriptionScope(ctx, "groups", nil)
		must(t, err)
		if *sd.Properties.ProvisioningState != armresources.ProvisioningStateSucceeded || *sd.Location != "westeurope" {
			t.Fatalf("subscription deployment %+v", sd)
		}
		n := 0
		for pg := dc.NewListAtSubscriptionScopePager(nil); pg.More(); {
			page, err := pg.NextPage(ctx)
			must(t, err)
			n += len(page.Value)
		}
		if n != 1 {
			t.Fatalf("%d subscription deployments", n)
		}
	})
}

// TestDeploymentInterrupted: a deployment left Running by a server that
// stopped (its record not saved since) is Failed when it is next read,
// and can then be deployed again.
func TestDeploymentInterrupted(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		sub := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		rg := "/subscriptions/" + sub + "/resourceGroups/stop-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		id := rg + "/providers/Microsoft.Resources/deployments/left"
		doc := fmt.Sprintf(`{"id": %q, "name": "left", "runId": "r1", "runner": "a-server-that-stopped", "template": {}, "properties": {"provisioningState": "Running", "mode": "Incremental"}}`, id)
		must(t, e.st.PutDeployment(e.ctx, store.Deployment{TenantID: tb.Tenant.ID, SubscriptionID: sub, ResourceGroup: "stop-rg", Name: "left",
			State: "Running", Document: []byte(doc), Created: time.Now().Add(-time.Hour), Updated: time.Now().Add(-time.Hour)}))
		r := e.call(admin, "GET", id, nil)
		e.want(r, 200, "")
		props := r.doc["properties"].(map[string]any)
		if props["provisioningState"] != "Failed" || props["error"].(map[string]any)["code"] != "DeploymentInterrupted" {
			t.Fatalf("interrupted deployment: %s", r.raw)
		}
		un, err := e.st.UnfinishedDeployments(e.ctx)
		must(t, err)
		if len(un) != 0 {
			t.Fatalf("still unfinished: %v", un)
		}
	})
}

// BenchmarkDeployment50 deploys a 50-resource template (50 user-assigned
// identities, one copy loop, deployed in parallel) into a new resource
// group with the real DeploymentsClient, from BeginCreateOrUpdate to the
// poller's Succeeded, on the embedded SQLite store. It reports resources/s.
func BenchmarkDeployment50(b *testing.B) {
	st := storetest.SQLite(b)
	base := testenv.New(b, st, testenv.LoginHosts("login.microsoftonline.com"), testenv.LoginURL(loginBase))
	// The real providers, as the server registers them: the template's
	// identities are Managed Identity's.
	h := arm.New(arm.Config{Directory: base.Dir, Store: st, RBAC: rbac.New(st, base.Dir), Verifier: base.Verifier, Audit: base.Audit, Logger: base.Logger,
		Providers: armtest.Providers(nil)})
	base.Route(func(r *http.Request) http.Handler {
		if strings.HasPrefix(r.Host, "management.") {
			return h
		}
		return nil
	})
	contoso, _ := base.Tenants(b)
	e := &env{ctx: b.Context(), st: st, dir: base.Dir, srv: base.Server, client: base.Client(), base: base}
	cred := armtest.SecretCredential(b, e.client, contoso.Tenant.ID, contoso.Admin.AppID, contoso.AdminSecret.SecretText)
	sub := contoso.Tenant.SubscriptionID
	dc, err := armresources.NewDeploymentsClient(sub, cred, e.armOptions())
	if err != nil {
		b.Fatal(err)
	}
	groups, err := armresources.NewResourceGroupsClient(sub, cred, e.armOptions())
	if err != nil {
		b.Fatal(err)
	}
	var template map[string]any
	if err := json.Unmarshal([]byte(`{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
	  "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "[concat('id-', copyIndex())]",
	    "location": "[resourceGroup().location]", "copy": {"name": "ids", "count": 50}}]}`), &template); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		rg := fmt.Sprintf("bench-%d", i)
		if _, err := groups.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		poller, err := dc.BeginCreateOrUpdate(ctx, rg, "fifty", armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: template}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		res, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 10 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(began)
		if len(res.Properties.OutputResources) != 50 {
			b.Fatalf("%d resources", len(res.Properties.OutputResources))
		}
	}
	b.ReportMetric(float64(50*b.N)/total.Seconds(), "resources/s")
}
