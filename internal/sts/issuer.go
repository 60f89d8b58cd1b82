package sts

import (
	"net/url"
	"slices"
	"strings"
)

// entraHost is the real Entra ID login host. When clients reach us by that
// name (DNS pointed at tenantbridge, our CA trusted), we use Entra's exact
// issuer URLs, so that code with Entra's issuers hard-coded works unchanged.
const entraHost = "login.microsoftonline.com"

// entraAliases are the names of Entra's public cloud in its instance
// discovery answer (login.microsoftonline.com/common/discovery/instance:
// preferred_network login.microsoftonline.com, preferred_cache
// login.windows.net; MSAL Go's internal/oauth/ops/authority knows the same
// set: apps/internal/oauth/ops/authority/known_metadata.go).
var entraAliases = []string{entraHost, "login.windows.net", "login.microsoft.com", "sts.windows.net"}

// isEntraBase reports whether a base URL is Entra's login host, by any of
// its names (entraAliases): Entra answers under each with the same
// issuers, login.microsoftonline.com's.
func isEntraBase(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	return slices.Contains(entraAliases, strings.ToLower(u.Hostname())) && (u.Port() == "" || u.Port() == "443")
}

// issuerV2 is the issuer of v2 tokens for a tenant. On any other host it
// is that host's: MSAL requires the discovery issuer to share the
// authority's scheme and host.
func issuerV2(base, tenantID string) string {
	if isEntraBase(base) {
		return "https://" + entraHost + "/" + tenantID + "/v2.0"
	}
	return base + "/" + tenantID + "/v2.0"
}

// issuerV1 is the issuer of v1 tokens: Entra's sts.windows.net form on
// Entra's host, the base URL's otherwise.
func issuerV1(base, tenantID string) string {
	if isEntraBase(base) {
		return "https://sts.windows.net/" + tenantID + "/"
	}
	return base + "/" + tenantID + "/"
}

// graphHost is where the Microsoft Graph surface is reached from a login
// base URL: graph.microsoft.com for Entra's host, graph.<domain> for
// login.<domain>, else the same host (one listen address serves all).
func graphHost(base string) string {
	if isEntraBase(base) {
		return "graph.microsoft.com"
	}
	host := strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
	if rest, ok := strings.CutPrefix(strings.ToLower(host), "login."); ok {
		return "graph." + rest
	}
	return host
}

// cloudInstanceName is the cloud_instance_name of the discovery document:
// Entra's "microsoftonline.com", or the login host without "login.".
func cloudInstanceName(base string) string {
	if isEntraBase(base) {
		return "microsoftonline.com"
	}
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	return strings.TrimPrefix(host, "login.")
}
