package armtemplate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// keyVaultTemplate takes one securestring, one string and one
// secureObject parameter and shows none of them in an output.
const keyVaultTemplate = head + `"parameters": {"pw": {"type": "securestring"}, "name": {"type": "string", "defaultValue": "n"},
 "obj": {"type": "secureObject", "defaultValue": {}}}, "resources": [], "outputs": {"len": {"type": "int", "value": "[length(parameters('pw'))]"}}}`

// FuzzKeyVaultParameterReference feeds the parameters of a deployment
// (where Key Vault references are parsed) arbitrary JSON: every input is
// planned or refused with an *Error, never a panic; a secret reaches only
// the securestring parameter.
func FuzzKeyVaultParameterReference(f *testing.F) {
	for _, s := range []string{
		`{"pw": {"reference": {"keyVault": {"id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1"}, "secretName": "s"}}}`,
		`{"pw": {"reference": {"keyVault": {"id": "/subscriptions/x/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1"}, "secretName": "s", "secretVersion": "v1"}}}`,
		`{"pw": {"value": "x"}, "name": {"reference": {"keyVault": {"id": "/k"}, "secretName": "s"}}}`,
		`{"pw": {"value": "x"}, "obj": {"reference": {"keyVault": {"id": "/k"}, "secretName": "s"}}}`,
		`{"pw": {"reference": {"keyVault": "x", "secretName": 3}}}`, `{"pw": {"reference": null}}`, `{"pw": []}`, `{"pw": {"reference": {}}}`,
	} {
		f.Add([]byte(s))
	}
	tp, err := Parse([]byte(keyVaultTemplate))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var params map[string]any
		if json.Unmarshal(data, &params) != nil {
			return
		}
		dc := testContext()
		dc.Resolver = staticResolver{secrets: map[string]string{
			"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1/s/": "from-the-vault"}}
		p, err := tp.Plan(context.Background(), dc, params)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("Plan error %T: %v", err, err)
			}
			return
		}
		for _, v := range p.Parameters {
			if !v.Secure && strings.Contains(toText(FromPlain(v.Value)), "from-the-vault") {
				t.Fatalf("the secret reached the non-secure parameter %s", v.Name)
			}
		}
	})
}

// TestKeyVaultReferenceOnlySecureString: a reference gives a securestring
// its secret; a string or secureObject parameter refuses one.
func TestKeyVaultReferenceOnlySecureString(t *testing.T) {
	tp, err := Parse([]byte(keyVaultTemplate))
	if err != nil {
		t.Fatal(err)
	}
	const vault = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1"
	ref := map[string]any{"reference": map[string]any{"keyVault": map[string]any{"id": vault}, "secretName": "s"}}
	dc := testContext()
	dc.Resolver = staticResolver{secrets: map[string]string{vault + "/s/": "from-the-vault"}}
	p, err := tp.Plan(context.Background(), dc, map[string]any{"pw": ref})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range p.Parameters {
		if v.Name == "pw" && (v.Value != "from-the-vault" || !v.Secure) {
			t.Errorf("pw = %+v", v)
		}
	}
	for _, name := range []string{"name", "obj"} {
		_, err := tp.Plan(context.Background(), dc, map[string]any{"pw": map[string]any{"value": "x"}, name: ref})
		var ae *Error
		if !errors.As(err, &ae) || !strings.Contains(ae.Message, "only give a securestring") {
			t.Errorf("a reference for %s: %v", name, err)
		}
	}
}
