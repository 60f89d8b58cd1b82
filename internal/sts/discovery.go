package sts

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

// tenantPlaceholder stands for the tenant id in documents served for
// "common" and "organizations", exactly as Entra writes it. MSAL replaces
// only "{tenant}", never "{tenantid}", so it keeps it literal.
const tenantPlaceholder = "{tenantid}"

// openIDConfiguration is Entra's discovery document, v1 and v2 in one
// struct: fields only one version has are omitted from the other. Field
// order follows Entra's documents.
type openIDConfiguration struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	MicrosoftMultiRefreshToken        bool     `json:"microsoft_multi_refresh_token,omitempty"` // v1
	RequestURIParameterSupported      *bool    `json:"request_uri_parameter_supported,omitempty"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	HTTPLogoutSupported               bool     `json:"http_logout_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ClaimsSupported                   []string `json:"claims_supported"`
	CheckSessionIframe                string   `json:"check_session_iframe,omitempty"` // v1
	TenantRegionScope                 *string  `json:"tenant_region_scope"`            // null for common
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	CloudGraphHostName                string   `json:"cloud_graph_host_name"`
	MSGraphHost                       string   `json:"msgraph_host"`
}

// tokenEndpointAuthMethods lists the client authentication methods the
// token endpoint implements (clientauth_*.go), in Entra's order.
var tokenEndpointAuthMethods = []string{"client_secret_post", "private_key_jwt", "client_secret_basic"}

// handleOpenIDConfiguration serves /{tenant}[/v2.0]/.well-known/openid-configuration.
// For a tenant the document names the tenant by id, whatever name the
// request used; for common and organizations the issuer carries the
// {tenantid} placeholder, as Entra's does.
func (s *Service) handleOpenIDConfiguration(ver endpointVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref := r.PathValue("tenant")
		base := httpx.BaseURL(r)
		var pathTenant, issuerTenant string
		var region *string
		if isMultiTenantAlias(ref) {
			pathTenant, issuerTenant = strings.ToLower(ref), tenantPlaceholder
		} else {
			t, e := s.resolveTenant(r.Context(), ref)
			if e != nil {
				s.refuseDiscovery(w, r, e)
				return
			}
			pathTenant, issuerTenant = t.ID, t.ID
			ww := "WW" // one worldwide region: there is no data residency to announce
			region = &ww
		}
		p := base + "/" + pathTenant
		doc := openIDConfiguration{
			TokenEndpointAuthMethodsSupported: tokenEndpointAuthMethods,
			ResponseModesSupported:            []string{"query", "fragment", "form_post"},
			SubjectTypesSupported:             []string{"pairwise"},
			IDTokenSigningAlgValuesSupported:  []string{"RS256"},
			HTTPLogoutSupported:               true,
			FrontchannelLogoutSupported:       true,
			TenantRegionScope:                 region,
			CloudInstanceName:                 cloudInstanceName(base),
			CloudGraphHostName:                graphHost(base),
			MSGraphHost:                       graphHost(base),
		}
		if isEntraBase(base) {
			doc.CloudGraphHostName = "graph.windows.net"
		}
		if ver == v2 {
			doc.TokenEndpoint = p + "/oauth2/v2.0/token"
			doc.JWKSURI = p + "/discovery/v2.0/keys"
			doc.ResponseTypesSupported = []string{"code", "id_token", "code id_token", "id_token token"}
			doc.ScopesSupported = []string{"openid", "profile", "email", "offline_access"}
			doc.Issuer = issuerV2(base, issuerTenant)
			no := false
			doc.RequestURIParameterSupported = &no
			doc.UserinfoEndpoint = "https://" + graphHost(base) + "/oidc/userinfo"
			doc.AuthorizationEndpoint = p + "/oauth2/v2.0/authorize"
			doc.DeviceAuthorizationEndpoint = p + "/oauth2/v2.0/devicecode"
			doc.EndSessionEndpoint = p + "/oauth2/v2.0/logout"
			doc.ClaimsSupported = []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
				"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"}
		} else {
			doc.TokenEndpoint = p + "/oauth2/token"
			doc.JWKSURI = p + "/discovery/keys"
			doc.ResponseTypesSupported = []string{"code", "id_token", "code id_token", "token id_token", "token"}
			doc.ScopesSupported = []string{"openid"}
			doc.Issuer = issuerV1(base, issuerTenant)
			doc.MicrosoftMultiRefreshToken = true
			doc.UserinfoEndpoint = p + "/openid/userinfo"
			doc.AuthorizationEndpoint = p + "/oauth2/authorize"
			doc.DeviceAuthorizationEndpoint = p + "/oauth2/devicecode"
			doc.EndSessionEndpoint = p + "/oauth2/logout"
			doc.CheckSessionIframe = p + "/oauth2/checksession"
			doc.ClaimsSupported = []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
				"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"}
		}
		setDiscoveryCaching(w)
		httpx.WriteJSON(w, http.StatusOK, doc)
	}
}

// handleKeys serves the JSON Web Key Set at /{tenant}/discovery[/v2.0]/keys.
// Every tenant publishes the same keys, as in Entra; the issuer field names
// the tenant (or {tenantid} for common), which is what MSAL and
// Microsoft.IdentityModel use to match keys to issuers.
func (s *Service) handleKeys(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("tenant")
	base := httpx.BaseURL(r)
	tenantID := tenantPlaceholder
	if !isMultiTenantAlias(ref) {
		t, e := s.resolveTenant(r.Context(), ref)
		if e != nil {
			s.refuseDiscovery(w, r, e)
			return
		}
		tenantID = t.ID
	}
	setDiscoveryCaching(w)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(s.keys.JWKS(issuerV2(base, tenantID)))
}

// refuseDiscovery sends a discovery refusal: Entra names an unknown tenant
// "invalid_tenant" on its discovery endpoints (but "invalid_request" on its
// token endpoints).
func (s *Service) refuseDiscovery(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.Code == codeTenantNotFound {
		e.OAuth = "invalid_tenant"
	}
	s.refuse(w, r, e)
}

// setDiscoveryCaching lets clients cache metadata for an hour: long enough
// to spare the store, short enough that a newly published signing key is
// seen well before it signs (clients also refetch keys on an unknown kid).
func setDiscoveryCaching(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "max-age=3600, private")
}

// instanceDiscovery is the answer of /common/discovery/instance.
type instanceDiscovery struct {
	TenantDiscoveryEndpoint string             `json:"tenant_discovery_endpoint"`
	APIVersion              string             `json:"api-version"`
	Metadata                []instanceMetadata `json:"metadata"`
}

type instanceMetadata struct {
	PreferredNetwork string   `json:"preferred_network"`
	PreferredCache   string   `json:"preferred_cache"`
	Aliases          []string `json:"aliases"`
}

// handleInstanceDiscovery answers MSAL's instance discovery, which it sends
// to validate an authority before trusting it. We vouch only for ourselves:
// the authorization endpoint must be an https URL on the host the request
// came to, and then the one alias of this instance is this host.
func (s *Service) handleInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	base := httpx.BaseURL(r)
	self, err := url.Parse(base)
	if err != nil {
		s.refuse(w, r, aadError(codeUnknownInstance))
		return
	}
	ae, err := url.Parse(r.URL.Query().Get("authorization_endpoint"))
	if err != nil || ae.Scheme != "https" || !strings.EqualFold(ae.Host, self.Host) || ae.User != nil {
		s.refuse(w, r, aadError(codeUnknownInstance))
		return
	}
	// The tenant is the authority's first path segment, as MSAL reads it.
	tenant := "common"
	if seg, _, _ := strings.Cut(strings.TrimPrefix(ae.Path, "/"), "/"); tenantSegment.MatchString(seg) {
		tenant = seg
	}
	host := strings.ToLower(self.Host)
	meta := instanceMetadata{PreferredNetwork: host, PreferredCache: host, Aliases: []string{host}}
	if isEntraBase(base) {
		// Reached as Entra: its public cloud's entry, which MSAL uses to
		// share one token cache across the aliases (preferred_cache) and
		// to send requests to one host (preferred_network).
		meta = instanceMetadata{PreferredNetwork: entraHost, PreferredCache: "login.windows.net", Aliases: entraAliases}
	}
	setDiscoveryCaching(w)
	httpx.WriteJSON(w, http.StatusOK, instanceDiscovery{
		TenantDiscoveryEndpoint: base + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		APIVersion:              "1.1",
		Metadata:                []instanceMetadata{meta},
	})
}
