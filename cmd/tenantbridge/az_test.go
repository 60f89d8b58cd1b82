package main

// The Azure CLI, unmodified, against a fresh server through its proxy:
// test/az/script.sh runs real `az` commands (login, account, group, ad
// app/sp, role assignments and definitions, keyvault and its secrets,
// identity and federated credential, servicebus namespace and queue,
// resource list, rest to Graph) with nothing but what `tenantbridge env`
// exports, and leaves each command's JSON in a directory; this test
// asserts it, and then uses what az made (the reset credential, the role
// assignment) to show that the server holds it.
//
// The test installs nothing: it runs where `az` is on PATH (.ci/run
// installs Debian's azure-cli), skips elsewhere, and fails under CI=true
// when az is missing. Debian's az 2.45 has broken `role` and `keyvault
// secret` commands (its packaging; see the script), which the script
// drives through `az rest`.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

const azScript = "../../test/az/script.sh"

// azOutputs reads the JSON each step of the script left.
type azOutputs struct {
	t   *testing.T
	dir string
}

// get decodes step name's JSON into v.
func (o azOutputs) get(name string, v any) {
	o.t.Helper()
	data, err := os.ReadFile(filepath.Join(o.dir, name+".json"))
	if err != nil {
		o.t.Fatalf("step %s: %v", name, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		o.t.Fatalf("step %s printed no JSON: %v\n%s", name, err, data)
	}
}

// object is step name's JSON object.
func (o azOutputs) object(name string) map[string]any {
	o.t.Helper()
	var m map[string]any
	o.get(name, &m)
	return m
}

// str is the string at a dotted path of m ("properties.scope"), "" if none.
func str(m map[string]any, path string) string {
	var v any = m
	for k := range strings.SplitSeq(path, ".") {
		obj, _ := v.(map[string]any)
		v = obj[k]
	}
	s, _ := v.(string)
	return s
}

func TestAzCLI(t *testing.T) {
	az, err := exec.LookPath("az")
	if err == nil {
		_, err = exec.LookPath("bash")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("az and bash are needed (.ci/run installs Debian's azure-cli): %v", err)
		}
		t.Skipf("az or bash not on PATH (apt-get install azure-cli): %v", err)
	}
	t.Logf("az: %s", az)

	dir := startServerWith(t, server.Config{ProxyListen: "127.0.0.1:0"})
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")
	admin := tenant.Admin.ClientID
	e := parseEnv(t, ok(t, dir, "env", "--tenant", "contoso", "--app", admin, "--secret"))
	if e.set["REQUESTS_CA_BUNDLE"] == "" || e.set["HTTPS_PROXY"] == "" {
		t.Fatalf("env exported no REQUESTS_CA_BUNDLE or HTTPS_PROXY: %v", e.set)
	}

	out := t.TempDir()
	vars := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8",
		"AZURE_CONFIG_DIR=" + t.TempDir(), "TB_AZ_OUT=" + out}
	for k, v := range e.set {
		vars = append(vars, k+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", azScript)
	cmd.Env = vars
	boundTool(cmd)
	start := time.Now()
	combined, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash %s: %v\n%s", azScript, err, combined)
	}
	t.Logf("the az script took %s", time.Since(start).Round(time.Second))
	o := azOutputs{t: t, dir: out}

	sub := tenant.SubscriptionID
	rgID := "/subscriptions/" + sub + "/resourceGroups/az-rg"

	// Login and account: the tenant's one subscription, as the service principal.
	var accounts []map[string]any
	o.get("login", &accounts)
	if len(accounts) != 1 || str(accounts[0], "id") != sub || str(accounts[0], "tenantId") != tenant.TenantID ||
		str(accounts[0], "user.type") != "servicePrincipal" || str(accounts[0], "user.name") != admin || str(accounts[0], "state") != "Enabled" {
		t.Errorf("az login: %v", accounts)
	}
	if a := o.object("account-show"); str(a, "id") != sub || str(a, "tenantId") != tenant.TenantID || str(a, "name") != "contoso" {
		t.Errorf("az account show: %v", a)
	}
	o.get("account-list", &accounts)
	if len(accounts) != 1 || str(accounts[0], "id") != sub || accounts[0]["isDefault"] != true {
		t.Errorf("az account list: %v", accounts)
	}

	// Resource groups.
	for _, step := range []string{"group-create", "group-show"} {
		if g := o.object(step); str(g, "id") != rgID || str(g, "name") != "az-rg" || str(g, "location") != "westeurope" ||
			str(g, "properties.provisioningState") != "Succeeded" || str(g, "type") != "Microsoft.Resources/resourceGroups" {
			t.Errorf("az %s: %v", step, g)
		}
	}
	var groups []map[string]any
	o.get("group-list", &groups)
	if !slices.ContainsFunc(groups, func(g map[string]any) bool { return str(g, "id") == rgID }) {
		t.Errorf("az group list: %v", groups)
	}

	// Graph: the application, its service principal, a new password.
	app := o.object("app-create")
	appID := str(app, "appId")
	if appID == "" || str(app, "displayName") != "az-app" || str(app, "signInAudience") != "AzureADMyOrg" ||
		str(app, "publisherDomain") != "contoso.onmicrosoft.com" {
		t.Errorf("az ad app create: %v", app)
	}
	sp := o.object("sp-create")
	spID := str(sp, "id")
	names, _ := sp["servicePrincipalNames"].([]any)
	if spID == "" || str(sp, "appId") != appID || str(sp, "appOwnerOrganizationId") != tenant.TenantID || !slices.Contains(names, any(appID)) {
		t.Errorf("az ad sp create: %v", sp)
	}
	if shown := o.object("sp-show"); str(shown, "id") != spID || str(shown, "appId") != appID {
		t.Errorf("az ad sp show: %v", shown)
	}
	var sps []map[string]any
	o.get("sp-list", &sps)
	if len(sps) != 1 || str(sps[0], "id") != spID {
		t.Errorf("az ad sp list --display-name az-app: %v", sps)
	}
	var found struct {
		Value []map[string]any `json:"value"`
	}
	o.get("graph-sp", &found)
	if len(found.Value) != 1 || str(found.Value[0], "id") != spID {
		t.Errorf("az rest servicePrincipals?$filter=servicePrincipalNames/any(…): %v", found.Value)
	}
	cred := o.object("credential-reset")
	if str(cred, "appId") != appID || str(cred, "tenant") != tenant.TenantID || len(str(cred, "password")) < 32 {
		t.Errorf("az ad app credential reset: appId %q tenant %q", str(cred, "appId"), str(cred, "tenant"))
	}

	// Role assignments and definitions (az rest, see the script).
	const reader, secretsOfficer = "acdd72a7-3385-48ef-bd42-f606fba81ae7", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	ra := o.object("role-assignment-create")
	if str(ra, "properties.principalId") != spID || str(ra, "properties.scope") != rgID || str(ra, "properties.principalType") != "ServicePrincipal" ||
		str(ra, "properties.roleDefinitionId") != "/subscriptions/"+sub+"/providers/Microsoft.Authorization/roleDefinitions/"+reader ||
		str(ra, "id") != rgID+"/providers/Microsoft.Authorization/roleAssignments/"+str(ra, "name") {
		t.Errorf("role assignment create: %v", ra)
	}
	o.get("role-assignment-list", &found)
	if !slices.ContainsFunc(found.Value, func(a map[string]any) bool { return str(a, "id") == str(ra, "id") }) {
		t.Errorf("role assignment list at az-rg lacks %s: %v", str(ra, "id"), found.Value)
	}
	o.get("role-definition-list", &found)
	if len(found.Value) != 1 || str(found.Value[0], "name") != reader || str(found.Value[0], "properties.roleName") != "Reader" ||
		str(found.Value[0], "properties.type") != "BuiltInRole" {
		t.Errorf("role definition list --name Reader: %v", found.Value)
	}

	// Key Vault: create, show without -g, a secret through the data plane.
	kv := o.object("keyvault-create")
	kvID := rgID + "/providers/Microsoft.KeyVault/vaults/az-vault-1"
	if str(kv, "id") != kvID || str(kv, "properties.vaultUri") != "https://az-vault-1.vault.azure.net/" ||
		str(kv, "properties.tenantId") != tenant.TenantID || str(kv, "resourceGroup") != "az-rg" {
		t.Errorf("az keyvault create: %v", kv)
	}
	if shown := o.object("keyvault-show"); str(shown, "id") != kvID || str(shown, "properties.vaultUri") != "https://az-vault-1.vault.azure.net/" {
		t.Errorf("az keyvault show -n: %v", shown)
	}
	me := o.object("sp-show-me")
	if va := o.object("vault-role-assignment"); str(va, "properties.principalId") != str(me, "id") || str(va, "properties.scope") != kvID ||
		!strings.HasSuffix(str(va, "properties.roleDefinitionId"), "/"+secretsOfficer) || str(me, "appId") != admin {
		t.Errorf("vault role assignment: %v (me %v)", va, me)
	}
	set, got := o.object("secret-set"), o.object("secret-show")
	if str(set, "value") != "from az" || !strings.HasPrefix(str(set, "id"), "https://az-vault-1.vault.azure.net/secrets/az-secret/") ||
		str(got, "id") != str(set, "id") || str(got, "value") != "from az" {
		t.Errorf("secret set %v, show %v", set, got)
	}

	// The user-assigned identity and its federated credential.
	mi := o.object("identity-create")
	if str(mi, "id") != rgID+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/az-identity" || str(mi, "tenantId") != tenant.TenantID ||
		str(mi, "clientId") == "" || str(mi, "principalId") == "" {
		t.Errorf("az identity create: %v", mi)
	}
	fic := o.object("federated-credential-create")
	aud, _ := fic["audiences"].([]any)
	if str(fic, "name") != "az-fic" || str(fic, "issuer") != "https://token.actions.githubusercontent.com" ||
		str(fic, "subject") != "repo:contoso/app:ref:refs/heads/main" || len(aud) != 1 || aud[0] != "api://AzureADTokenExchange" {
		t.Errorf("az identity federated-credential create: %v", fic)
	}

	// Service Bus: az flattens properties into the object it prints.
	nsID := rgID + "/providers/Microsoft.ServiceBus/namespaces/az-namespace-1"
	for _, step := range []string{"namespace-create", "namespace-show"} {
		if ns := o.object(step); str(ns, "id") != nsID || str(ns, "serviceBusEndpoint") != "https://az-namespace-1.servicebus.windows.net:443/" ||
			str(ns, "sku.name") != "Standard" || str(ns, "provisioningState") != "Succeeded" || str(ns, "status") != "Active" {
			t.Errorf("az servicebus %s: %v", step, ns)
		}
	}
	for step, maxDelivery := range map[string]float64{"queue-create": 10, "queue-show": 10, "queue-update": 5} {
		if q := o.object(step); str(q, "id") != nsID+"/queues/az-queue" || str(q, "lockDuration") != "0:00:30" ||
			q["maxDeliveryCount"] != maxDelivery || q["requiresSession"] != false || q["messageCount"] != float64(0) {
			t.Errorf("az servicebus %s: %v", step, q)
		}
	}

	// Resource list: the group's tracked resources, no queue.
	var resources []map[string]any
	o.get("resource-list", &resources)
	var ids []string
	for _, r := range resources {
		ids = append(ids, str(r, "id"))
	}
	slices.Sort(ids)
	if want := []string{kvID, str(mi, "id"), nsID}; !slices.Equal(ids, want) {
		t.Errorf("az resource list -g az-rg: %q, want %q", ids, want)
	}
	o.get("resource-list-type", &resources)
	if len(resources) != 1 || str(resources[0], "id") != nsID {
		t.Errorf("az resource list --resource-type Microsoft.ServiceBus/namespaces: %v", resources)
	}

	// What az made works: the reset password gets a token for the new
	// application, whose Reader assignment lets it read az-rg and list
	// that group's resources, and nothing else.
	client := localClient(t, dir)
	tok := clientCredentialsToken(t, client, tenant.TenantID, appID, str(cred, "password"))
	if c := claimsOf(t, tok); c["appid"] != appID || c["oid"] != spID {
		t.Errorf("the reset credential's token: appid %v oid %v", c["appid"], c["oid"])
	}
	armGet := func(path string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, "https://management.azure.com"+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if code, body := armGet(rgID + "?api-version=2021-04-01"); code != http.StatusOK {
		t.Errorf("the new application reading az-rg: %d %s", code, body)
	}
	code, body := armGet("/subscriptions/" + sub + "/resources?api-version=2021-04-01")
	var listed struct {
		Value []map[string]any `json:"value"`
	}
	if err := json.Unmarshal(body, &listed); code != http.StatusOK || err != nil || len(listed.Value) != 3 {
		t.Errorf("the new application listing the subscription's resources: %d %s", code, body)
	}
	if code, body := armGet("/subscriptions/" + sub + "?api-version=2021-04-01"); code != http.StatusOK {
		t.Errorf("the new application reading its subscription: %d %s", code, body)
	}
	if code, body := armGet(rgID + "/providers/Microsoft.Authorization/roleAssignments/" + str(ra, "name") + "?api-version=2022-04-01"); code != http.StatusOK {
		t.Errorf("the new application reading its assignment: %d %s", code, body)
	}
}

// localClient is an HTTP client that reaches the server in dir under
// Azure's host names, trusting its CA.
func localClient(t *testing.T, dir string) *http.Client {
	t.Helper()
	cred, err := azclient.ReadOperatorCredential(filepath.Join(dir, "operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := cred.Local()
	if err != nil {
		t.Fatal(err)
	}
	hc, err := local.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

// clientCredentialsToken gets a Resource Manager token for an application
// with a client secret from the v2.0 token endpoint.
func clientCredentialsToken(t *testing.T, client *http.Client, tenantID, appID, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret},
		"scope": {"https://management.azure.com/.default"}}
	resp, err := client.PostForm("https://login.microsoftonline.com/"+tenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.AccessToken == "" {
		t.Fatalf("a token with the reset credential: %d %s", resp.StatusCode, body)
	}
	return out.AccessToken
}
