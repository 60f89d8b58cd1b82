package sts

import (
	"strings"
	"testing"
)

// TestOwnIssuerTenant documents which issuers are this server's own, and so
// verified with its own keys instead of fetched.
func TestOwnIssuerTenant(t *testing.T) {
	s := &Service{isLoginHost: func(h string) bool { return h == "127.0.0.1" || h == "login.contoso.test" }}
	const tid = "8c1f3a52-6f0e-4a7b-9d0e-1b2c3d4e5f60"
	cases := map[string]bool{
		"https://login.microsoftonline.com/" + tid + "/v2.0":           true,
		"https://login.microsoftonline.com/" + tid + "/":               true,
		"https://sts.windows.net/" + tid + "/":                         true,
		"https://127.0.0.1:8443/" + tid + "/v2.0":                      true,
		"https://login.contoso.test/" + tid + "/":                      true,
		"https://LOGIN.contoso.test/" + strings.ToUpper(tid) + "/v2.0": true,

		"https://sts.windows.net/" + tid + "/v2.0":                false, // sts.windows.net has only the v1 form
		"https://evil.example/" + tid + "/v2.0":                   false, // not a login host
		"http://127.0.0.1/" + tid + "/v2.0":                       false,
		"https://127.0.0.1/" + tid + "/v2.0?x=1":                  false,
		"https://127.0.0.1/" + tid + "/v2.0#f":                    false,
		"https://u@127.0.0.1/" + tid + "/v2.0":                    false,
		"https://127.0.0.1/contoso.onmicrosoft.com/v2.0":          false, // the issuer names a tenant by id
		"https://127.0.0.1/" + tid + "/v2.0/":                     false,
		"https://127.0.0.1/" + tid:                                false,
		"https://127.0.0.1/" + tid + "/oauth2/v2.0/token":         false,
		"https://127.0.0.1/{" + tid + "}/v2.0":                    false,
		"https://login.microsoftonline.com:8443/" + tid + "/v2.0": false,
	}
	for issuer, want := range cases {
		got, ok := s.ownIssuerTenant(issuer)
		if ok != want || (ok && got != tid) {
			t.Errorf("ownIssuerTenant(%q) = %q, %v; want ok=%v", issuer, got, ok, want)
		}
	}
	if _, _, found := s.localKeys("https://evil.example/"+tid+"/v2.0", "kid"); found {
		t.Error("localKeys found a key for a foreign issuer")
	}
}
