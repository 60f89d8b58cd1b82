package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// startServer runs a real tenantbridge on a loopback port with real TLS, in a
// fresh data directory, and returns the directory.
func startServer(t *testing.T) string {
	t.Helper()
	return startServerWith(t, server.Config{})
}

// startServerWith is startServer with settings of cfg (e.g. ProxyListen);
// the data directory and listen address are the test's.
func startServerWith(t *testing.T, cfg server.Config) string {
	t.Helper()
	dir, _ := startStoppable(t, cfg)
	return dir
}

// startStoppable is startServerWith that also returns a function stopping
// the server before the test ends (at most once; the test's cleanup
// stops it otherwise). It serves cfg.DataDir when that is set (a restored
// directory), else a fresh one.
func startStoppable(t *testing.T, cfg server.Config) (string, func()) {
	t.Helper()
	dir := cfg.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.DataDir, cfg.Listen, cfg.Logger = dir, "127.0.0.1:0", slog.New(slog.DiscardHandler)
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return dir, stop
}

type result struct {
	stdout, stderr string
	code           int
}

// tb runs the CLI in-process against the data directory dir.
func tb(t *testing.T, dir string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"--data", dir}, args...), &out, &errOut, func(string) string { return "" })
	return result{out.String(), errOut.String(), code}
}

// ok runs the CLI and fails the test unless it succeeds.
func ok(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := tb(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("tenantbridge %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// okJSON runs the CLI with -o json and decodes its output into v.
func okJSON(t *testing.T, dir string, v any, args ...string) {
	t.Helper()
	out := ok(t, dir, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("tenantbridge %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs the CLI, expects a non-zero exit with exactly one line on
// stderr containing want, and returns that line.
func fails(t *testing.T, dir, want string, args ...string) string {
	t.Helper()
	r := tb(t, dir, args...)
	if r.code == 0 {
		t.Fatalf("tenantbridge %s succeeded; want an error\nstdout: %s", strings.Join(args, " "), r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.HasPrefix(r.stderr, "error: ") {
		t.Fatalf("tenantbridge %s: want one line \"error: ...\" on stderr, got %q", strings.Join(args, " "), r.stderr)
	}
	if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(want)) {
		t.Fatalf("tenantbridge %s: stderr %q does not mention %q", strings.Join(args, " "), r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("tenantbridge %s: failed but printed to stdout: %q", strings.Join(args, " "), r.stdout)
	}
	return r.stderr
}

type tenantJSON struct {
	TenantID       string `json:"tenantId"`
	Name           string `json:"name"`
	Domain         string `json:"domain"`
	SubscriptionID string `json:"subscriptionId"`
	Admin          *struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	} `json:"admin"`
}

type tokenJSON struct {
	AccessToken string `json:"accessToken"`
	ExpiresOn   string `json:"expiresOn"`
	ExpiresOnTS int64  `json:"expires_on"`
	Tenant      string `json:"tenant"`
	TokenType   string `json:"tokenType"`
}

func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	c, err := azclient.UnverifiedClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTenantLifecycle(t *testing.T) {
	dir := startServer(t)

	var created tenantJSON
	okJSON(t, dir, &created, "tenant", "create", "acme")
	if created.TenantID == "" || created.Domain != "acme.onmicrosoft.com" || created.SubscriptionID == "" ||
		created.Admin == nil || created.Admin.ClientID == "" || created.Admin.ClientSecret == "" {
		t.Fatalf("tenant create -o json lacks required fields: %+v", created)
	}
	// The raw JSON uses exactly the operator API's names.
	raw := ok(t, dir, "tenant", "show", "acme", "-o", "json")
	for _, name := range []string{`"tenantId"`, `"domain"`, `"subscriptionId"`} {
		if !strings.Contains(raw, name) {
			t.Errorf("tenant show -o json lacks %s: %s", name, raw)
		}
	}

	// The profile is saved, private, and its secret works at the token endpoint.
	fi, err := os.Stat(filepath.Join(dir, "profiles.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("profiles.json mode = %v, want 0600", fi.Mode().Perm())
	}
	var tok tokenJSON
	okJSON(t, dir, &tok, "account", "get-access-token", "--tenant", "acme", "--resource", "https://graph.microsoft.com")
	if tok.AccessToken == "" || tok.Tenant != created.TenantID || tok.TokenType != "Bearer" || tok.ExpiresOnTS <= time.Now().Unix() {
		t.Fatalf("get-access-token: %+v", tok)
	}
	claims := claimsOf(t, tok.AccessToken)
	if claims["tid"] != created.TenantID || claims["appid"] != created.Admin.ClientID {
		t.Errorf("token claims tid=%v appid=%v; want %s, %s", claims["tid"], claims["appid"], created.TenantID, created.Admin.ClientID)
	}
	// The only profile is the default; get-access-token defaults to JSON.
	out := ok(t, dir, "account", "get-access-token", "--scope", "https://graph.microsoft.com/.default")
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("get-access-token without --tenant or -o: %v\n%s", err, out)
	}

	// TENANTBRIDGE_DATA stands in for --data.
	var out2, err2 bytes.Buffer
	env := func(k string) string {
		if k == "TENANTBRIDGE_DATA" {
			return dir
		}
		return ""
	}
	if code := run(context.Background(), []string{"tenant", "show", "acme", "-o", "json"}, &out2, &err2, env); code != 0 || !strings.Contains(out2.String(), created.TenantID) {
		t.Errorf("with TENANTBRIDGE_DATA: exit %d, %s %s", code, out2.String(), err2.String())
	}

	// Listing and showing by name, id and domain.
	okJSON(t, dir, &created, "tenant", "create", "globex")
	var list []tenantJSON
	okJSON(t, dir, &list, "tenant", "list")
	names := map[string]bool{}
	for _, x := range list {
		names[x.Name] = true
		if x.Admin != nil {
			t.Errorf("tenant list shows an admin credential for %s", x.Name)
		}
	}
	if !names["acme"] || !names["globex"] {
		t.Errorf("tenant list = %+v; want acme and globex", list)
	}
	table := ok(t, dir, "tenant", "list", "-o", "table")
	if !strings.Contains(table, "NAME") || !strings.Contains(table, "globex.onmicrosoft.com") {
		t.Errorf("tenant list table:\n%s", table)
	}
	for _, ref := range []string{"globex", created.TenantID, "globex.onmicrosoft.com"} {
		var shown tenantJSON
		okJSON(t, dir, &shown, "tenant", "show", ref)
		if shown.TenantID != created.TenantID {
			t.Errorf("tenant show %s = %+v", ref, shown)
		}
	}
	if out := ok(t, dir, "tenant", "show", "globex", "-o", "table"); !strings.Contains(out, created.TenantID) {
		t.Errorf("tenant show table:\n%s", out)
	}

	// With two profiles, a tenant-scoped command needs --tenant.
	fails(t, dir, "--tenant", "account", "get-access-token")
	var accounts []map[string]any
	okJSON(t, dir, &accounts, "account", "list")
	if len(accounts) != 2 {
		t.Errorf("account list = %v", accounts)
	}
	if strings.Contains(ok(t, dir, "account", "list", "-o", "json"), created.Admin.ClientSecret) {
		t.Error("account list shows a secret")
	}

	// Deleting needs --yes, and forgets the profile.
	fails(t, dir, "--yes", "tenant", "delete", "globex")
	ok(t, dir, "tenant", "delete", "globex", "--yes")
	fails(t, dir, "not found", "tenant", "show", "globex")
	fails(t, dir, "globex", "account", "get-access-token", "--tenant", "globex")
	okJSON(t, dir, &list, "tenant", "list")
	if len(list) != 1 || list[0].Name != "acme" {
		t.Errorf("after delete, tenant list = %+v", list)
	}
}

func TestAdCommands(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")

	// Applications.
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", "Contoso API", "--identifier-uris", "api://contoso.onmicrosoft.com/contoso-api")
	if app.AppID == "" || app.ID == "" || app.DisplayName != "Contoso API" || app.SignInAudience != "AzureADMyOrg" {
		t.Fatalf("ad app create: %+v", app)
	}
	var multi azclient.Application
	okJSON(t, dir, &multi, "ad", "app", "create", "--display-name", "Contoso Multi", "--sign-in-audience", "AzureADMultipleOrgs")
	if multi.SignInAudience != "AzureADMultipleOrgs" {
		t.Errorf("multi-tenant app: %+v", multi)
	}
	var apps []azclient.Application
	okJSON(t, dir, &apps, "ad", "app", "list")
	if !hasApp(apps, app.AppID) || !hasApp(apps, multi.AppID) {
		t.Errorf("ad app list = %+v", apps)
	}
	okJSON(t, dir, &apps, "ad", "app", "list", "--filter", "appId eq '"+app.AppID+"'")
	if len(apps) != 1 || apps[0].AppID != app.AppID {
		t.Errorf("ad app list --filter = %+v", apps)
	}
	okJSON(t, dir, &apps, "ad", "app", "list", "--display-name", "Contoso M")
	if len(apps) != 1 || apps[0].AppID != multi.AppID {
		t.Errorf("ad app list --display-name = %+v", apps)
	}
	if out := ok(t, dir, "ad", "app", "list", "-o", "table"); !strings.Contains(out, "APP ID") || !strings.Contains(out, app.AppID) {
		t.Errorf("ad app list table:\n%s", out)
	}
	for _, id := range []string{app.AppID, app.ID} {
		var shown azclient.Application
		okJSON(t, dir, &shown, "ad", "app", "show", "--id", id)
		if shown.AppID != app.AppID {
			t.Errorf("ad app show --id %s = %+v", id, shown)
		}
	}

	// Service principals.
	var sp azclient.ServicePrincipal
	okJSON(t, dir, &sp, "ad", "sp", "create", "--id", app.AppID)
	if sp.ID == "" || sp.AppID != app.AppID {
		t.Fatalf("ad sp create: %+v", sp)
	}
	var sps []azclient.ServicePrincipal
	okJSON(t, dir, &sps, "ad", "sp", "list")
	found := false
	for _, x := range sps {
		found = found || x.ID == sp.ID
	}
	if !found {
		t.Errorf("ad sp list lacks %s", sp.ID)
	}
	okJSON(t, dir, &sps, "ad", "sp", "list", "--filter", "appId eq '"+app.AppID+"'")
	if len(sps) != 1 || sps[0].ID != sp.ID {
		t.Errorf("ad sp list --filter = %+v", sps)
	}
	for _, id := range []string{sp.ID, app.AppID} {
		var shown azclient.ServicePrincipal
		okJSON(t, dir, &shown, "ad", "sp", "show", "--id", id)
		if shown.ID != sp.ID {
			t.Errorf("ad sp show --id %s = %+v", id, shown)
		}
	}
	if out := ok(t, dir, "ad", "sp", "show", "--id", sp.ID, "-o", "table"); !strings.Contains(out, app.AppID) {
		t.Errorf("ad sp show table:\n%s", out)
	}

	// Groups and users.
	var group azclient.Group
	okJSON(t, dir, &group, "ad", "group", "create", "--display-name", "Operators", "--mail-nickname", "operators")
	if group.ID == "" || group.DisplayName != "Operators" || !group.SecurityEnabled {
		t.Fatalf("ad group create: %+v", group)
	}
	ok(t, dir, "ad", "group", "member", "add", "--group", group.ID, "--member-id", sp.ID)
	var user azclient.User
	okJSON(t, dir, &user, "ad", "user", "create", "--display-name", "Alice", "--user-principal-name", "alice@contoso.onmicrosoft.com",
		"--password", "Correct-Horse-Battery-9")
	if user.ID == "" || user.UserPrincipalName != "alice@contoso.onmicrosoft.com" {
		t.Fatalf("ad user create: %+v", user)
	}
	ok(t, dir, "ad", "group", "member", "add", "--group", group.ID, "--member-id", user.ID)
	var shownGroup azclient.Group
	okJSON(t, dir, &shownGroup, "ad", "group", "show", "--group", group.ID)
	if shownGroup.ID != group.ID {
		t.Errorf("ad group show = %+v", shownGroup)
	}

	// Secrets: reset replaces, --append adds.
	var first, second, third credentialResetView
	okJSON(t, dir, &first, "ad", "app", "credential", "reset", "--id", app.AppID, "--display-name", "ci")
	if first.AppID != app.AppID || first.Password == "" || first.Tenant != tenant.TenantID {
		t.Fatalf("credential reset: %+v", first)
	}
	okJSON(t, dir, &second, "ad", "app", "credential", "reset", "--id", app.ID)
	okJSON(t, dir, &third, "ad", "app", "credential", "reset", "--id", app.AppID, "--append", "--years", "2")
	var shown azclient.Application
	okJSON(t, dir, &shown, "ad", "app", "show", "--id", app.AppID)
	if len(shown.PasswordCredentials) != 2 {
		t.Errorf("after reset and reset --append, the app has %d secrets; want 2: %+v", len(shown.PasswordCredentials), shown.PasswordCredentials)
	}

	// Resetting the CLI's own credential keeps its profile working.
	var admin credentialResetView
	okJSON(t, dir, &admin, "ad", "app", "credential", "reset", "--id", tenant.Admin.ClientID)
	if admin.Password == tenant.Admin.ClientSecret {
		t.Error("the admin secret was not reset")
	}
	ok(t, dir, "ad", "app", "show", "--id", app.AppID)

	// Deleting an application.
	ok(t, dir, "ad", "app", "delete", "--id", multi.AppID)
	fails(t, dir, "404", "ad", "app", "show", "--id", multi.AppID)

	// The replaced secret no longer signs in; the new one does, and its
	// token is the app's own, in its tenant.
	fails(t, dir, "AADSTS", "login", "--service-principal", "-u", app.AppID, "-p", first.Password, "--tenant", "contoso")
	var accounts []map[string]any
	okJSON(t, dir, &accounts, "login", "--service-principal", "-u", app.AppID, "-p", second.Password, "--tenant", "contoso")
	if len(accounts) != 1 || accounts[0]["tenantId"] != tenant.TenantID {
		t.Errorf("login output = %v", accounts)
	}
	var tok tokenJSON
	okJSON(t, dir, &tok, "account", "get-access-token", "--resource", "https://graph.microsoft.com", "--tenant", "contoso.onmicrosoft.com")
	claims := claimsOf(t, tok.AccessToken)
	if claims["appid"] != app.AppID || claims["tid"] != tenant.TenantID || claims["oid"] != sp.ID {
		t.Errorf("the new app's token: appid=%v tid=%v oid=%v; want %s %s %s", claims["appid"], claims["tid"], claims["oid"], app.AppID, tenant.TenantID, sp.ID)
	}
}

func hasApp(apps []azclient.Application, appID string) bool {
	for _, a := range apps {
		if a.AppID == appID {
			return true
		}
	}
	return false
}

func TestErrors(t *testing.T) {
	dir := startServer(t)
	ok(t, dir, "tenant", "create", "acme")

	fails(t, dir, "nosuch", "ad", "app", "list", "--tenant", "nosuch")
	fails(t, dir, "nosuch", "audit", "--tenant", "nosuch")
	fails(t, dir, `"display-name"`, "ad", "app", "create")
	fails(t, dir, `"tenant"`, "audit")
	fails(t, dir, "invalid choice", "tenant", "list", "-o", "xml")
	fails(t, dir, "--query", "tenant", "list", "--query", "[?")
	fails(t, dir, "not both", "account", "get-access-token", "--resource", "https://graph.microsoft.com", "--scope", "x/.default")
	fails(t, dir, "unknown command", "frobnicate")
	fails(t, dir, "NAME", "tenant", "create")
	fails(t, dir, "not valid", "tenant", "create", "Not_A_Name")
	fails(t, dir, "already exists", "tenant", "create", "acme")
	fails(t, dir, "--service-principal", "login", "-u", "x", "-p", "y", "--tenant", "acme")
	fails(t, dir, "not found", "login", "--service-principal", "-u", "x", "-p", "y", "--tenant", "nosuch")
	// A wrong secret is refused by the token service, with its AADSTS code.
	fails(t, dir, "AADSTS", "login", "--service-principal", "-u", "00000000-0000-0000-0000-000000000001", "-p", "wrong", "--tenant", "acme")

	// No server in the data directory.
	empty := t.TempDir()
	fails(t, empty, "operator.json", "tenant", "list")
	fails(t, empty, "no tenant profile", "ad", "app", "list")

	// A wrong operator key.
	path := filepath.Join(dir, "operator.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cred map[string]string
	if err := json.Unmarshal(data, &cred); err != nil {
		t.Fatal(err)
	}
	cred["key"] = "tbop_wrong_wrong_wrong_wrong_wrong_wrong_wrong"
	bad, _ := json.Marshal(cred)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, dir, "Unauthorized", "tenant", "list")
	fails(t, dir, "Unauthorized", "tenant", "create", "other")
}

func TestProfilesFile(t *testing.T) {
	dir := t.TempDir()
	c := &cli{dataDir: dir}
	for _, p := range []Profile{
		{TenantID: "11111111-1111-1111-1111-111111111111", TenantName: "one", Domain: "one.onmicrosoft.com", ClientID: "a", ClientSecret: "s1"},
		{TenantID: "22222222-2222-2222-2222-222222222222", Domain: "two.example", ClientID: "b", ClientSecret: "s2"},
	} {
		if err := c.saveProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, profilesFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	for ref, want := range map[string]string{
		"one": "a", "ONE.onmicrosoft.com": "a", "11111111-1111-1111-1111-111111111111": "a",
		"two.example": "b", "22222222-2222-2222-2222-222222222222": "b",
	} {
		p, err := c.findProfile(ref)
		if err != nil || p.ClientID != want {
			t.Errorf("findProfile(%q) = %+v, %v; want client %s", ref, p, err, want)
		}
	}
	if _, err := c.findProfile(""); err == nil || !strings.Contains(err.Error(), "--tenant") {
		t.Errorf("findProfile with two profiles: %v", err)
	}
	if _, err := c.findProfile("three"); err == nil {
		t.Error("findProfile(three) succeeded")
	}
	if removed, err := c.removeProfile("22222222-2222-2222-2222-222222222222"); err != nil || !removed {
		t.Fatal(removed, err)
	}
	if p, err := c.findProfile(""); err != nil || p.ClientID != "a" {
		t.Errorf("the only profile is not the default: %+v %v", p, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
