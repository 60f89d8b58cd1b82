package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// The unmodified azsecrets client, with its default options but for the
// transport, reaches a vault at {vault}.vault.azure.net through the whole
// server: Key Vault's challenge sends it to login.microsoftonline.com, and
// the RBAC engine decides. Owner of the subscription holds no data actions,
// exactly as in Azure, so the admin reads secrets only once a Key Vault
// data role is assigned to it.
func TestKeyVaultThroughServer(t *testing.T) {
	r := start(t, server.Config{})
	ctx := context.Background()
	tc := r.createTenant(t, "vaulted")
	v, err := r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: tc.TenantID, Name: "orders-kv", ResourceGroup: "app"})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := azidentity.NewClientSecretCredential(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := azsecrets.NewClient("https://orders-kv.vault.azure.net", cred,
		&azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	value := "s3cret"
	_, err = client.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: &value}, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("set without a data role: %v", err)
	}

	sp := tc.Admin.ServicePrincipalID
	if sp == "" {
		t.Fatal("tenant create did not return the admin's service principal id")
	}
	err = r.srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: tc.TenantID, ID: "7d1a5e70-3b7c-4e0e-9f3e-2a9c1b2d3e4f",
		Scope: v.ResourceID, RoleDefinitionID: rbac.RoleKeyVaultSecretsOfficer, PrincipalID: sp,
		PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: &value}, nil); err != nil {
		t.Fatalf("set with Key Vault Secrets Officer: %v", err)
	}
	got, err := client.GetSecret(ctx, "db-password", "", nil)
	if err != nil || got.Value == nil || *got.Value != value {
		t.Fatalf("get: %v %v", got.Value, err)
	}
	// Another vault of the tenant is reached only by its own grants.
	if _, err := r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: tc.TenantID, Name: "other-kv", ResourceGroup: "app"}); err != nil {
		t.Fatal(err)
	}
	other, _ := azsecrets.NewClient("https://other-kv.vault.azure.net", cred,
		&azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: r.client()}})
	if _, err := other.GetSecret(ctx, "db-password", "", nil); !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("other vault without a grant: %v", err)
	}
}
