package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// goTool finds the go command that runs these tests.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if runtime.GOOS == "windows" {
			p += ".exe"
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("the go command (on PATH, or in $GOROOT/bin) is needed to build the test programs")
	return ""
}

// build compiles the package pkg into dir/name.
func build(t *testing.T, goCmd, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command(goCmd, "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// minimalEnv is the environment the test processes start from: nothing but
// PATH and HOME, so that no setting of the machine running the tests (a
// proxy, an AZURE_* variable) reaches them.
func minimalEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
}

// THE UNMODIFIED-PROGRAM TEST. A program that only calls
// azidentity.NewDefaultAzureCredential(nil) and GetToken (and, with -graph,
// calls Microsoft Graph with http.DefaultClient) is run as its own process
// by a shell that does exactly what a person does:
//
//	eval "$(tenantbridge env ...)" && exec defaultcred
//
// with nothing else in its environment but PATH and HOME. It reaches
// login.microsoftonline.com and graph.microsoft.com by those names, through
// the proxy, trusting the bundle env wrote; the managed-identity endpoint
// directly. Each credential kind env sets up must yield a token of the
// expected principal.
func TestUnmodifiedProgram(t *testing.T) {
	goCmd := goTool(t)
	bin := t.TempDir()
	tb := build(t, goCmd, bin, "tenantbridge", "github.com/tenantbridge/tenantbridge/cmd/tenantbridge")
	prog := build(t, goCmd, bin, "defaultcred", "./testdata/defaultcred")

	r := start(t, server.Config{ProxyListen: "127.0.0.1:0"})
	ctx := context.Background()

	// cli runs the tenantbridge binary against the server's data directory.
	cli := func(t *testing.T, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(tb, append([]string{"--data", r.dir}, args...)...)
		cmd.Env = minimalEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tenantbridge %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	// runProgram evals `tenantbridge envArgs...` (an env command) in a
	// shell and execs the program there, returning what it printed.
	runProgram := func(t *testing.T, graph bool, envArgs ...string) map[string]any {
		t.Helper()
		const script = `prog=$1; graph=$2; shift 2
envout=$("$@") || exit 97
eval "$envout" || exit 98
exec "$prog" -graph="$graph"`
		graphFlag := "false"
		if graph {
			graphFlag = "true"
		}
		args := append([]string{"-c", script, "sh", prog, graphFlag, tb, "--data", r.dir}, envArgs...)
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", args...)
		cmd.Env = minimalEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("eval \"$(tenantbridge %s)\" && defaultcred: %v\nstdout: %s\nstderr: %s",
				strings.Join(envArgs, " "), err, stdout.Bytes(), stderr.Bytes())
		}
		var out map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("defaultcred printed %q: %v\nstderr: %s", stdout.Bytes(), err, stderr.Bytes())
		}
		t.Logf("tenantbridge %s; defaultcred: %s", strings.Join(envArgs, " "), bytes.TrimSpace(stdout.Bytes()))
		return out
	}
	expect := func(t *testing.T, got map[string]any, want map[string]any) {
		t.Helper()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("claim %s = %v; want %v (all: %v)", k, got[k], v, got)
			}
		}
	}

	var tenant struct {
		TenantID string `json:"tenantId"`
		Admin    struct {
			ClientID           string `json:"clientId"`
			ServicePrincipalID string `json:"servicePrincipalId"`
		} `json:"admin"`
	}
	if err := json.Unmarshal(cli(t, "tenant", "create", "contoso", "-o", "json"), &tenant); err != nil {
		t.Fatal(err)
	}
	var identity azclient.Identity
	if err := json.Unmarshal(cli(t, "identity", "create", "app-identity", "--tenant", "contoso", "-o", "json"), &identity); err != nil {
		t.Fatal(err)
	}

	// (a) A client secret: env adds a new one to the application. The
	// admin application may read Graph, so the program calls it too.
	t.Run("secret", func(t *testing.T) {
		got := runProgram(t, true, "env", "--tenant", "contoso", "--app", tenant.Admin.ClientID, "--secret")
		expect(t, got, map[string]any{"tid": tenant.TenantID, "appid": tenant.Admin.ClientID, "oid": tenant.Admin.ServicePrincipalID,
			"iss": "https://sts.windows.net/" + tenant.TenantID + "/", "graphStatus": float64(200)})
	})

	// (b) A user-assigned managed identity, through the managed-identity
	// endpoint with a workload's identity header.
	t.Run("identity", func(t *testing.T) {
		got := runProgram(t, false, "env", "--tenant", "contoso", "--identity", "app-identity")
		expect(t, got, map[string]any{"tid": tenant.TenantID, "appid": identity.ClientID, "oid": identity.PrincipalID})
	})

	// A workload's own, system-assigned identity: workload env gives it a
	// new header and leaves AZURE_CLIENT_ID unset.
	t.Run("workload", func(t *testing.T) {
		var w azclient.Workload
		if err := json.Unmarshal(cli(t, "workload", "create", "job", "--system-assigned", "--tenant", "contoso", "-o", "json"), &w); err != nil {
			t.Fatal(err)
		}
		if w.SystemAssignedIdentity == nil {
			t.Fatalf("workload create: %+v", w)
		}
		got := runProgram(t, false, "workload", "env", "job", "--tenant", "contoso")
		expect(t, got, map[string]any{"tid": tenant.TenantID, "appid": w.SystemAssignedIdentity.ClientID, "oid": w.SystemAssignedIdentity.PrincipalID})
	})

	// (c) Workload identity federation: the assertion is the managed
	// identity's token for api://AzureADTokenExchange, fetched as a
	// workload fetches it but through the proxy, so that its issuer is the
	// tenant's v2 issuer as programs see it; an application trusts that
	// issuer for the identity's object id.
	t.Run("federated", func(t *testing.T) {
		op, cred := r.operatorClient(t)
		local, err := cred.Local()
		if err != nil {
			t.Fatal(err)
		}
		opts, err := local.ClientOptions()
		if err != nil {
			t.Fatal(err)
		}
		authority, _ := cred.AuthorityURL()
		// The CLI's named profiles: the tenant's bootstrap administrator.
		var admin struct {
			Profiles map[string]struct {
				TenantID, ClientID, ClientSecret string
				Bootstrap                        bool
			} `json:"profiles"`
		}
		data, err := os.ReadFile(filepath.Join(r.dir, "profiles.json"))
		if err != nil || json.Unmarshal(data, &admin) != nil {
			t.Fatalf("profiles.json: %v", err)
		}
		var p struct{ ClientID, ClientSecret string }
		for _, q := range admin.Profiles {
			if q.TenantID == tenant.TenantID && q.Bootstrap {
				p.ClientID, p.ClientSecret = q.ClientID, q.ClientSecret
			}
		}
		adminCred, err := azclient.NewClientSecretCredential(authority, tenant.TenantID, p.ClientID, p.ClientSecret, opts)
		if err != nil {
			t.Fatal(err)
		}
		g, err := azclient.NewGraph(azclient.GraphEndpoint, adminCred, &opts)
		if err != nil {
			t.Fatal(err)
		}
		app, err := g.CreateApplication(ctx, azclient.Application{DisplayName: "Federated worker"})
		if err != nil {
			t.Fatal(err)
		}
		sp, err := g.CreateServicePrincipal(ctx, app.AppID)
		if err != nil {
			t.Fatal(err)
		}

		wl, err := op.CreateWorkload(ctx, tenant.TenantID, azclient.NewWorkload{Name: "assertion-source", Identities: []string{identity.PrincipalID}})
		if err != nil {
			t.Fatal(err)
		}
		q := url.Values{"api-version": {"2019-08-01"}, "resource": {azclient.TokenExchangeAudience}, "client_id": {identity.ClientID}}
		req, _ := http.NewRequest(http.MethodGet, "https://login.microsoftonline.com/"+tenant.TenantID+"/msi/token?"+q.Encode(), nil)
		req.Header.Set("X-IDENTITY-HEADER", wl.IdentityHeader)
		resp, err := r.proxied(t, cred.ProxyURL).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var mi struct {
			AccessToken string `json:"access_token"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &mi) != nil || mi.AccessToken == "" {
			t.Fatalf("the identity's token for %s: %d %s", azclient.TokenExchangeAudience, resp.StatusCode, body)
		}
		claims, err := azclient.UnverifiedClaims(mi.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		issuer := "https://login.microsoftonline.com/" + tenant.TenantID + "/v2.0"
		if claims["iss"] != issuer || claims["sub"] != identity.PrincipalID {
			t.Fatalf("the identity's assertion: iss %v sub %v; want %s and %s", claims["iss"], claims["sub"], issuer, identity.PrincipalID)
		}
		if _, err := g.AddFederatedCredential(ctx, app.ID, azclient.FederatedCredential{Name: "app-identity", Issuer: issuer,
			Subject: identity.PrincipalID, Audiences: []string{azclient.TokenExchangeAudience}}); err != nil {
			t.Fatal(err)
		}
		// As a projected token file: with a trailing newline.
		file := filepath.Join(t.TempDir(), "assertion.jwt")
		if err := os.WriteFile(file, []byte(mi.AccessToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got := runProgram(t, false, "env", "--tenant", "contoso", "--federated-token", file, "--app", app.AppID)
		expect(t, got, map[string]any{"tid": tenant.TenantID, "appid": app.AppID, "oid": sp.ID})

		// Without --app, env finds the application whose federated
		// credential trusts the token.
		got = runProgram(t, false, "env", "--tenant", "contoso", "--federated-token", file)
		expect(t, got, map[string]any{"appid": app.AppID, "oid": sp.ID})
	})
}
