package rbac_test

import (
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// The key data actions each Key Vault role grants, as Azure's built-in
// roles page (built-in-roles/security) lists them.
func TestKeyVaultKeyRoles(t *testing.T) {
	const kv = "Microsoft.KeyVault/vaults/keys/"
	all := []string{"read", "create/action", "import/action", "update/action", "delete", "recover/action", "purge/action",
		"backup/action", "restore/action", "rotate/action", "encrypt/action", "decrypt/action", "wrap/action", "unwrap/action",
		"sign/action", "verify/action", "release/action"}
	grants := map[string][]string{
		rbac.RoleKeyVaultAdministrator: all,
		rbac.RoleKeyVaultCryptoOfficer: all,
		rbac.RoleKeyVaultCryptoUser: {"read", "update/action", "backup/action", "encrypt/action", "decrypt/action",
			"wrap/action", "unwrap/action", "sign/action", "verify/action"},
		rbac.RoleKeyVaultCryptoServiceEncryptionUser: {"read", "wrap/action", "unwrap/action"},
		rbac.RoleKeyVaultReader:                      {"read"},
		rbac.RoleKeyVaultSecretsOfficer:              nil,
		rbac.RoleKeyVaultSecretsUser:                 nil,
		rbac.RoleOwner:                               nil,
	}
	for id, want := range grants {
		role, ok := rbac.BuiltInRole(id)
		if !ok {
			t.Fatalf("no built-in role %s", id)
		}
		granted := map[string]bool{}
		for _, a := range want {
			granted[a] = true
		}
		for _, a := range all {
			if got := rbac.Permits(role.Permissions, kv+a, true); got != granted[a] {
				t.Errorf("%s: data action %s%s allowed %v, want %v", role.Name, kv, a, got, granted[a])
			}
		}
	}
	if rbac.Permits(mustRole(t, rbac.RoleKeyVaultReader).Permissions, "Microsoft.KeyVault/vaults/secrets/getSecret/action", true) {
		t.Error("Key Vault Reader reads secret values")
	}
	if r, ok := rbac.BuiltInRole("Key Vault Crypto Service Encryption User"); !ok || r.ID != "e147488a-f6f5-4113-8e2d-b22465e65bf6" {
		t.Errorf("by name: %+v", r)
	}
}

func mustRole(t *testing.T, id string) store.RoleDefinition {
	r, ok := rbac.BuiltInRole(id)
	if !ok {
		t.Fatalf("no role %s", id)
	}
	return r
}

// A role assigned at one key's scope grants that key only; one at the
// vault grants every key in it.
func TestKeyScopedAssignment(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		A := e.a.ID
		kv := "/subscriptions/" + e.a.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
		one, vaultWide := e.sp(A), e.sp(A)
		e.assign(A, kv+"/keys/cmk", rbac.RoleKeyVaultCryptoServiceEncryptionUser, one, store.PrincipalServicePrincipal, "")
		e.assign(A, kv, rbac.RoleKeyVaultCryptoUser, vaultWide, store.PrincipalServicePrincipal, "")
		const wrap = "Microsoft.KeyVault/vaults/keys/wrap/action"
		for _, tc := range []struct {
			who, scope string
			want       bool
		}{
			{one, kv + "/keys/cmk", true},
			{one, kv + "/keys/CMK", true},
			{one, kv + "/keys/other", false},
			{one, kv, false},
			{vaultWide, kv + "/keys/other", true},
			{vaultWide, kv + "/keys/cmk", true},
		} {
			d, err := e.eng.Decide(e.ctx, rbac.Request{PrincipalID: tc.who, Action: wrap, DataAction: true, Scope: tc.scope})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tc.want {
				t.Errorf("%s at %s: allowed %v, want %v (%s)", tc.who, tc.scope, d.Allowed, tc.want, d.Because)
			}
		}
	})
}
