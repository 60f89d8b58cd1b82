package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/signin"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// FuzzConsoleRequest sends the console arbitrary paths, queries and forms
// as a signed-in administrator: every answer is a page of the console's
// own (HTML, a status below 500), never a panic, and nothing of another
// tenant.
func FuzzConsoleRequest(f *testing.F) {
	v := newEnv(f, storetest.SQLite(f))
	w := v.w
	admin := v.signedIn(f, w.Admin)
	cookies := admin.jar.Cookies(mustURL(base + "/"))
	for _, seed := range []struct{ method, path, query, form string }{
		{"GET", "", "", ""},
		{"GET", "tenants/" + w.Customer.ID + "/graph", "view=out", ""},
		{"GET", "tenants/" + w.Customer.ID + "/audit", "other=provider&principal=x&action=servicePrincipal&since=2026-01-01T00:00&until=2030-01-01T00:00&all=1", ""},
		{"GET", "tenants/" + w.Customer.ID + "/audit/stream", "after=-5", ""},
		{"POST", "tenants/" + w.Customer.ID + "/revoke", "", "edge=roleAssignment|" + w.Customer.ID + "|" + w.Role.ID + "|&csrf=" + admin.csrf},
		{"POST", "tenants/" + w.Other.ID + "/revoke", "", "edge=roleAssignment|" + w.Other.ID + "|" + w.OtherRole.ID + "|&csrf=" + admin.csrf},
		{"GET", "static/console.css", "", ""},
		{"GET", "static/../templates/layout.html", "", ""},
		{"POST", "operator", "", "key=x&csrf=y"},
	} {
		f.Add(seed.method, seed.path, seed.query, seed.form)
	}
	f.Fuzz(func(t *testing.T, method, path, query, form string) {
		if method != "GET" && method != "POST" {
			method = "GET"
		}
		if strings.Contains(path, "signout") {
			return // would end the shared session
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		target := &url.URL{Scheme: "https", Host: "127.0.0.1", Path: "/console/" + path, RawQuery: query}
		req := httptest.NewRequestWithContext(ctx, method, "https://127.0.0.1/", strings.NewReader(form))
		req.URL, req.RequestURI = target, ""
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for _, c := range cookies {
			if c.Name == signin.SessionCookie {
				req.AddCookie(c)
			}
		}
		rec := httptest.NewRecorder()
		v.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s?%s: %d %s", method, path, query, rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusSeeOther {
			if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "/console/") && !strings.HasPrefix(loc, "/organizations/login/console") {
				t.Fatalf("%s %s: redirect to %q", method, path, loc)
			}
			return
		}
		ct := rec.Header().Get("Content-Type")
		if !strings.HasPrefix(ct, "text/") {
			t.Fatalf("%s %s: content type %q", method, path, ct)
		}
		if body := rec.Body.String(); rec.Code == http.StatusOK && (strings.Contains(body, w.Other.ID) || strings.Contains(body, w.OtherRole.ID)) {
			t.Fatalf("%s %s?%s shows the other tenant:\n%s", method, path, query, body)
		}
	})
}
