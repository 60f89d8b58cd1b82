package sts_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/sts"
)

// TestTokenErrors sends each kind of bad token request and checks Entra's
// answer: status, OAuth error, AADSTS code (in error_codes and leading the
// description), the description's trailer, the other fields of the error
// document, and the audit record of the refusal.
func TestTokenErrors(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	ctx := e.ctx

	// Applications in awkward states, all homed in contoso.
	single, err := e.dir.CreateApplication(ctx, e.contoso.ID, directory.Application{DisplayName: "single-tenant"})
	must(t, err)
	singleCred, err := e.dir.AddApplicationPassword(ctx, e.contoso.ID, single.ID, "s", time.Time{}, time.Time{})
	must(t, err)
	_, err = e.dir.CreateServicePrincipal(ctx, e.contoso.ID, single.AppID)
	must(t, err)

	disabled, err := e.dir.CreateApplication(ctx, e.contoso.ID, directory.Application{DisplayName: "disabled"})
	must(t, err)
	disabledCred, err := e.dir.AddApplicationPassword(ctx, e.contoso.ID, disabled.ID, "s", time.Time{}, time.Time{})
	must(t, err)
	disabledSP, err := e.dir.CreateServicePrincipal(ctx, e.contoso.ID, disabled.AppID)
	must(t, err)
	_, err = e.dir.UpdateServicePrincipal(ctx, e.contoso.ID, disabledSP.ID, func(sp *directory.ServicePrincipal) error {
		sp.AccountEnabled = false
		return nil
	})
	must(t, err)

	expired, err := e.dir.CreateApplication(ctx, e.contoso.ID, directory.Application{DisplayName: "expired"})
	must(t, err)
	now := time.Now()
	expiredCred, err := e.dir.AddApplicationPassword(ctx, e.contoso.ID, expired.ID, "old", now.AddDate(-2, 0, 0), now.Add(-time.Hour))
	must(t, err)
	_, err = e.dir.CreateServicePrincipal(ctx, e.contoso.ID, expired.AppID)
	must(t, err)

	secretless, err := e.dir.CreateApplication(ctx, e.contoso.ID, directory.Application{DisplayName: "secretless"})
	must(t, err)
	_, err = e.dir.CreateServicePrincipal(ctx, e.contoso.ID, secretless.AppID)
	must(t, err)

	pid, psecret := e.provider.AppID, e.providerSecret
	graphScope := "https://graph.microsoft.com/.default"
	cc := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}

	cases := []struct {
		name        string
		method      string // default POST
		tenant      string // default contoso
		v1          bool
		contentType string // default form
		body        string // overrides form
		form        url.Values
		auth        string
		status      int
		oauth       string
		code        int
		audited     bool
	}{
		{name: "GET", method: http.MethodGet, status: 400, oauth: "invalid_request", code: 900561},
		{name: "unknown tenant", tenant: "nosuchtenant.onmicrosoft.com", form: cc("client_id", pid, "client_secret", psecret, "scope", graphScope),
			status: 400, oauth: "invalid_request", code: 90002, audited: true},
		{name: "malformed tenant", tenant: "bad%21tenant", form: cc("client_id", pid, "client_secret", psecret, "scope", graphScope),
			status: 400, oauth: "invalid_request", code: 90002, audited: true},
		{name: "common", tenant: "common", form: cc("client_id", pid, "client_secret", psecret, "scope", graphScope),
			status: 400, oauth: "invalid_request", code: 50059, audited: true},
		{name: "no grant_type", form: url.Values{"client_id": {pid}, "client_secret": {psecret}, "scope": {graphScope}},
			status: 400, oauth: "invalid_request", code: 900144, audited: true},
		{name: "unsupported grant", form: url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:saml1_1-bearer"}, "client_id": {pid}, "assertion": {"a"}},
			status: 400, oauth: "unsupported_grant_type", code: 70003, audited: true},
		{name: "no client_id", form: cc("client_secret", psecret, "scope", graphScope),
			status: 400, oauth: "invalid_request", code: 900144, audited: true},
		{name: "no scope", form: cc("client_id", pid, "client_secret", psecret),
			status: 400, oauth: "invalid_request", code: 900144, audited: true},
		{name: "scope without .default", form: cc("client_id", pid, "client_secret", psecret, "scope", "https://graph.microsoft.com/User.Read"),
			status: 400, oauth: "invalid_scope", code: 1002012, audited: true},
		{name: "only OIDC scopes", form: cc("client_id", pid, "client_secret", psecret, "scope", "openid profile offline_access"),
			status: 400, oauth: "invalid_scope", code: 1002012, audited: true},
		{name: "two resources", form: cc("client_id", pid, "client_secret", psecret, "scope", graphScope+" https://vault.azure.net/.default"),
			status: 400, oauth: "invalid_scope", code: 70011, audited: true},
		{name: "v1 without resource", v1: true, form: cc("client_id", pid, "client_secret", psecret),
			status: 400, oauth: "invalid_request", code: 900144, audited: true},
		{name: "unknown client", form: cc("client_id", uuid.NewString(), "client_secret", psecret, "scope", graphScope),
			status: 400, oauth: "unauthorized_client", code: 700016, audited: true},
		{name: "client id not a GUID", form: cc("client_id", "provider", "client_secret", psecret, "scope", graphScope),
			status: 400, oauth: "unauthorized_client", code: 700016, audited: true},
		{name: "single-tenant app in another tenant", tenant: e.fabrikam.ID, form: cc("client_id", single.AppID, "client_secret", singleCred.SecretText, "scope", graphScope),
			status: 400, oauth: "unauthorized_client", code: 700016, audited: true},
		{name: "disabled service principal", form: cc("client_id", disabled.AppID, "client_secret", disabledCred.SecretText, "scope", graphScope),
			status: 400, oauth: "unauthorized_client", code: 7000112, audited: true},
		{name: "wrong secret", form: cc("client_id", pid, "client_secret", "nope", "scope", graphScope),
			status: 401, oauth: "invalid_client", code: 7000215, audited: true},
		{name: "secret of another app", form: cc("client_id", pid, "client_secret", singleCred.SecretText, "scope", graphScope),
			status: 401, oauth: "invalid_client", code: 7000215, audited: true},
		{name: "expired secret", form: cc("client_id", expired.AppID, "client_secret", expiredCred.SecretText, "scope", graphScope),
			status: 401, oauth: "invalid_client", code: 7000222, audited: true},
		{name: "no credential", form: cc("client_id", pid, "scope", graphScope),
			status: 401, oauth: "invalid_client", code: 7000218, audited: true},
		{name: "empty secret", form: cc("client_id", pid, "client_secret", "", "scope", graphScope),
			status: 401, oauth: "invalid_client", code: 7000218, audited: true},
		{name: "app without secrets", form: cc("client_id", secretless.AppID, "client_secret", "guess", "scope", graphScope),
			status: 401, oauth: "invalid_client", code: 7000218, audited: true},
		{name: "secret in body and Basic", form: cc("client_id", pid, "client_secret", psecret, "scope", graphScope), auth: basic(pid, psecret),
			status: 400, oauth: "invalid_request", code: 90023, audited: true},
		{name: "Basic for another client_id", form: cc("client_id", single.AppID, "scope", graphScope), auth: basic(pid, psecret),
			status: 400, oauth: "invalid_request", code: 90023, audited: true},
		{name: "malformed Basic", form: cc("client_id", pid, "scope", graphScope), auth: "Basic !!!",
			status: 401, oauth: "invalid_client", code: 70002, audited: true},
		{name: "Basic with a wrong secret", form: cc("scope", graphScope), auth: basic(pid, "nope"),
			status: 401, oauth: "invalid_client", code: 7000215, audited: true},
		{name: "client assertion", form: cc("client_id", pid, "scope", graphScope,
			"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", "eyJ.eyJ.sig"),
			status: 400, oauth: "invalid_request", code: 50027, audited: true},
		{name: "assertion and secret", form: cc("client_id", pid, "client_secret", psecret, "scope", graphScope, "client_assertion", "x"),
			status: 400, oauth: "invalid_request", code: 90023, audited: true},
		{name: "unknown resource", form: cc("client_id", pid, "client_secret", psecret, "scope", "api://nothing/.default"),
			status: 400, oauth: "invalid_resource", code: 500011, audited: true},
		{name: "resource of another tenant", form: cc("client_id", pid, "client_secret", psecret, "scope", ordersURI+"/.default"),
			status: 400, oauth: "invalid_resource", code: 500011, audited: true},
		{name: "v1 unknown resource", v1: true, form: cc("client_id", pid, "client_secret", psecret, "resource", "https://nothing.example"),
			status: 400, oauth: "invalid_resource", code: 500011, audited: true},
		{name: "JSON body", contentType: "application/json", body: `{"grant_type":"client_credentials"}`,
			status: 400, oauth: "invalid_request", code: 90023, audited: true},
		{name: "no content type", contentType: "-", body: "grant_type=client_credentials",
			status: 400, oauth: "invalid_request", code: 90023, audited: true},
		{name: "bad percent-encoding", body: "grant_type=client_credentials&client_id=%zz",
			status: 400, oauth: "invalid_request", code: 90023, audited: true},
		{name: "duplicate parameter", body: "grant_type=client_credentials&client_id=" + pid + "&client_id=" + single.AppID + "&client_secret=x&scope=a/.default",
			status: 400, oauth: "invalid_request", code: 90023, audited: true},
		{name: "NUL byte", body: "grant_type=client_credentials&client_id=%00",
			status: 400, oauth: "invalid_request", code: 90023, audited: true},
		{name: "body over 64 KiB", body: "grant_type=client_credentials&pad=" + strings.Repeat("a", 64<<10),
			status: 413, oauth: "invalid_request", code: 90015, audited: true},
	}

	timestamp := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenant := tc.tenant
			if tenant == "" {
				tenant = e.contoso.ID
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			body := tc.body
			if body == "" && tc.form != nil {
				body = tc.form.Encode()
			}
			req, err := http.NewRequest(method, e.tokenURL(tenant, !tc.v1), strings.NewReader(body))
			must(t, err)
			switch tc.contentType {
			case "":
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			correlation := uuid.NewString()
			req.Header.Set("client-request-id", correlation)
			req.Header.Set("return-client-request-id", "true")

			resp, doc := e.do(req)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d (%v)", resp.StatusCode, tc.status, doc["error_description"])
			}
			if doc["error"] != tc.oauth {
				t.Errorf("error %v, want %s", doc["error"], tc.oauth)
			}
			codes, _ := doc["error_codes"].([]any)
			if len(codes) != 1 || codes[0] != float64(tc.code) {
				t.Errorf("error_codes %v, want [%d]", doc["error_codes"], tc.code)
			}
			desc, _ := doc["error_description"].(string)
			ts, _ := doc["timestamp"].(string)
			trace, _ := doc["trace_id"].(string)
			wantTrailer := fmt.Sprintf("\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", trace, correlation, ts)
			if !strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d: ", tc.code)) || !strings.HasSuffix(desc, wantTrailer) {
				t.Errorf("error_description %q, want AADSTS%d: …%q", desc, tc.code, wantTrailer)
			}
			if !timestamp.MatchString(ts) || trace == "" || doc["correlation_id"] != correlation {
				t.Errorf("timestamp %q trace_id %q correlation_id %v (sent %s)", ts, trace, doc["correlation_id"], correlation)
			}
			if doc["error_uri"] != fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", tc.code) {
				t.Errorf("error_uri %v", doc["error_uri"])
			}
			if len(doc) != 7 {
				t.Errorf("error document has %d fields, want Entra's 7: %v", len(doc), doc)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") || resp.Header.Get("client-request-id") != correlation {
				t.Errorf("Cache-Control %q, client-request-id %q", cc, resp.Header.Get("client-request-id"))
			}
			if strings.Contains(desc, psecret) {
				t.Error("the description echoes the secret")
			}
			if tc.audited {
				a := e.lastAudit()
				if a.Action != "token.issue" || a.Result != fmt.Sprintf("AADSTS%d", tc.code) || a.RequestID != trace {
					t.Errorf("audit record %+v, want token.issue AADSTS%d for request %s", a, tc.code, trace)
				}
			}
		})
	}
}

// TestTokenEndpointMethods: OPTIONS is allowed (CORS preflight), other verbs get 900561.
func TestTokenEndpointMethods(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	req, _ := http.NewRequest(http.MethodOptions, e.tokenURL(e.contoso.ID, true), nil)
	resp, _ := e.do(req)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("OPTIONS: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	req, _ = http.NewRequest(http.MethodPut, e.tokenURL(e.contoso.ID, false), nil)
	resp, doc := e.do(req)
	if resp.StatusCode != 400 || !strings.Contains(doc["error_description"].(string), "Received a PUT request") {
		t.Errorf("PUT: %d %v", resp.StatusCode, doc["error_description"])
	}
}

// TestSingleTenantAgain: a service principal left in another tenant from
// when the app was multi-tenant gets no token once the app is single-tenant.
func TestSingleTenantAgain(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	graph := "https://graph.microsoft.com/.default"
	if status, doc := e.clientCredentials(e.fabrikam.ID, true, graph); status != 200 {
		t.Fatalf("multi-tenant: %d %v", status, doc)
	}
	_, err := e.dir.UpdateApplication(e.ctx, e.contoso.ID, e.provider.ID, func(a *directory.Application) error {
		a.SignInAudience = directory.AudienceMyOrg
		return nil
	})
	must(t, err)
	status, doc := e.clientCredentials(e.fabrikam.ID, true, graph)
	if status != 400 || doc["error_codes"].([]any)[0] != float64(700016) {
		t.Errorf("single-tenant app in another tenant: %d %v", status, doc["error_description"])
	}
	if status, doc := e.clientCredentials(e.contoso.ID, true, graph); status != 200 {
		t.Errorf("home tenant: %d %v", status, doc)
	}
}

// failingAudit is the real store whose audit log refuses writes: a fault
// injected to check that an unrecorded token is never handed out.
type failingAudit struct{ store.Store }

func (failingAudit) AppendAudit(context.Context, store.AuditRecord) (int64, error) {
	return 0, errors.New("audit log unavailable")
}

func TestTokenNotIssuedWithoutAudit(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	svc := sts.New(sts.Config{Directory: e.dir, Keys: e.keys, Audit: audit.New(failingAudit{e.st}, slog.New(slog.DiscardHandler))})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.provider.AppID}, "client_secret": {e.providerSecret},
		"scope": {"https://graph.microsoft.com/.default"}}
	r := httptest.NewRequest(http.MethodPost, "https://127.0.0.1/"+e.contoso.ID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "access_token") ||
		!strings.Contains(w.Body.String(), `"error":"temporarily_unavailable"`) {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}
