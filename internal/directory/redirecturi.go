package directory

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Redirect URIs are where the sign-in pages send authorization codes, so a
// redirect URI an attacker controls is a stolen code. Entra's rules, from
// "Redirect URI (reply URL) outline and restrictions"
// (https://learn.microsoft.com/entra/identity-platform/reply-url):
//
//   - at most 256 characters, no fragment;
//   - web applications: https, or http only for localhost (127.0.0.1,
//     [::1]) during development;
//   - wildcards are not supported;
//   - public (mobile and desktop) clients may use custom schemes, such as
//     msal{appId}://auth, but never a scheme a browser executes or
//     renders in place (javascript:, data:, vbscript:, file:, about:,
//     blob:), which could never be a redirect to an application;
//   - at most 256 redirect URIs per application.

// maxRedirectURILength and maxRedirectURIs are Entra's limits.
const (
	maxRedirectURILength = 256
	maxRedirectURIs      = 256
)

// forbiddenRedirectSchemes are schemes that never name an application
// endpoint: a browser would run or render them itself.
var forbiddenRedirectSchemes = map[string]bool{
	"javascript": true, "data": true, "vbscript": true, "file": true, "about": true, "blob": true,
	"ftp": true, "ws": true, "wss": true, "mailto": true, "view-source": true,
}

// CheckRedirectURI reports whether u may be a redirect URI of an
// application: a web redirect URI when publicClient is false, a mobile or
// desktop one when it is true. It returns an *InvalidError, or nil.
func CheckRedirectURI(u string, publicClient bool) error {
	bad := func(why string) error {
		return invalidf("Redirect URI %q is not valid: %s", clipForMessage(u), why)
	}
	if u == "" || len(u) > maxRedirectURILength || !utf8.ValidString(u) {
		return bad("it must be an absolute URI of at most 256 characters.")
	}
	if strings.ContainsAny(u, "*\\ \t\r\n<>\"`") {
		return bad("wildcards, spaces and quotes are not supported.")
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Fragment != "" || strings.Contains(u, "#") || p.User != nil {
		return bad("it must be an absolute URI without a fragment or user information.")
	}
	scheme := strings.ToLower(p.Scheme)
	switch {
	case scheme == "https":
		if p.Hostname() == "" || p.Opaque != "" {
			return bad("an https redirect URI needs a host.")
		}
	case scheme == "http":
		if p.Opaque != "" || !isLoopbackHost(p.Hostname()) {
			return bad("it must use https unless its host is localhost.")
		}
	case forbiddenRedirectSchemes[scheme]:
		return bad("the scheme is not allowed.")
	case !publicClient:
		return bad("a web redirect URI must use https, or http for localhost.")
	default:
		// A public client's custom scheme: it names an application on the
		// device, and must look like one (scheme://something).
		if p.Opaque != "" || (p.Host == "" && p.Path == "") {
			return bad("a custom scheme redirect URI must have the form scheme://host/path.")
		}
	}
	return nil
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}
