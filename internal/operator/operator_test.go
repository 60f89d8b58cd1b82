package operator_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// api is a real server's operator API, called with raw HTTP so that every
// status and error body is seen as a client sees it.
type api struct {
	t    *testing.T
	base string
	key  string
	hc   *http.Client
}

func start(t *testing.T) *api {
	t.Helper()
	a, _ := startServer(t)
	return a
}

// startServer is start that also returns the server, for tests that set up
// what the operator API cannot make (a user, through the directory).
func startServer(t *testing.T) (*api, *server.Server) {
	t.Helper()
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return &api{t: t, base: "https://" + ln.Addr().String() + "/_operator/v1", key: srv.Operator().Key,
		hc: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CA().Pool()}}, Timeout: 30 * time.Second}}, srv
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// errorCode is the code of an {"error":{"code","message"}} body.
func (r response) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func (a *api) do(method, path, body string) response {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			a.t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return r
}

func TestErrors(t *testing.T) {
	a := start(t)
	if r := a.do("POST", "/tenants", `{"name":"contoso"}`); r.status != http.StatusCreated {
		t.Fatalf("create tenant: %d %s", r.status, r.raw)
	}
	r := a.do("POST", "/tenants/contoso/identities", `{"name":"worker"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create identity: %d %s", r.status, r.raw)
	}
	for _, f := range []string{"name", "resourceGroup", "clientId", "principalId", "tenantId", "resourceId"} {
		if s, _ := r.body[f].(string); s == "" {
			t.Errorf("identity view lacks %s: %s", f, r.raw)
		}
	}
	wl := a.do("POST", "/tenants/contoso/workloads", `{"name":"api","systemAssigned":true}`)
	system, _ := wl.body["systemAssignedIdentity"].(map[string]any)
	if wl.status != http.StatusCreated || wl.body["identityHeader"] == nil || wl.header.Get("Cache-Control") != "no-store" || system == nil {
		t.Fatalf("create workload: %d %s %v", wl.status, wl.raw, wl.header)
	}
	systemPrincipal, _ := system["principalId"].(string)
	many := `{"name":"many","identities":[` + strings.TrimSuffix(strings.Repeat(`"worker",`, 65), ",") + `]}`

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown endpoint", "GET", "/nothing", "", 404, "NotFound"},
		{"wrong method", "PUT", "/keys", "", 404, "NotFound"},
		{"rotate: negative", "POST", "/keys/rotate", `{"publishAhead":"-1s"}`, 400, "InvalidParameter"},
		{"rotate: not a duration", "POST", "/keys/rotate", `{"publishAhead":"tomorrow"}`, 400, "InvalidParameter"},
		{"rotate: too far ahead", "POST", "/keys/rotate", `{"publishAhead":"721h"}`, 400, "InvalidParameter"},
		{"rotate: a number", "POST", "/keys/rotate", `{"publishAhead":3600}`, 400, "InvalidRequestContent"},
		{"rotate: unknown field", "POST", "/keys/rotate", `{"ahead":"1h"}`, 400, "InvalidRequestContent"},
		{"rotate: huge body", "POST", "/keys/rotate", `{"publishAhead":"` + strings.Repeat("1", 2000) + `"}`, 413, "InvalidRequestContent"},
		{"identity: no such tenant", "GET", "/tenants/nosuch/identities", "", 404, "TenantNotFound"},
		{"identity: Microsoft's tenant", "POST", "/tenants/" + directory.MicrosoftTenantID + "/identities", `{"name":"x"}`, 404, "TenantNotFound"},
		{"identity: bad JSON", "POST", "/tenants/contoso/identities", `{"name":`, 400, "InvalidRequestContent"},
		{"identity: bad name", "POST", "/tenants/contoso/identities", `{"name":"a/b"}`, 400, "InvalidParameter"},
		{"identity: duplicate", "POST", "/tenants/contoso/identities", `{"name":"worker"}`, 409, "Conflict"},
		{"identity: not found", "GET", "/tenants/contoso/identities/nosuch", "", 404, "IdentityNotFound"},
		{"identity: a system-assigned one", "GET", "/tenants/contoso/identities/" + systemPrincipal, "", 404, "IdentityNotFound"},
		{"identity: delete a system-assigned one", "DELETE", "/tenants/contoso/identities/" + systemPrincipal, "", 404, "IdentityNotFound"},
		{"workload: no identity", "POST", "/tenants/contoso/workloads", `{"name":"bare"}`, 400, "InvalidParameter"},
		{"workload: unknown identity", "POST", "/tenants/contoso/workloads", `{"name":"w","identities":["nosuch"]}`, 400, "InvalidParameter"},
		{"workload: too many identities", "POST", "/tenants/contoso/workloads", many, 400, "InvalidParameter"},
		{"workload: duplicate", "POST", "/tenants/contoso/workloads", `{"name":"api","systemAssigned":true}`, 409, "Conflict"},
		{"workload: not found", "GET", "/tenants/contoso/workloads/nosuch", "", 404, "WorkloadNotFound"},
		{"workload: rotate unknown", "POST", "/tenants/contoso/workloads/nosuch/rotateHeader", "", 404, "WorkloadNotFound"},
		{"workload: delete unknown", "DELETE", "/tenants/contoso/workloads/nosuch", "", 404, "WorkloadNotFound"},
	} {
		r := a.do(tc.method, tc.path, tc.body)
		if r.status != tc.status || r.errorCode() != tc.code {
			t.Errorf("%s: %d %s; want %d %s", tc.name, r.status, r.raw, tc.status, tc.code)
		}
		if msg, _ := r.body["error"].(map[string]any)["message"].(string); msg == "" {
			t.Errorf("%s: no error message: %s", tc.name, r.raw)
		}
	}

	// The header is shown at creation and rotation only.
	r = a.do("GET", "/tenants/contoso/workloads/api", "")
	if r.status != 200 || strings.Contains(r.raw, "identityHeader") {
		t.Errorf("GET workload shows a header: %s", r.raw)
	}
	r = a.do("POST", "/tenants/contoso/workloads/api/rotateHeader", "")
	if h, _ := r.body["identityHeader"].(string); r.status != 200 || h == "" || h == wl.body["identityHeader"] {
		t.Errorf("rotateHeader: %d %s", r.status, r.raw)
	}

	// Rotation's body is optional; the default publishes a day ahead.
	r = a.do("POST", "/keys/rotate", "")
	if r.status != http.StatusCreated || r.body["state"] != "pending" {
		t.Errorf("rotate without a body: %d %s", r.status, r.raw)
	}

	// Refused changes are audited with their code.
	r = a.do("GET", "/audit?tenant=contoso", "")
	found := false
	for _, rec := range r.body["value"].([]any) {
		m := rec.(map[string]any)
		found = found || m["action"] == "workload.create" && m["result"] == "Conflict"
	}
	if !found {
		t.Errorf("the refused workload.create is not audited: %s", r.raw)
	}

	// Without the key, nothing.
	a.key = ""
	if r := a.do("GET", "/keys", ""); r.status != http.StatusUnauthorized || r.errorCode() != "Unauthorized" {
		t.Errorf("no key: %d %s", r.status, r.raw)
	}
}

func TestStats(t *testing.T) {
	a := start(t)
	r := a.do("GET", "/stats", "")
	if r.status != http.StatusOK {
		t.Fatalf("stats: %d %s", r.status, r.raw)
	}
	rss, _ := r.body["rssBytes"].(float64)
	heap, _ := r.body["heapInuseBytes"].(float64)
	// The test binary itself runs the server: it must hold at least a heap,
	// and on Linux its RSS is read from procfs and covers the heap.
	if heap <= 0 || rss < heap {
		t.Fatalf("stats = %s", r.raw)
	}
	a.key = "wrong"
	if r := a.do("GET", "/stats", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("stats without the operator key: %d", r.status)
	}
}

func TestProfilerNeedsTheKey(t *testing.T) {
	a := start(t)
	req, _ := http.NewRequest("GET", a.base+"/debug/pprof/heap?debug=1", nil)
	req.Header.Set("Authorization", "Bearer "+a.key)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("heap profile: %d %.200s", resp.StatusCode, body)
	}
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err = a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("profile without the key: %d", resp.StatusCode)
	}
}
