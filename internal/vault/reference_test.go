package vault_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

func TestParseSecretReference(t *testing.T) {
	ver := "0123456789abcdef0123456789ABCDEF"
	for uri, want := range map[string]vault.SecretReference{
		"https://pubkv.vault.azure.net/secrets/boot":           {Vault: "pubkv", Name: "boot"},
		"https://pubkv.vault.contoso.test/secrets/boot/" + ver: {Vault: "pubkv", Name: "boot", Version: strings.ToLower(ver)},
		"https://PubKV.vault.azure.net/Secrets/Boot-Strap-1":   {Vault: "PubKV", Name: "Boot-Strap-1"},
	} {
		got, err := vault.ParseSecretReference(uri)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", uri, got, err, want)
		}
	}
	for _, uri := range []string{"", "http://pubkv.vault.azure.net/secrets/boot", "https://pubkv.vault.azure.net/secrets/boot?x=1",
		"https://pubkv.vault.azure.net/secrets/boot#f", "https://pubkv.vault.azure.net:444/secrets/boot", "https://u@pubkv.vault.azure.net/secrets/boot",
		"https://pubkv.example.net/secrets/boot", "https://-bad.vault.azure.net/secrets/boot", "https://pubkv.vault.azure.net/keys/boot",
		"https://pubkv.vault.azure.net/secrets/", "https://pubkv.vault.azure.net/secrets/bo_ot", "https://pubkv.vault.azure.net/secrets/boot/123",
		"https://pubkv.vault.azure.net/secrets/boot/" + ver + "/x", "https://pubkv.vault./secrets/boot"} {
		if _, err := vault.ParseSecretReference(uri); !errors.Is(err, vault.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", uri, err)
		}
	}
}

// TestResolveReference: the platform reads the latest usable version of a
// tenant's secret, opened; another tenant's vault is not found; the read
// is audited as the platform, without the value.
func TestResolveReference(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		tid, other := e.contoso.Tenant.ID, e.fabrikam.Tenant.ID
		v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "pubkv"})
		must(t, err)
		owner := e.newApp(t, tid, "owner", false)
		e.grantAll(t, v, owner.spID)
		c := e.secrets(t, "https://pubkv.vault.azure.net", e.credential(t, tid, owner))
		s1, err := c.SetSecret(ctx, "boot", azsecrets.SetSecretParameters{Value: to.Ptr("VALUE-one")}, nil)
		must(t, err)
		const uri = "https://pubkv.vault.azure.net/secrets/boot"
		if got, err := e.vaults.ResolveReference(ctx, tid, uri); err != nil || got != "VALUE-one" {
			t.Fatalf("resolve: %q %v", got, err)
		}
		// A newer version that is disabled is passed over; one that expired too.
		s2, err := c.SetSecret(ctx, "boot", azsecrets.SetSecretParameters{Value: to.Ptr("VALUE-two"), SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil)
		must(t, err)
		_, err = c.SetSecret(ctx, "boot", azsecrets.SetSecretParameters{Value: to.Ptr("VALUE-three"),
			SecretAttributes: &azsecrets.SecretAttributes{Expires: to.Ptr(time.Now().Add(-time.Hour))}}, nil)
		must(t, err)
		if got, err := e.vaults.ResolveReference(ctx, tid, uri); err != nil || got != "VALUE-one" {
			t.Errorf("resolve past a disabled and an expired version: %q %v", got, err)
		}
		if got, err := e.vaults.ResolveReference(ctx, tid, uri+"/"+s1.ID.Version()); err != nil || got != "VALUE-one" {
			t.Errorf("resolve by version: %q %v", got, err)
		}
		if _, err := e.vaults.ResolveReference(ctx, tid, uri+"/"+s2.ID.Version()); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("a disabled version: %v, want ErrNotFound", err)
		}
		for name, tc := range map[string]struct{ tenant, uri string }{
			"another tenant": {other, uri},
			"no such vault":  {tid, "https://nokv.vault.azure.net/secrets/boot"},
			"no such secret": {tid, "https://pubkv.vault.azure.net/secrets/missing"},
		} {
			if _, err := e.vaults.ResolveReference(ctx, tc.tenant, tc.uri); !errors.Is(err, vault.ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", name, err)
			}
		}
		if _, err := e.vaults.ResolveReference(ctx, tid, "https://pubkv.example/secrets/boot"); !errors.Is(err, vault.ErrInvalid) {
			t.Errorf("bad URI: %v, want ErrInvalid", err)
		}
		var recs []store.AuditRecord
		waitUntil(t, func() bool {
			recs, err = st.ListAudit(ctx, store.AuditQuery{TenantID: tid})
			must(t, err)
			n := 0
			for _, r := range recs {
				if r.Action == "secret.reference" {
					n++
				}
			}
			return n >= 4
		})
		ok := false
		for _, r := range recs {
			if strings.Contains(r.Detail, "VALUE") || strings.Contains(r.Target, "VALUE") {
				t.Errorf("audit carries the value: %+v", r)
			}
			if r.Action == "secret.reference" && r.Actor == "Microsoft.Solutions" && r.Result == "success" && r.Target == "pubkv/boot" {
				ok = true
			}
		}
		if !ok {
			t.Errorf("no successful secret.reference audit by Microsoft.Solutions: %+v", recs)
		}
	})
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
