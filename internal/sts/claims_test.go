package sts_test

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestTokenClaims checks the claim sets and responses of app tokens: v1 and
// v2 by the resource's accepted version whatever the endpoint, the audience
// as requested, roles only where granted, and the response fields per endpoint.
func TestTokenClaims(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		fab := e.fabrikam.ID
		v1Only := []string{"appid", "appidacr"}
		v2Only := []string{"azp", "azpacr"}

		cases := []struct {
			name      string
			v2        bool
			resource  string // scope for v2, resource for v1
			aud       string
			ver       string
			roles     []string
			wantRoles bool
		}{
			{name: "Graph v2 endpoint", v2: true, resource: "https://graph.microsoft.com/.default", aud: "https://graph.microsoft.com", ver: "1.0",
				roles: []string{directory.PermUserReadAll}, wantRoles: true},
			{name: "ARM double slash", v2: true, resource: "https://management.azure.com//.default", aud: "https://management.azure.com/", ver: "1.0"},
			{name: "ARM single slash", v2: true, resource: "https://management.azure.com/.default", aud: "https://management.azure.com", ver: "1.0"},
			{name: "Key Vault, no roles", v2: true, resource: "https://vault.azure.net/.default", aud: "https://vault.azure.net", ver: "1.0"},
			{name: "Key Vault v1 endpoint", resource: "https://vault.azure.net", aud: "https://vault.azure.net", ver: "1.0"},
			{name: "by appId", v2: true, resource: directory.GraphAppID + "/.default", aud: directory.GraphAppID, ver: "1.0",
				roles: []string{directory.PermUserReadAll}, wantRoles: true},
			{name: "v2 API", v2: true, resource: ordersURI + "/.default openid profile offline_access", aud: e.orders.AppID, ver: "2.0",
				roles: []string{"Orders.Read"}, wantRoles: true},
			{name: "v2 API from the v1 endpoint", resource: ordersURI, aud: e.orders.AppID, ver: "2.0",
				roles: []string{"Orders.Read"}, wantRoles: true},
		}
		for _, tc := range cases {
			status, doc := e.clientCredentials(fab, tc.v2, tc.resource)
			if status != 200 {
				t.Fatalf("%s: %d %v", tc.name, status, doc)
			}
			raw := doc["access_token"].(string)
			header, claims := decodeJWT(t, raw)
			if claims["aud"] != tc.aud || claims["ver"] != tc.ver || claims["tid"] != fab ||
				claims["oid"] != e.providerSPOther.ID || claims["sub"] != e.providerSPOther.ID || claims["idtyp"] != "app" {
				t.Errorf("%s: aud %v ver %v tid %v oid %v sub %v idtyp %v", tc.name, claims["aud"], claims["ver"], claims["tid"], claims["oid"], claims["sub"], claims["idtyp"])
			}
			for _, k := range []string{"iat", "nbf", "exp", "uti", "rh", "aio", "idp"} {
				if claims[k] == nil {
					t.Errorf("%s: claim %s missing", tc.name, k)
				}
			}
			if _, ok := claims["scp"]; ok {
				t.Errorf("%s: app token has scp", tc.name)
			}
			present, absent, iss := v1Only, v2Only, e.srv.URL+"/"+fab+"/"
			if tc.ver == "2.0" {
				present, absent, iss = v2Only, v1Only, e.srv.URL+"/"+fab+"/v2.0"
			}
			for _, k := range present {
				if claims[k] == nil {
					t.Errorf("%s: %s missing", tc.name, k)
				}
			}
			for _, k := range absent {
				if claims[k] != nil {
					t.Errorf("%s: %s present in a v%s token", tc.name, k, tc.ver)
				}
			}
			if claims["iss"] != iss {
				t.Errorf("%s: iss %v, want %s", tc.name, claims["iss"], iss)
			}
			// Entra's headers: v1 has x5t and kid, v2 only kid.
			if header["kid"] != e.keys.Current().KeyID || header["alg"] != "RS256" || (header["x5t"] != nil) != (tc.ver == "1.0") {
				t.Errorf("%s: header %v", tc.name, header)
			}
			roles, hasRoles := claims["roles"]
			if hasRoles != tc.wantRoles {
				t.Errorf("%s: roles claim present=%v, want %v (%v)", tc.name, hasRoles, tc.wantRoles, roles)
			}
			if tc.wantRoles {
				var got []string
				for _, r := range roles.([]any) {
					got = append(got, r.(string))
				}
				if !slices.Equal(got, tc.roles) {
					t.Errorf("%s: roles %v, want %v", tc.name, got, tc.roles)
				}
			}

			// The response: lifetimes of 60 to 90 minutes, no scope; v2
			// writes them as numbers, v1 as strings (seed 003: "expires_in":
			// "4549") and adds expires_on, not_before and resource.
			in, ok := doc["expires_in"].(float64)
			if s, isString := doc["expires_in"].(string); isString && !tc.v2 {
				n, err := strconv.ParseInt(s, 10, 64)
				in, ok = float64(n), err == nil
			} else if !tc.v2 {
				ok = false
			}
			if !ok || in != float64(int64(in)) || in < 3599-2 || in > 5399 || doc["ext_expires_in"] != doc["expires_in"] || doc["token_type"] != "Bearer" {
				t.Errorf("%s: expires_in %v ext %v type %v", tc.name, doc["expires_in"], doc["ext_expires_in"], doc["token_type"])
			}
			if exp := claims["exp"].(float64); exp-claims["iat"].(float64) < 3599 || claims["nbf"] != claims["iat"] {
				t.Errorf("%s: iat %v nbf %v exp %v", tc.name, claims["iat"], claims["nbf"], exp)
			}
			if _, ok := doc["scope"]; ok {
				t.Errorf("%s: response has scope", tc.name)
			}
			if tc.v2 {
				if doc["expires_on"] != nil || doc["resource"] != nil {
					t.Errorf("%s: v2 response has v1 fields: %v", tc.name, doc)
				}
			} else {
				on, _ := doc["expires_on"].(string)
				if n, err := strconv.ParseInt(on, 10, 64); err != nil || float64(n) != claims["exp"] || doc["resource"] != tc.resource {
					t.Errorf("%s: expires_on %v resource %v", tc.name, doc["expires_on"], doc["resource"])
				}
				if nb, _ := doc["not_before"].(string); nb != strconv.FormatInt(int64(claims["nbf"].(float64)), 10) {
					t.Errorf("%s: not_before %v", tc.name, doc["not_before"])
				}
			}
		}

		// The home tenant: no idp (the app is from here).
		status, doc := e.clientCredentials(e.contoso.ID, true, "https://graph.microsoft.com/.default")
		if status != 200 {
			t.Fatalf("home: %d %v", status, doc)
		}
		if _, claims := decodeJWT(t, doc["access_token"].(string)); claims["idp"] != nil || claims["oid"] != e.providerSPHome.ID {
			t.Errorf("home token: idp %v oid %v", claims["idp"], claims["oid"])
		}

		// The issue is on record, with who, where, for what, and never the secret.
		a := e.lastAudit()
		if a.Action != "token.issue" || a.Result != "success" || a.Actor != e.provider.AppID || a.ActorTenant != e.contoso.ID ||
			a.TargetTenant != e.contoso.ID || a.Target != "https://graph.microsoft.com" || a.RequestID == "" {
			t.Errorf("audit %+v", a)
		}
		recs, err := e.audit.List(e.ctx, store.AuditQuery{TenantID: fab})
		must(t, err)
		if len(recs) != len(cases) {
			t.Errorf("fabrikam has %d audit records, want %d", len(recs), len(cases))
		}
		for _, r := range recs {
			if r.ActorTenant != e.contoso.ID || r.TargetTenant != fab {
				t.Errorf("cross-tenant audit %+v", r)
			}
			if strings.Contains(r.Detail+r.Target+r.Actor, e.providerSecret) {
				t.Error("audit record holds the secret")
			}
		}
	})
}

// TestClientCapabilities: xms_cc only when the claims parameter asks for
// CP1; a claims value that is not JSON is ignored, not refused.
func TestClientCapabilities(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	for claimsParam, want := range map[string]bool{
		`{"access_token":{"xms_cc":{"values":["CP1"]}}}`: true,
		`{"access_token":{"xms_cc":{"values":["cp2"]}}}`: false,
		`not json`: false,
		``:         false,
	} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.provider.AppID}, "client_secret": {e.providerSecret},
			"scope": {"https://vault.azure.net/.default"}, "claims": {claimsParam}, "client_info": {"1"}}
		resp, doc := e.post(e.tokenURL(e.contoso.ID, true), form, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%q: %d %v", claimsParam, resp.StatusCode, doc)
		}
		_, claims := decodeJWT(t, doc["access_token"].(string))
		if got := claims["xms_cc"] != nil; got != want {
			t.Errorf("%q: xms_cc %v, want present=%v", claimsParam, claims["xms_cc"], want)
		}
	}
}

// TestRevocation: a token stops being issued when the
// customer removes the provider's service principal, and roles follow
// assignments as they change.
func TestRevocation(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	graph := "https://graph.microsoft.com/.default"
	as, err := e.dir.AppRoleAssignmentsOf(e.ctx, e.fabrikam.ID, e.providerSPOther.ID)
	must(t, err)
	for _, a := range as {
		must(t, e.dir.RemoveAppRoleAssignment(e.ctx, e.fabrikam.ID, a.ID))
	}
	status, doc := e.clientCredentials(e.fabrikam.ID, true, graph)
	if _, claims := decodeJWT(t, doc["access_token"].(string)); status != 200 || claims["roles"] != nil {
		t.Errorf("after revoking roles: %d roles %v", status, claims["roles"])
	}
	must(t, e.dir.DeleteServicePrincipal(e.ctx, e.fabrikam.ID, e.providerSPOther.ID))
	status, doc = e.clientCredentials(e.fabrikam.ID, true, graph)
	if status != 400 || doc["error_codes"].([]any)[0] != float64(700016) {
		t.Errorf("after removing the service principal: %d %v", status, doc["error_description"])
	}
}
