package server_test

// MSAL Go, unmodified, with Entra's older authority host login.windows.net
// (still what ADAL-era configuration and many samples carry): instance
// discovery, tenant discovery and the token endpoint all answer under that
// name, and the token is the one login.microsoftonline.com issues.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

func TestMSALGoLoginWindowsNetAuthority(t *testing.T) {
	r := start(t, server.Config{})
	tc := r.createTenant(t, "oldconfig")
	cred, err := confidential.NewCredFromSecret(tc.Admin.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"login.windows.net", "login.microsoftonline.com"} {
		app, err := confidential.New("https://"+host+"/"+tc.TenantID, tc.Admin.ClientID, cred, confidential.WithHTTPClient(r.client()))
		if err != nil {
			t.Fatal(err)
		}
		res, err := app.AcquireTokenByCredential(context.Background(), []string{"https://graph.microsoft.com/.default"})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		parts := strings.Split(res.AccessToken, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Issuer string `json:"iss"`
			Tid    string `json:"tid"`
			Appid  string `json:"appid"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		// The same token as from login.microsoftonline.com: Graph's v1
		// token, issued by sts.windows.net for the tenant.
		if claims.Tid != tc.TenantID || claims.Appid != tc.Admin.ClientID || claims.Issuer != "https://sts.windows.net/"+tc.TenantID+"/" {
			t.Errorf("%s: token claims %+v", host, claims)
		}
	}
}
