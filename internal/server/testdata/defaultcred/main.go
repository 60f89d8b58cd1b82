// Command defaultcred is an unmodified Azure SDK program: it knows nothing
// of tenantbridge. It gets a token for Microsoft Graph with
// DefaultAzureCredential, configured by nothing but its environment, and
// prints the token's tid, oid and appid claims (and iss, aud and the header's
// kid) as JSON. With -graph it also calls Microsoft Graph with the token,
// through http.DefaultClient, and exits non-zero unless Graph answers 200.
//
// The tests build it and run it with only the environment `tenantbridge env`
// prints: whatever it reaches, it reaches by Azure's real names.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func main() {
	graph := flag.Bool("graph", false, "also GET https://graph.microsoft.com/v1.0/servicePrincipals?$top=1 with the token")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		fail("NewDefaultAzureCredential: %v", err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		fail("GetToken: %v", err)
	}
	out := map[string]any{}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		fail("the token is not a JWT")
	}
	var header, claims map[string]any
	decode(parts[0], &header)
	decode(parts[1], &claims)
	for _, c := range []string{"tid", "oid", "appid", "iss", "aud"} {
		out[c] = claims[c]
	}
	out["kid"] = header["kid"]

	if *graph {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://graph.microsoft.com/v1.0/servicePrincipals?$top=1", nil)
		if err != nil {
			fail("graph request: %v", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fail("GET graph.microsoft.com: %v", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fail("GET graph.microsoft.com: %s %s", resp.Status, body)
		}
		var page struct {
			Value []json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			fail("graph answer: %v", err)
		}
		out["graphStatus"] = resp.StatusCode
		out["graphCount"] = len(page.Value)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("%v", err)
	}
}

func decode(part string, v any) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		fail("the token is not a JWT: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "defaultcred: "+format+"\n", args...)
	os.Exit(1)
}
