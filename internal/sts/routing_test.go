package sts_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// Requests no endpoint takes get Entra's JSON error, never the mux's
// text/plain 404 or 405: unknown paths (junk and invalid UTF-8 included)
// 404, a wrong method on a read-only endpoint 405 with Allow, a GET on a
// token endpoint AADSTS900561.
func TestUnroutedRequestsAnswerEntraErrors(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	tid := e.contoso.ID
	for _, tc := range []struct {
		method, path string
		status, code int
		allow        string
	}{
		{"GET", "/", 404, 90023, ""},
		{"GET", "/nothing-here", 404, 90023, ""},
		{"GET", "/" + tid + "/oauth2/v2.0/nothing", 404, 90023, ""},
		{"GET", "/%ff%fe/v2.0/.well-known/openid-configuration/extra", 404, 90023, ""},
		{"GET", "/%00/%c0%af/x", 404, 90023, ""},
		{"PUT", "/a/b/c/d/e/f", 404, 90023, ""},
		{"POST", "/" + tid + "/v2.0/.well-known/openid-configuration", 405, 90023, "GET, HEAD"},
		{"DELETE", "/" + tid + "/.well-known/openid-configuration", 405, 90023, "GET, HEAD"},
		{"POST", "/" + tid + "/discovery/v2.0/keys", 405, 90023, "GET, HEAD"},
		{"PATCH", "/" + tid + "/discovery/keys", 405, 90023, "GET, HEAD"},
		{"POST", "/common/discovery/instance", 405, 90023, "GET, HEAD"},
		{"GET", "/" + tid + "/oauth2/v2.0/token", 400, 900561, ""},
		{"PUT", "/" + tid + "/oauth2/devicecode", 400, 900561, ""},
	} {
		req, err := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
		must(t, err)
		resp, doc := e.do(req) // fails the test if the body is not JSON
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d %v, want %d", tc.method, tc.path, resp.StatusCode, doc, tc.status)
			continue
		}
		codes, _ := doc["error_codes"].([]any)
		desc, _ := doc["error_description"].(string)
		if len(codes) != 1 || codes[0] != float64(tc.code) || doc["error"] != "invalid_request" || !strings.HasPrefix(desc, "AADSTS") {
			t.Errorf("%s %s: %v, want Entra's error with AADSTS%d", tc.method, tc.path, doc, tc.code)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	// The read-only endpoints still answer GET and HEAD.
	for _, m := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(m, e.srv.URL+"/"+tid+"/discovery/v2.0/keys", nil)
		resp, err := e.srv.Client().Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s keys: %d", m, resp.StatusCode)
		}
	}
}
