package directory

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

var (
	fuzzOwner   = store.Tenant{ID: "0b1f6a52-3c1e-4f7a-9d7e-6a1c2b3d4e5f", Name: "contoso", Domain: "contoso.onmicrosoft.com"}
	fuzzOther   = store.Tenant{ID: "7e2d4c6b-8a9f-4b1c-a2d3-e4f5a6b7c8d9", Name: "fabrikam", Domain: "fabrikam.onmicrosoft.com"}
	fuzzAppID   = "11111111-2222-4333-8444-555555555555"
	fuzzOtherID = "99999999-8888-4777-8666-555555555555"
)

// FuzzCheckIdentifierURI: whatever the input, the check does not panic,
// and an accepted URI is bound to its owner: it is refused for another
// tenant's application (so no two tenants can ever hold it), it names no
// first-party resource, and it contains the owner's tenant id, the
// application's id or the owner's domain.
func FuzzCheckIdentifierURI(f *testing.F) {
	for _, s := range []string{
		"api://" + fuzzAppID, "api://" + fuzzOwner.ID + "/" + fuzzAppID, "api://" + fuzzOwner.ID + "/orders",
		"api://orders/" + fuzzAppID, "https://contoso.onmicrosoft.com/orders", "api://x.contoso.onmicrosoft.com/orders",
		"https://graph.microsoft.com/", "https://graph.microsoft.com//", "HTTPS://GRAPH.MICROSOFT.COM", "api://AzureADTokenExchange",
		"https://fabrikam.onmicrosoft.com/x", "api://" + fuzzOther.ID + "/x", "https://contoso.onmicrosoft.com", "api://contoso.onmicrosoft.com",
		"https://contoso.onmicrosoft.com.evil.example/x", "https://evilcontoso.onmicrosoft.com/x", "api://%00/" + fuzzAppID,
		"https://contoso.onmicrosoft.com%2f@evil/x", "https://[::1]/x", "api://" + fuzzAppID + "#x", "urn:x:y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		err := CheckIdentifierURI(uri, fuzzOwner, fuzzAppID, nil)
		if err == nil {
			if CheckIdentifierURI(uri, fuzzOther, fuzzOtherID, nil) == nil {
				t.Fatalf("%q is accepted for two tenants' applications", uri)
			}
			if firstPartyURIOwner(uri) != "" {
				t.Fatalf("%q names a first-party resource", uri)
			}
			lower := strings.ToLower(uri)
			if !strings.Contains(lower, fuzzOwner.ID) && !strings.Contains(lower, fuzzAppID) && !strings.Contains(lower, fuzzOwner.Domain) {
				t.Fatalf("%q is accepted without the owner's id, appId or domain", uri)
			}
			u, perr := url.Parse(uri)
			if perr != nil || (u.Scheme != "api" && u.Scheme != "https") || isReservedHost(u.Hostname(), nil) {
				t.Fatalf("%q is accepted with scheme or host it must not have", uri)
			}
			return
		}
		if _, ok := IsInvalid(err); !ok {
			t.Fatalf("%q: refusal %v is not an InvalidError", uri, err)
		}
	})
}

// FuzzCheckRedirectURI: no panic, and an accepted web redirect URI is
// https with a host, or http on the loopback host; an accepted public
// client one never has a scheme a browser would run or render itself.
func FuzzCheckRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://app.example/cb", "http://localhost:5000/cb", "http://127.0.0.1/cb", "http://[::1]:8080/", "msal" + fuzzAppID + "://auth",
		"javascript:alert(1)", "JavaScript://%0aalert(1)", "data:text/html,x", "http://evil.example/cb", "https:///x", "https://a/#f",
		"vbscript:x", "file:///etc/passwd", "myapp://", "https://user:pw@app.example/cb", "https://app.example/*",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, uri string, public bool) {
		err := CheckRedirectURI(uri, public)
		if err != nil {
			if _, ok := IsInvalid(err); !ok {
				t.Fatalf("%q: refusal %v is not an InvalidError", uri, err)
			}
			return
		}
		u, perr := url.Parse(uri)
		if perr != nil {
			t.Fatalf("%q accepted but does not parse: %v", uri, perr)
		}
		scheme := strings.ToLower(u.Scheme)
		if forbiddenRedirectSchemes[scheme] || u.Fragment != "" || u.User != nil {
			t.Fatalf("%q accepted with a forbidden scheme, fragment or user", uri)
		}
		if !public {
			ok := (scheme == "https" && u.Hostname() != "") || (scheme == "http" && isLoopbackHost(u.Hostname()))
			if !ok {
				t.Fatalf("web redirect URI %q accepted", uri)
			}
		}
	})
}

// TestReservedHostsRefused: a host the server itself answers as (its
// custom domain) is refused even where the formats would allow it.
func TestReservedHostsRefused(t *testing.T) {
	uri := "https://contoso.onmicrosoft.com/api"
	if err := CheckIdentifierURI(uri, fuzzOwner, fuzzAppID, nil); err != nil {
		t.Fatalf("%s refused without reservation: %v", uri, err)
	}
	served := func(h string) bool {
		return h == "contoso.onmicrosoft.com" || strings.HasSuffix(h, ".contoso.onmicrosoft.com")
	}
	for _, u := range []string{uri, "api://contoso.onmicrosoft.com/api", "api://graph.contoso.onmicrosoft.com/api"} {
		if err := CheckIdentifierURI(u, fuzzOwner, fuzzAppID, served); InvalidCode(err) != CodeHostNameNotOnVerifiedDomain {
			t.Errorf("%s under a served domain: %v, want %s", u, err, CodeHostNameNotOnVerifiedDomain)
		}
	}
}
