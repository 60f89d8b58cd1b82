package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

func TestParsePath(t *testing.T) {
	const id = "0b6cf6c8-1a6e-4d45-a4ff-3f1c6a2c9f10"
	cases := []struct {
		in      string
		want    []string
		byAppID bool
		bad     bool
	}{
		{in: "/v1.0", want: nil},
		{in: "/v1.0/", want: nil},
		{in: "/v1.0/applications", want: []string{"applications"}},
		{in: "/v1.0/applications/", want: []string{"applications"}},
		{in: "/v1.0/applications/" + id + "/owners/$ref", want: []string{"applications", id, "owners", "$ref"}},
		{in: "/v1.0/applications(appId='" + id + "')", want: []string{"applications", id}, byAppID: true},
		{in: "/v1.0/servicePrincipals(appid='" + id + "')/appRoleAssignedTo", want: []string{"servicePrincipals", id, "appRoleAssignedTo"}, byAppID: true},
		{in: "/v1.0/groups('" + id + "')/members", want: []string{"groups", id, "members"}},
		{in: "/v1.0/users/o''brien%40contoso.com", want: []string{"users", "o''brien@contoso.com"}},
		{in: "/v1.0/users('o''brien@contoso.com')", want: []string{"users", "o'brien@contoso.com"}},
		{in: "/v1.0/applications%28appId='x'%29", want: []string{"applications", "x"}, byAppID: true},
		{in: "/v1.0/users(appId='x')", bad: true},
		{in: "/v1.0/applications(appId='x'", bad: true},
		{in: "/v1.0/applications(appId=x)", bad: true},
		{in: "/v1.0/applications(appId='x')y", bad: true},
		{in: "/v1.0/applications('')", bad: true},
		{in: "/v1.0/(x)", bad: true},
		{in: "/v1.0/applications//x", bad: true},
		{in: "/v1.0/applications/../users", bad: true},
		{in: "/v1.0/applications/./x", bad: true},
		{in: "/v1.0/users/a%2Fb", bad: true},
		{in: "/v1.0/users/a%00b", bad: true},
		{in: "/v1.0/users/%ff", bad: true},
		{in: "/v1.0/users/%zz", bad: true},
		{in: "/v1.00/users", bad: true},
		{in: "/beta/users", bad: true},
		{in: "/v1.0/" + strings.Repeat("a/", maxSegments+1), bad: true},
	}
	for _, tc := range cases {
		p, err := parsePath(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parsePath(%q) = %v, want an error", tc.in, p)
			}
			continue
		}
		if err != nil || !slices.Equal(p.segments, tc.want) || p.byAppID != tc.byAppID {
			t.Errorf("parsePath(%q) = %q %v %v, want %q %v", tc.in, p.segments, p.byAppID, err, tc.want, tc.byAppID)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v1.0/applications", "/v1.0/applications(appId='a''b')/owners/$ref",
		"/v1.0/users/a%40b", "/v1.0/groups('x')", "/v1.0/a/../b", "/v1.0/%2F", "/v1.0/x(appId='y')"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := parsePath(in)
		if err != nil {
			return
		}
		for _, s := range p.segments {
			if !cleanSegment(s) {
				t.Fatalf("parsePath(%q) let through segment %q", in, s)
			}
		}
		if p.byAppID && (len(p.segments) < 2 || (p.segments[0] != "applications" && p.segments[0] != "servicePrincipals")) {
			t.Fatalf("parsePath(%q): appId key on %q", in, p.segments)
		}
		// The canonical form is what the mux routes; it must read back
		// as the same segments. (Escaping may take it past the length
		// limit, which guards only what clients send.)
		if len(p.canonical()) > maxPathLength {
			return
		}
		again, err := parsePath(p.canonical())
		if err != nil || !slices.Equal(again.segments, p.segments) {
			t.Fatalf("parsePath(%q) = %q, canonical %q reads back as %q, %v", in, p.segments, p.canonical(), again.segments, err)
		}
	})
}

func FuzzApplicationBody(f *testing.F) {
	for _, s := range []string{
		`{"displayName":"a"}`,
		`{"displayName":"a","appRoles":[{"id":"x","allowedMemberTypes":["Application"],"value":"v"}],"api":{"requestedAccessTokenVersion":2}}`,
		`{"displayName":"a","api":{"requestedAccessTokenVersion":null,"oauth2PermissionScopes":[{"id":"s","type":"User","value":"x"}]}}`,
		`{"displayName":"a","web":{"redirectUris":["https://x"]},"publicClient":{},"tags":null,"identifierUris":["api://x"]}`,
		`{"displayName":"a","requiredResourceAccess":[{"resourceAppId":"r","resourceAccess":[{"id":"i","type":"Role"}]}]}`,
		`{"displayName":"a","passwordCredentials":[]}`,
		`{"displayName":"\u0000"}`, `[]`, `{"displayName":5}`, `{"@odata.type":"#microsoft.graph.application"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		app, err := decodeApplication(body)
		if err != nil {
			var ge *graphError
			if ge, _ = err.(*graphError); ge == nil || ge.status != 400 {
				t.Fatalf("decodeApplication(%q) error %v is not a 400", body, err)
			}
			return
		}
		// Credentials and assigned properties never come from a body.
		if app.ID != "" || app.AppID != "" || app.PublisherDomain != "" || len(app.PasswordCredentials) > 0 ||
			len(app.KeyCredentials) > 0 || len(app.FederatedCredentials) > 0 || !app.CreatedDateTime.IsZero() {
			t.Fatalf("decodeApplication(%q) set an assigned property: %+v", body, app)
		}
		if strings.ContainsRune(app.DisplayName, 0) {
			t.Fatalf("decodeApplication(%q) let a NUL through", body)
		}
		// What was decoded can always be shown.
		if _, err := json.Marshal(applicationToView(&app)); err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(app.DisplayName) {
			t.Fatalf("invalid UTF-8 display name from %q", body)
		}
	})
}

// TestPermissionTable checks the table's shape: every route's kind has
// its verb, and owned-only access is granted by OwnedBy alone.
func TestPermissionTable(t *testing.T) {
	h := &Handler{}
	for _, rt := range h.routes() {
		if len(permissionTable[rt.kind][rt.verb]) == 0 {
			t.Errorf("%s: no permission opens %s/%s", rt.pattern, rt.kind, rt.verb)
		}
	}
	for kind, verbs := range permissionTable {
		for v, grants := range verbs {
			for _, g := range grants {
				if (g.access == ownedOnly) != (g.permission == directory.PermApplicationReadWriteOwned) {
					t.Errorf("%s/%s: %s grants %v", kind, v, g.permission, g.access)
				}
				if g.access == denied {
					t.Errorf("%s/%s: %s grants nothing", kind, v, g.permission)
				}
			}
		}
	}
}

// TestPasswordBusyIsRetryable: a password that could not be hashed in
// time (every slot busy) is Graph's 503 serviceNotAvailable with
// Retry-After, never a 500.
func TestPasswordBusyIsRetryable(t *testing.T) {
	e := toGraphError(fmt.Errorf("create user: %w", directory.ErrPasswordBusy), "")
	if e.status != http.StatusServiceUnavailable || e.code != codeServiceNotAvailable {
		t.Fatalf("busy password hashing: %d %s", e.status, e.code)
	}
	w := httptest.NewRecorder()
	writeError(w, httptest.NewRequest("POST", "/v1.0/users", nil), e)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("written: %d %v", w.Code, w.Header())
	}
}
