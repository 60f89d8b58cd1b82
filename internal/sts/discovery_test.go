package sts_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func (e *env) getJSON(path string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	must(e.t, err)
	resp, doc := e.do(req)
	return resp.StatusCode, doc
}

// TestOpenIDConfiguration checks the discovery documents: the v2 issuer on
// the request's own host (MSAL's issuer check), endpoints under the tenant
// id whatever name the request used, and the {tenantid} placeholder for common.
func TestOpenIDConfiguration(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	tid := e.contoso.ID
	base := e.srv.URL

	for _, ref := range []string{tid, e.contoso.Domain, strings.ToUpper(e.contoso.Domain), "contoso"} {
		status, doc := e.getJSON("/" + ref + "/v2.0/.well-known/openid-configuration")
		if status != 200 {
			t.Fatalf("%s: %d %v", ref, status, doc)
		}
		want := map[string]any{
			"issuer":                        base + "/" + tid + "/v2.0",
			"token_endpoint":                base + "/" + tid + "/oauth2/v2.0/token",
			"authorization_endpoint":        base + "/" + tid + "/oauth2/v2.0/authorize",
			"device_authorization_endpoint": base + "/" + tid + "/oauth2/v2.0/devicecode",
			"jwks_uri":                      base + "/" + tid + "/discovery/v2.0/keys",
			"end_session_endpoint":          base + "/" + tid + "/oauth2/v2.0/logout",
			"tenant_region_scope":           "WW",
		}
		for k, v := range want {
			if doc[k] != v {
				t.Errorf("%s: %s = %v, want %v", ref, k, doc[k], v)
			}
		}
		for _, k := range []string{"userinfo_endpoint", "cloud_instance_name", "msgraph_host", "response_types_supported",
			"subject_types_supported", "token_endpoint_auth_methods_supported", "scopes_supported", "claims_supported"} {
			if doc[k] == nil {
				t.Errorf("%s: %s missing", ref, k)
			}
		}
		if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "RS256" {
			t.Errorf("algs %v", doc["id_token_signing_alg_values_supported"])
		}
	}

	status, doc := e.getJSON("/" + e.contoso.Domain + "/.well-known/openid-configuration")
	if status != 200 || doc["issuer"] != base+"/"+tid+"/" || doc["token_endpoint"] != base+"/"+tid+"/oauth2/token" ||
		doc["jwks_uri"] != base+"/"+tid+"/discovery/keys" {
		t.Errorf("v1 document: %d issuer %v token %v jwks %v", status, doc["issuer"], doc["token_endpoint"], doc["jwks_uri"])
	}

	for _, alias := range []string{"common", "organizations"} {
		status, doc = e.getJSON("/" + alias + "/v2.0/.well-known/openid-configuration")
		if status != 200 || doc["issuer"] != base+"/{tenantid}/v2.0" || doc["token_endpoint"] != base+"/"+alias+"/oauth2/v2.0/token" {
			t.Errorf("%s: %d issuer %v token %v", alias, status, doc["issuer"], doc["token_endpoint"])
		}
		if v, ok := doc["tenant_region_scope"]; !ok || v != nil {
			t.Errorf("%s: tenant_region_scope = %v, want null", alias, v)
		}
	}
	status, doc = e.getJSON("/common/.well-known/openid-configuration")
	if status != 200 || doc["issuer"] != base+"/{tenantid}/" {
		t.Errorf("common v1: %d issuer %v", status, doc["issuer"])
	}

	status, doc = e.getJSON("/nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration")
	if status != 400 || doc["error"] != "invalid_tenant" || !strings.HasPrefix(doc["error_description"].(string), "AADSTS90002: Tenant 'nosuch.onmicrosoft.com' not found.") {
		t.Errorf("unknown tenant: %d %v %v", status, doc["error"], doc["error_description"])
	}
}

// TestEntraHostIssuers: reached as login.microsoftonline.com, the issuers
// are exactly Entra's, so code with them hard-coded accepts our tokens.
func TestEntraHostIssuers(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	tid := e.contoso.ID
	get := func(path string) map[string]any {
		r := httptest.NewRequest(http.MethodGet, "https://login.microsoftonline.com"+path, nil)
		r = r.WithContext(httpx.WithInfo(r.Context(), httpx.Info{BaseURL: "https://login.microsoftonline.com"}))
		w := httptest.NewRecorder()
		e.svc.ServeHTTP(w, r)
		var doc map[string]any
		must(t, json.Unmarshal(w.Body.Bytes(), &doc))
		return doc
	}
	if doc := get("/" + tid + "/v2.0/.well-known/openid-configuration"); doc["issuer"] != "https://login.microsoftonline.com/"+tid+"/v2.0" ||
		doc["msgraph_host"] != "graph.microsoft.com" || doc["cloud_instance_name"] != "microsoftonline.com" ||
		doc["userinfo_endpoint"] != "https://graph.microsoft.com/oidc/userinfo" {
		t.Errorf("v2: %v", doc)
	}
	if doc := get("/" + tid + "/.well-known/openid-configuration"); doc["issuer"] != "https://sts.windows.net/"+tid+"/" {
		t.Errorf("v1 issuer %v", doc["issuer"])
	}
	if doc := get("/common/v2.0/.well-known/openid-configuration"); doc["issuer"] != "https://login.microsoftonline.com/{tenantid}/v2.0" {
		t.Errorf("common issuer %v", doc["issuer"])
	}
	// Entra's other names, which its instance discovery lists as aliases,
	// answer with the same issuers.
	for _, alias := range []string{"login.windows.net", "login.microsoft.com", "sts.windows.net"} {
		r := httptest.NewRequest(http.MethodGet, "https://"+alias+"/"+tid+"/v2.0/.well-known/openid-configuration", nil)
		r = r.WithContext(httpx.WithInfo(r.Context(), httpx.Info{BaseURL: "https://" + alias}))
		w := httptest.NewRecorder()
		e.svc.ServeHTTP(w, r)
		var doc map[string]any
		must(t, json.Unmarshal(w.Body.Bytes(), &doc))
		if doc["issuer"] != "https://login.microsoftonline.com/"+tid+"/v2.0" {
			t.Errorf("%s: issuer %v", alias, doc["issuer"])
		}
	}

	// And the tokens carry them, and the verifier accepts them.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.provider.AppID}, "client_secret": {e.providerSecret},
		"scope": {"https://graph.microsoft.com/.default"}}
	r := httptest.NewRequest(http.MethodPost, "https://login.microsoftonline.com/"+tid+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r = r.WithContext(httpx.WithInfo(r.Context(), httpx.Info{BaseURL: "https://login.microsoftonline.com"}))
	w := httptest.NewRecorder()
	e.svc.ServeHTTP(w, r)
	var resp map[string]any
	must(t, json.Unmarshal(w.Body.Bytes(), &resp))
	c, err := e.verifier.Verify(e.ctx, resp["access_token"].(string), "https://graph.microsoft.com/")
	must(t, err)
	if c.Issuer != "https://sts.windows.net/"+tid+"/" {
		t.Errorf("issuer %q", c.Issuer)
	}
}

// TestKeys checks the JWKS endpoints: the current signing key, Entra's
// fields, and the issuer naming the tenant (or {tenantid}).
func TestKeys(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	kid := e.keys.Current().KeyID
	for path, issuer := range map[string]string{
		"/" + e.contoso.ID + "/discovery/v2.0/keys": e.srv.URL + "/" + e.contoso.ID + "/v2.0",
		"/" + e.contoso.Domain + "/discovery/keys":  e.srv.URL + "/" + e.contoso.ID + "/v2.0",
		"/common/discovery/keys":                    e.srv.URL + "/{tenantid}/v2.0",
		"/organizations/discovery/v2.0/keys":        e.srv.URL + "/{tenantid}/v2.0",
	} {
		status, doc := e.getJSON(path)
		keys, _ := doc["keys"].([]any)
		if status != 200 || len(keys) != 1 {
			t.Fatalf("%s: %d %v", path, status, doc)
		}
		k := keys[0].(map[string]any)
		if k["kid"] != kid || k["x5t"] != kid || k["kty"] != "RSA" || k["use"] != "sig" || k["e"] != "AQAB" || k["issuer"] != issuer {
			t.Errorf("%s: key %v, want kid %s issuer %s", path, k, kid, issuer)
		}
	}
	if status, doc := e.getJSON("/nosuch/discovery/keys"); status != 400 || doc["error"] != "invalid_tenant" {
		t.Errorf("unknown tenant keys: %d %v", status, doc)
	}
}

// TestInstanceDiscovery answers MSAL's authority validation for our own host only.
func TestInstanceDiscovery(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	host := strings.TrimPrefix(e.srv.URL, "https://")
	q := url.Values{"api-version": {"1.1"}, "authorization_endpoint": {e.srv.URL + "/contoso.onmicrosoft.com/oauth2/v2.0/authorize"}}
	status, doc := e.getJSON("/common/discovery/instance?" + q.Encode())
	if status != 200 {
		t.Fatalf("%d %v", status, doc)
	}
	if doc["tenant_discovery_endpoint"] != e.srv.URL+"/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration" || doc["api-version"] != "1.1" {
		t.Errorf("doc %v", doc)
	}
	meta, _ := doc["metadata"].([]any)
	if len(meta) != 1 {
		t.Fatalf("metadata %v", doc["metadata"])
	}
	m := meta[0].(map[string]any)
	if m["preferred_network"] != host || m["preferred_cache"] != host || len(m["aliases"].([]any)) != 1 || m["aliases"].([]any)[0] != host {
		t.Errorf("metadata %v, want host %s", m, host)
	}

	// Reached by one of Entra's names, Entra's public cloud entry: its
	// aliases, one cache for them all, requests to login.microsoftonline.com
	// (what MSAL knows: known_metadata.go).
	for _, entra := range []string{"login.windows.net", "login.microsoftonline.com", "login.microsoft.com", "sts.windows.net"} {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/common/discovery/instance?"+url.Values{"api-version": {"1.1"},
			"authorization_endpoint": {"https://" + entra + "/contoso.onmicrosoft.com/oauth2/v2.0/authorize"}}.Encode(), nil)
		must(t, err)
		req.Host = entra
		resp, doc := e.do(req)
		meta, _ := doc["metadata"].([]any)
		if resp.StatusCode != 200 || len(meta) != 1 {
			t.Fatalf("%s: %d %v", entra, resp.StatusCode, doc)
		}
		m := meta[0].(map[string]any)
		aliases := fmt.Sprint(m["aliases"])
		if m["preferred_network"] != "login.microsoftonline.com" || m["preferred_cache"] != "login.windows.net" ||
			aliases != "[login.microsoftonline.com login.windows.net login.microsoft.com sts.windows.net]" ||
			doc["tenant_discovery_endpoint"] != "https://"+entra+"/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration" {
			t.Errorf("%s: %v", entra, doc)
		}
	}

	for _, ae := range []string{
		"",
		"https://login.evil.example/contoso/oauth2/v2.0/authorize",
		"http://" + host + "/contoso/oauth2/v2.0/authorize",
		"not a url at all",
	} {
		status, doc := e.getJSON("/common/discovery/instance?" + url.Values{"api-version": {"1.1"}, "authorization_endpoint": {ae}}.Encode())
		if status != 400 || doc["error"] != "invalid_instance" || !strings.HasPrefix(doc["error_description"].(string), "AADSTS50049: ") {
			t.Errorf("%q: %d %v %v", ae, status, doc["error"], doc["error_description"])
		}
	}
}
