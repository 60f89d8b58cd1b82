package sts

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Single-page applications. A redirect URI registered under the spa
// platform makes the authorization code flow a browser's: Entra redeems
// such a code, and the refresh tokens it yields, only from a cross-origin
// request (one with an Origin header, which a browser's fetch always
// sends), only with PKCE and never with a client credential; and it
// answers that request with CORS. Everything else is redeemed only without
// an Origin header, so a token meant for a server never reaches a page's
// script. The rules, from "Redirect URI setup required for single-page
// apps" in https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
// ("Applications can't use a spa redirect URI with non-SPA flows … the
// Microsoft identity platform returns an error if you attempt to use a spa
// redirect URI in these scenarios, e.g. from a native app that doesn't
// send an Origin header") and the refusals Entra answers (errors.go):
//
//   - a SPA code without a PKCE challenge: AADSTS9002325;
//   - a SPA code or refresh token with client_secret or client_assertion:
//     AADSTS700025 ("Public clients (native applications and single page
//     apps) must not use secrets or certificates when redeeming an
//     authorization code");
//   - a SPA code or refresh token without Origin: AADSTS9002327;
//   - any other token request with Origin (a web or public client's code
//     or refresh token, client credentials, …): AADSTS9002326.
//
// A SPA's refresh token lives 24 hours from the sign-in, and rotation
// keeps that end ("For refresh tokens sent to a redirect URI registered as
// spa, the refresh token expires after 24 hours. Additional refresh tokens
// acquired using the initial refresh token carry over that expiration
// time", same page; refresh-tokens.md); after it, AADSTS700084.

// spaRefreshLifetime is the fixed lifetime of a SPA's refresh tokens.
const spaRefreshLifetime = 24 * time.Hour

// spaRefreshPrefix starts the value of a SPA's refresh token, followed by
// the Unix time of the sign-in that started its family, a dot and the
// random part. The value is found in the store by its SHA-256 alone, so a
// client that changes the time or drops the prefix holds a value that
// redeems nothing: what the value says of itself is as good as the store.
const spaRefreshPrefix = "1.spa."

// newSPARefreshValue returns a new value for a SPA's refresh token of a
// family signed in at issued.
func newSPARefreshValue(issued time.Time) string {
	return spaRefreshPrefix + strconv.FormatInt(issued.Unix(), 10) + "." + opaque(64)
}

// spaRefreshIssued reports whether raw is a SPA's refresh token and, if
// so, when its family was signed in.
func spaRefreshIssued(raw string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(raw, spaRefreshPrefix)
	if !ok {
		return time.Time{}, false
	}
	secs, _, ok := strings.Cut(rest, ".")
	n, err := strconv.ParseInt(secs, 10, 64)
	if !ok || err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// presentsCredential reports whether the request carries a client
// credential: a secret (in the body or Basic) or an assertion.
func presentsCredential(req *tokenRequest) bool {
	return req.basic != nil || req.form.get("client_secret") != "" || req.form.get("client_assertion") != "" ||
		req.form.get("client_assertion_type") != ""
}

// checkCrossOrigin applies the rules above to the redemption of a code or
// refresh token: spa says whether it was issued to a SPA.
func checkCrossOrigin(req *tokenRequest, spa bool) *Error {
	switch {
	case !spa && req.origin != "":
		return aadError(codeCrossOriginNotSPA, clip(req.origin, 256))
	case !spa:
		return nil
	case presentsCredential(req):
		return aadError(codePublicClientSecret)
	case req.origin == "":
		return aadError(codeSPANeedsCrossOrigin)
	}
	return nil
}

// corsOrigin is the origin a token endpoint response allows: the
// request's Origin when it is a serialized origin (scheme://host[:port]),
// else "". Entra answers its token endpoint's cross-origin requests,
// refusals included, so that a page's script can read them (MSAL.js shows
// AADSTS9002326 from the response body, microsoft-authentication-library-for-js#4728);
// only a SPA's redemption ever gets tokens that way.
func corsOrigin(r *http.Request) string {
	o := r.Header.Get("Origin")
	if o == "" || len(o) > 256 {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" ||
		u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	return o
}

// setCORS adds the CORS headers of a token endpoint response to a
// cross-origin request. No credentials (cookies) are allowed: a token
// request needs none.
func setCORS(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	if o := corsOrigin(r); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
	}
}

// corsAllowedHeaders are the request headers a preflight allows: the form
// body's type and what MSAL libraries send to the token endpoint.
var corsAllowedHeaders = []string{"content-type", "client-request-id", "return-client-request-id", "x-client-sku",
	"x-client-ver", "x-client-os", "x-client-cpu", "x-ms-lib-capability", "x-client-current-telemetry",
	"x-client-last-telemetry", "x-app-name", "x-app-ver", "x-anchormailbox"}

// preflight answers a CORS preflight (OPTIONS with Origin and
// Access-Control-Request-Method) of the token endpoint: POST with the
// headers above, cached for a day.
func preflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST, OPTIONS")
	if r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		setCORS(w, r)
		w.Header().Add("Vary", "Access-Control-Request-Method")
		w.Header().Add("Vary", "Access-Control-Request-Headers")
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(corsAllowedHeaders, ", "))
		w.Header().Set("Access-Control-Max-Age", "86400")
	}
	w.WriteHeader(http.StatusNoContent)
}
