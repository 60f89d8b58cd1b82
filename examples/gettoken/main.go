// Command gettoken is the README's quickstart program: an ordinary
// azidentity client that gets a token with DefaultAzureCredential and
// prints its claims. Nothing in it is specific to tenantbridge: the
// environment decides the credential (a secret, a managed identity, a
// federated token) and where the authority is, exactly as with Entra ID.
//
//	export SSL_CERT_FILE=.tenantbridge/ca.pem     # trust tenantbridge's local CA
//	export AZURE_AUTHORITY_HOST=https://127.0.0.1:8443/
//	export AZURE_TENANT_ID=... AZURE_CLIENT_ID=... AZURE_CLIENT_SECRET=...
//	go run ./examples/gettoken https://graph.microsoft.com/.default
//
// or, with the environment `tenantbridge env` prints (through the proxy, as
// login.microsoftonline.com itself):
//
//	eval "$(tenantbridge env --tenant contoso --identity worker)"
//	go run ./examples/gettoken https://vault.azure.net/.default
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func main() {
	scope := "https://graph.microsoft.com/.default"
	if len(os.Args) > 1 {
		scope = os.Args[1]
	}
	host := os.Getenv("AZURE_AUTHORITY_HOST")
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
		// The authority comes from AZURE_AUTHORITY_HOST, by default
		// login.microsoftonline.com. Another host cannot be checked by
		// instance discovery, which asks the real login.microsoftonline.com,
		// so for one it is turned off.
		DisableInstanceDiscovery: host != "" && !strings.Contains(host, "login.microsoftonline.com"),
	})
	if err != nil {
		fail(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		fail(err)
	}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		fail(fmt.Errorf("the token is not a JWT"))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		fail(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		fail(err)
	}
	out, _ := json.MarshalIndent(claims, "", "  ")
	fmt.Printf("token expires %s; claims:\n%s\n", tok.ExpiresOn.Local().Format("15:04:05"), out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gettoken:", err)
	os.Exit(1)
}
