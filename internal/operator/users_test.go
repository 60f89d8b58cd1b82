package operator_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// TestEnrollAuthenticator: the operator enrols a user's TOTP; the code of
// the secret it hands out is the one sign-in accepts, a second enrolment
// needs replace (and then the old secret stops), and refusals are audited.
func TestEnrollAuthenticator(t *testing.T) {
	a, srv := startServer(t)
	for _, name := range []string{"contoso", "fabrikam"} {
		if r := a.do("POST", "/tenants", `{"name":"`+name+`"}`); r.status != http.StatusCreated {
			t.Fatalf("create tenant %s: %d %s", name, r.status, r.raw)
		}
	}
	dir := srv.Directory()
	tenant, err := dir.Tenant(t.Context(), "contoso")
	if err != nil {
		t.Fatal(err)
	}
	u, err := dir.CreateUser(t.Context(), tenant.ID, directory.NewUser{UserPrincipalName: "alice@contoso.onmicrosoft.com",
		DisplayName: "Alice", MailNickname: "alice", Password: "Correct-horse-9", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}

	r := a.do("POST", "/tenants/contoso/users/alice@contoso.onmicrosoft.com/authenticator", `{}`)
	uri, _ := r.body["otpauthUri"].(string)
	secret, _ := r.body["secret"].(string)
	if r.status != http.StatusOK || r.body["userId"] != u.ID || r.header.Get("Cache-Control") != "no-store" || secret == "" {
		t.Fatalf("enrol: %d %s", r.status, r.raw)
	}
	parsed, err := url.Parse(uri)
	if err != nil || parsed.Scheme != "otpauth" || parsed.Host != "totp" || parsed.Query().Get("secret") != secret {
		t.Fatalf("otpauth URI %q (secret %q): %v", uri, secret, err)
	}
	checkCode := func(secret string, want bool) {
		t.Helper()
		code, err := directory.TOTPCode(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := dir.GetUser(t.Context(), tenant.ID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := dir.CheckTOTP(fresh, code); got != want {
			t.Fatalf("code of secret %s accepted = %v, want %v", secret, got, want)
		}
	}
	checkCode(secret, true)

	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"enrolled already", "/tenants/contoso/users/" + u.ID + "/authenticator", `{}`, 409, "Conflict"},
		{"explicitly not replacing", "/tenants/contoso/users/" + strings.ToUpper(u.ID) + "/authenticator", `{"replace":false}`, 409, "Conflict"},
		{"no such user", "/tenants/contoso/users/bob@contoso.onmicrosoft.com/authenticator", `{}`, 404, "UserNotFound"},
		{"another tenant's user by id", "/tenants/fabrikam/users/" + u.ID + "/authenticator", `{"replace":true}`, 404, "UserNotFound"},
		{"another tenant's user by name", "/tenants/fabrikam/users/alice@contoso.onmicrosoft.com/authenticator", `{"replace":true}`, 404, "UserNotFound"},
		{"no such tenant", "/tenants/nosuch/users/" + u.ID + "/authenticator", `{}`, 404, "TenantNotFound"},
		{"no body", "/tenants/contoso/users/" + u.ID + "/authenticator", ``, 400, "InvalidRequestContent"},
		{"unknown field", "/tenants/contoso/users/" + u.ID + "/authenticator", `{"force":true}`, 400, "InvalidRequestContent"},
	} {
		r := a.do("POST", tc.path, tc.body)
		if r.status != tc.status || r.errorCode() != tc.code || strings.Contains(r.raw, "otpauth") {
			t.Errorf("%s: %d %s; want %d %s", tc.name, r.status, r.raw, tc.status, tc.code)
		}
	}
	checkCode(secret, true) // nothing refused changed it

	r = a.do("POST", "/tenants/contoso/users/"+u.ID+"/authenticator", `{"replace":true}`)
	second, _ := r.body["secret"].(string)
	if r.status != http.StatusOK || second == "" || second == secret {
		t.Fatalf("replace: %d %s", r.status, r.raw)
	}
	checkCode(second, true)
	checkCode(secret, false)

	r = a.do("GET", "/audit?tenant=contoso", "")
	var ok, refused int
	for _, rec := range r.body["value"].([]any) {
		m := rec.(map[string]any)
		if m["action"] != "user.enrollAuthenticator" {
			continue
		}
		if strings.Contains(r.raw, secret) || strings.Contains(r.raw, second) {
			t.Fatal("the audit log holds a TOTP secret")
		}
		switch m["result"] {
		case "success":
			ok++
		case "Conflict":
			refused++
		}
	}
	if ok != 2 || refused != 2 {
		t.Errorf("audit: %d enrolments, %d conflicts; want 2 and 2: %s", ok, refused, r.raw)
	}
}
