package signin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/signin"
)

// The static files are served, and every other name under their prefix
// gets the sign-in surface's error page: a 404 for anything that is not a
// file (invalid UTF-8, NUL, dot-dot, a directory), never a 500 or the
// file server's text/plain.
func TestStaticFiles(t *testing.T) {
	srv := httptest.NewTLSServer(signin.New(signin.Config{KEK: make([]byte, 32)}))
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/_signin/static/signin.css", 200},
		{"HEAD", "/_signin/static/signin.css", 200},
		{"GET", "/_signin/static/missing.css", 404},
		{"GET", "/_signin/static/%ff", 404},
		{"GET", "/_signin/static/%ff%fe.css", 404},
		{"GET", "/_signin/static/%c0%af", 404},
		{"GET", "/_signin/static/%00", 404},
		{"GET", "/_signin/static/", 404},
		{"GET", "/_signin/static/.", 404},
		{"GET", "/_signin/static/%2e%2e/templates/layout.html", 404},
		{"GET", "/_signin/static//signin.css", 404},
		{"GET", "/_signin/static/signin.css/", 404},
		{"POST", "/_signin/static/signin.css", 405},
		{"DELETE", "/_signin/static/%ff", 405},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Range", "bytes=junk") // ignored: no 416
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			continue
		}
		ct := res.Header.Get("Content-Type")
		switch {
		case tc.status == 200 && (ct != "text/css; charset=utf-8" || res.Header.Get("Cache-Control") != "public, max-age=3600"):
			t.Errorf("%s %s: Content-Type %q, Cache-Control %q", tc.method, tc.path, ct, res.Header.Get("Cache-Control"))
		case tc.status == 200 && tc.method == "GET" && !strings.Contains(string(body), "font"):
			t.Errorf("%s %s: body %.100q", tc.method, tc.path, body)
		case tc.status != 200 && (!strings.HasPrefix(ct, "text/html") || !strings.Contains(string(body), "AADSTS90023")):
			t.Errorf("%s %s: %s %.200q, want the sign-in error page", tc.method, tc.path, ct, body)
		}
		if tc.status == 405 && res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, res.Header.Get("Allow"))
		}
	}
}
