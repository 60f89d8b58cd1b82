package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

var (
	formActionRE = regexp.MustCompile(`<form method="post"[^>]* action="([^"]+)"`)
	formHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// pageUser is a person at a browser: a cookie jar, following nothing
// automatically, posting the page's form with its hidden fields.
type pageUser struct {
	t *testing.T
	c *http.Client
}

func (p pageUser) fetch(req *http.Request) (string, string) {
	p.t.Helper()
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.Request.URL.String()
}

func (p pageUser) submit(body, base string, fields url.Values) string {
	p.t.Helper()
	u, _ := url.Parse(base)
	action, form, ok := pageForm(body, u, fields)
	if !ok {
		p.t.Fatalf("no form on the page: %s", body)
	}
	out, _ := p.fetch(formPost(action, form))
	return out
}

// pageForm reads the form on a sign-in page: its action, resolved against
// base (the page's URL), and its hidden fields with fields set over them.
// ok is false when the page has no form.
func pageForm(body string, base *url.URL, fields url.Values) (action string, form url.Values, ok bool) {
	m := formActionRE.FindStringSubmatch(body)
	if m == nil {
		return "", nil, false
	}
	form = url.Values{}
	for _, h := range formHiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	u, err := base.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return "", nil, false
	}
	return u.String(), form, true
}

// formPost is the browser's POST of form to action.
func formPost(action string, form url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// TestDeviceCodeCredential: azidentity's DeviceCodeCredential, unmodified,
// gets a user's token; the user step is done on the sign-in pages
// (enter the code, sign in, consent) by a second client, as a person on
// another device would.
func TestDeviceCodeCredential(t *testing.T) {
	r := start(t, server.Config{})
	tc := r.createTenant(t, "devices")
	ctx := context.Background()
	dir := r.srv.Directory()
	const password = "Device-flow password 1!"
	_, err := dir.CreateUser(ctx, tc.TenantID, directory.NewUser{UserPrincipalName: "grace@devices.onmicrosoft.com",
		DisplayName: "Grace", Password: password, AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	app, err := dir.CreateApplication(ctx, tc.TenantID, directory.Application{DisplayName: "Devices CLI", IsFallbackPublicClient: true,
		PublicClientRedirectURIs: []string{"https://login.microsoftonline.com/common/oauth2/nativeclient"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.CreateServicePrincipal(ctx, tc.TenantID, app.AppID); err != nil {
		t.Fatal(err)
	}

	jar, _ := cookiejar.New(nil)
	person := pageUser{t: t, c: r.client()}
	person.c.Jar = jar
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		TenantID: tc.TenantID, ClientID: app.AppID,
		ClientOptions: policy.ClientOptions{Transport: r.client(), Cloud: cloud.AzurePublic},
		UserPrompt: func(ctx context.Context, m azidentity.DeviceCodeMessage) error {
			if !strings.Contains(m.Message, m.UserCode) || !strings.HasPrefix(m.VerificationURL, "https://login.microsoftonline.com/") {
				t.Errorf("device code message: %+v", m)
			}
			req, _ := http.NewRequest(http.MethodGet, m.VerificationURL, nil)
			body, at := person.fetch(req)
			body = person.submit(body, at, url.Values{"otc": {m.UserCode}})
			body = person.submit(body, at, url.Values{"username": {"grace@devices.onmicrosoft.com"}})
			body = person.submit(body, at, url.Values{"password": {password}})
			if !strings.Contains(body, "Permissions requested") {
				t.Fatalf("expected the consent page, got %s", body)
			}
			body = person.submit(body, at, url.Values{"decision": {"accept"}})
			if !strings.Contains(body, "You have signed in") {
				t.Fatalf("expected the confirmation, got %s", body)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/User.Read"}})
	if err != nil {
		t.Fatalf("DeviceCodeCredential: %v", err)
	}
	claims := decodeClaims(t, tok.Token)
	if claims["scp"] != "User.Read" || claims["upn"] != "grace@devices.onmicrosoft.com" || claims["tid"] != tc.TenantID {
		t.Fatalf("device code token claims: %v", claims)
	}
}

// decodeClaims decodes a JWT's claims without verifying anything.
func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
