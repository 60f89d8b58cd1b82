package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// fleetSignInAcrossNodes signs a user in with the authorization code flow
// taking every step on another node of the fleet — the authorize page on
// one, the sign-in name on the next, the password on the third, the
// consent on the first again — and redeems the code on yet another: the
// browser's state (sealed under the shared KEK) and the code (spent once
// in the store) are no node's own.
func fleetSignInAcrossNodes(t *testing.T, nodes []*crashServer, w crashWorld, graphTok string) {
	t.Helper()
	A := nodes[0]
	var tv struct{ Domain string }
	r := A.must(A.do("GET", "https://"+*A.addr.Load()+"/_operator/v1/tenants/"+w.tenantID, A.opKey, "", nil), 200, "tenant")
	if json.Unmarshal([]byte(r.body), &tv) != nil || tv.Domain == "" {
		t.Fatalf("tenant: %s", r.body)
	}
	upn := "walker@" + tv.Domain
	const password = "Fleet-Walker-Pass-42"
	const redirect = "https://localhost/fleet-callback"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	A.must(A.do("POST", "https://graph.microsoft.com/v1.0/users", graphTok, fmt.Sprintf(`{"accountEnabled":true,"displayName":"Walker","mailNickname":"walker","userPrincipalName":%q,"passwordProfile":{"password":%q,"forceChangePasswordNextSignIn":false}}`, upn, password), jsonCT),
		http.StatusCreated, "create user")
	r = A.must(A.do("POST", "https://graph.microsoft.com/v1.0/applications", graphTok, `{"displayName":"Fleet web app","web":{"redirectUris":["`+redirect+`"]}}`, jsonCT),
		http.StatusCreated, "create application")
	var app struct{ ID, AppID string }
	_ = decodeJSON(r.body, &app)
	r = A.must(A.do("POST", "https://graph.microsoft.com/v1.0/applications/"+app.ID+"/addPassword", graphTok, `{"passwordCredential":{"displayName":"fleet"}}`, jsonCT),
		http.StatusOK, "add password")
	var pw struct{ SecretText string }
	_ = decodeJSON(r.body, &pw)

	jar, _ := cookiejar.New(nil)
	step := 0
	// next is the browser's client on the next node: one cookie jar.
	next := func() *http.Client {
		n := nodes[step%len(nodes)]
		step++
		c := *n.client
		c.Jar = jar
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return &c
	}
	fetch := func(req *http.Request) (string, *url.URL) {
		t.Helper()
		for range 5 {
			resp, err := next().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			loc, err := resp.Location()
			if err != nil {
				return string(b), req.URL
			}
			if loc.Host != "login.microsoftonline.com" {
				return string(b), loc
			}
			req, _ = http.NewRequest("GET", loc.String(), nil)
		}
		t.Fatal("too many redirects")
		return "", nil
	}
	q := url.Values{"client_id": {app.AppID}, "response_type": {"code"}, "redirect_uri": {redirect}, "scope": {"openid User.Read"}, "state": {"s1"}}
	get, _ := http.NewRequest("GET", "https://login.microsoftonline.com/"+w.tenantID+"/oauth2/v2.0/authorize?"+q.Encode(), nil)
	body, at := fetch(get)
	for range 6 {
		if at.Host != "login.microsoftonline.com" {
			break
		}
		var fields url.Values
		switch {
		case strings.Contains(body, `name="password"`):
			fields = url.Values{"password": {password}}
		case strings.Contains(body, `name="username"`):
			fields = url.Values{"username": {upn}}
		case strings.Contains(body, "Permissions requested"):
			fields = url.Values{"decision": {"accept"}}
		default:
			t.Fatalf("sign-in across nodes stopped at %s: %s", at, body)
		}
		action, form, ok := pageForm(body, at, fields)
		if !ok {
			t.Fatalf("no form at %s: %s", at, body)
		}
		body, at = fetch(formPost(action, form))
	}
	code := at.Query().Get("code")
	if !strings.HasPrefix(at.String(), redirect) || code == "" {
		t.Fatalf("sign-in across nodes ended at %s: %s", at, body)
	}
	redeem := func(n *crashServer) crashResp {
		form := url.Values{"grant_type": {"authorization_code"}, "client_id": {app.AppID}, "client_secret": {pw.SecretText},
			"code": {code}, "redirect_uri": {redirect}, "scope": {"openid User.Read"}}
		return n.do("POST", "https://login.microsoftonline.com/"+w.tenantID+"/oauth2/v2.0/token", "", form.Encode(),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	}
	if r := redeem(nodes[step%len(nodes)]); r.status != http.StatusOK || !strings.Contains(r.body, `"access_token"`) {
		t.Fatalf("redeeming on another node the code issued across nodes: %d %s", r.status, r.body)
	}
	// A code is spent once across the fleet, whichever node is asked.
	if r := redeem(nodes[(step+1)%len(nodes)]); r.status != http.StatusBadRequest {
		t.Fatalf("the code was redeemed twice: %d %s", r.status, r.body)
	}
	t.Logf("a user signed in over %d requests spread across the nodes", step)
}

func decodeJSON(s string, v any) error { return json.Unmarshal([]byte(s), v) }
