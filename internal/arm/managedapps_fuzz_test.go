package arm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// FuzzParseSpec: any deployment spec parses or is refused with an
// InvalidDeploymentSpec error naming a path, never a panic; what parses
// re-encodes and parses again.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `[]`, `{"vaults":[{"name":"kv{uniqueSuffix}"}]}`,
		`{"serviceBusNamespaces":[{"name":"bus{uniqueSuffix}","queues":[{"name":"q","properties":{"lockDuration":"PT30S"}}]}]}`,
		`{"userAssignedIdentities":[{"name":"id","federatedCredentials":[{"name":"f","issuer":"https://x/","subject":"s","audiences":["api://AzureADTokenExchange"]}]}]}`,
		`{"roleAssignments":[{"role":"Reader","principal":"applicationIdentity","scope":"managedResourceGroup"}]}`,
		`{"registration":{"endpoint":"https://p.example/register","credentialMode":"secret","vault":"kv"}}`,
		`{"vaults":[{"name":"kv{uniqueSuffix}"}],"registration":{"endpoint":"https://p.example/register","credentialMode":"secret","vault":"kv{uniqueSuffix}","bootstrapSecret":"https://pubkv.vault.azure.net/secrets/boot/0123456789abcdef0123456789ABCDEF"}}`,
		`{"vaults":[{"name":"a"},{"name":"a"}]}`, `{"unknown":1}`,
	} {
		f.Add(s)
	}
	publisherKind := func(string) (store.PrincipalType, error) { return store.PrincipalServicePrincipal, nil }
	f.Fuzz(func(t *testing.T, raw string) {
		spec, err := parseSpec(json.RawMessage(raw), publisherKind)
		if err != nil {
			if !strings.Contains(err.Error(), "deploymentSpec") {
				t.Fatalf("error without the spec's path: %v", err)
			}
			return
		}
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := parseSpec(b, publisherKind); err != nil {
			t.Fatalf("re-encoded spec %s refused: %v", b, err)
		}
	})
}
