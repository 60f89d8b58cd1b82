package main

import (
	"encoding/json"
	"strings"
	"testing"
)

type keyVaultJSON struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	ResourceGroup string `json:"resourceGroup"`
	Properties    struct {
		TenantID                  string `json:"tenantId"`
		VaultURI                  string `json:"vaultUri"`
		SoftDeleteRetentionInDays int    `json:"softDeleteRetentionInDays"`
		EnableRbacAuthorization   bool   `json:"enableRbacAuthorization"`
	} `json:"properties"`
}

type secretJSON struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Value      *string `json:"value"`
	RecoveryID string  `json:"recoveryId"`
	Attributes struct {
		Enabled       bool   `json:"enabled"`
		RecoveryLevel string `json:"recoveryLevel"`
	} `json:"attributes"`
}

func TestKeyVaultCommandsAgainstServer(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "vaults")

	// create: the group is made, the caller becomes Secrets Officer.
	r := tb(t, dir, "keyvault", "create", "--name", "kv-cli-test", "--resource-group", "secrets", "--retention-days", "7", "-o", "json")
	if r.code != 0 {
		t.Fatalf("keyvault create: exit %d\n%s%s", r.code, r.stderr, r.stdout)
	}
	if !strings.Contains(r.stderr, "Created resource group secrets") || !strings.Contains(r.stderr, "Key Vault Secrets Officer") {
		t.Errorf("keyvault create notes: %q", r.stderr)
	}
	var kv keyVaultJSON
	okJSONText(t, r.stdout, &kv)
	wantID := "/subscriptions/" + tenant.SubscriptionID + "/resourceGroups/secrets/providers/Microsoft.KeyVault/vaults/kv-cli-test"
	if kv.ID != wantID || kv.ResourceGroup != "secrets" || kv.Properties.VaultURI != "https://kv-cli-test.vault.azure.net/" ||
		kv.Properties.TenantID != tenant.TenantID || kv.Properties.SoftDeleteRetentionInDays != 7 || !kv.Properties.EnableRbacAuthorization {
		t.Errorf("created vault %+v", kv)
	}
	// The name is global: another group cannot have it.
	if r := tb(t, dir, "keyvault", "create", "--name", "KV-CLI-TEST", "--resource-group", "other"); r.code == 0 || !strings.Contains(r.stderr, "error: VaultAlreadyExists") {
		t.Errorf("second vault of the name: exit %d\n%s", r.code, r.stderr)
	}
	var vs []keyVaultJSON
	okJSON(t, dir, &vs, "keyvault", "list")
	if len(vs) != 1 || vs[0].ID != wantID {
		t.Errorf("keyvault list %+v", vs)
	}
	okJSON(t, dir, &kv, "keyvault", "show", "--name", "kv-cli-test")
	if kv.ID != wantID {
		t.Errorf("keyvault show %+v", kv)
	}
	if out := ok(t, dir, "keyvault", "list", "-g", "secrets"); !strings.Contains(out, "kv-cli-test") {
		t.Errorf("keyvault list -g: %s", out)
	}

	// Secrets, through the azsecrets client.
	var s secretJSON
	okJSON(t, dir, &s, "keyvault", "secret", "set", "--vault-name", "kv-cli-test", "--name", "db-password", "--value", "hunter2")
	if s.Name != "db-password" || s.Value == nil || *s.Value != "hunter2" || !s.Attributes.Enabled ||
		!strings.HasPrefix(s.ID, "https://kv-cli-test.vault.azure.net/secrets/db-password/") {
		t.Errorf("secret set %+v", s)
	}
	okJSON(t, dir, &s, "keyvault", "secret", "show", "--vault-name", "kv-cli-test", "--name", "db-password")
	if s.Value == nil || *s.Value != "hunter2" {
		t.Errorf("secret show %+v", s)
	}
	var list []secretJSON
	okJSON(t, dir, &list, "keyvault", "secret", "list", "--vault-name", "kv-cli-test")
	if len(list) != 1 || list[0].Name != "db-password" || list[0].Value != nil {
		t.Errorf("secret list %+v", list)
	}
	okJSON(t, dir, &s, "keyvault", "secret", "delete", "--vault-name", "kv-cli-test", "--name", "db-password")
	if s.RecoveryID == "" {
		t.Errorf("secret delete %+v", s)
	}
	fails(t, dir, "SecretNotFound", "keyvault", "secret", "show", "--vault-name", "kv-cli-test", "--name", "db-password")
	okJSON(t, dir, &list, "keyvault", "secret", "list", "--vault-name", "kv-cli-test", "--deleted")
	if len(list) != 1 || list[0].Name != "db-password" {
		t.Errorf("secret list --deleted %+v", list)
	}
	ok(t, dir, "keyvault", "secret", "recover", "--vault-name", "kv-cli-test", "--name", "db-password")
	okJSON(t, dir, &s, "keyvault", "secret", "show", "--vault-name", "kv-cli-test", "--name", "db-password")
	if s.Value == nil || *s.Value != "hunter2" {
		t.Errorf("secret show after recover %+v", s)
	}
	ok(t, dir, "keyvault", "secret", "delete", "--vault-name", "kv-cli-test", "--name", "db-password")
	r = tb(t, dir, "keyvault", "secret", "purge", "--vault-name", "kv-cli-test", "--name", "db-password")
	if r.code != 0 || !strings.Contains(r.stderr, "Purged secret db-password") {
		t.Fatalf("secret purge: exit %d\n%s%s", r.code, r.stderr, r.stdout)
	}
	fails(t, dir, "NotFound", "keyvault", "secret", "recover", "--vault-name", "kv-cli-test", "--name", "db-password")
	okJSON(t, dir, &list, "keyvault", "secret", "list", "--vault-name", "kv-cli-test", "--deleted")
	if len(list) != 0 {
		t.Errorf("deleted secrets after purge %+v", list)
	}

	// Delete the vault: it is gone, and so is its data plane.
	r = tb(t, dir, "keyvault", "delete", "--name", "kv-cli-test")
	if r.code != 0 || !strings.Contains(r.stderr, "Deleted vault kv-cli-test") {
		t.Fatalf("keyvault delete: exit %d\n%s%s", r.code, r.stderr, r.stdout)
	}
	okJSON(t, dir, &vs, "keyvault", "list")
	if len(vs) != 0 {
		t.Errorf("vaults after delete %+v", vs)
	}
	fails(t, dir, "not found", "keyvault", "show", "--name", "kv-cli-test")
	r = tb(t, dir, "keyvault", "secret", "list", "--vault-name", "kv-cli-test")
	if r.code == 0 {
		t.Errorf("secret list of a deleted vault succeeded: %s", r.stdout)
	}
}

func okJSONText(t *testing.T, text string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, text)
	}
}
