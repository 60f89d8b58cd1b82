package server_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// TestKeyVaultWithWorkloadCredentials: the unmodified azsecrets client
// (default options but the transport) reads a secret through the whole
// server as (a) a user-assigned managed identity, with azidentity's
// ManagedIdentityCredential pointed at a workload by IDENTITY_ENDPOINT and
// IDENTITY_HEADER, and (b) an application, with WorkloadIdentityCredential
// and a token file holding another managed identity's token for
// api://AzureADTokenExchange, which a federated credential on the
// application trusts. Each is refused (403) until it is granted Key Vault
// Secrets User on the vault.
func TestKeyVaultWithWorkloadCredentials(t *testing.T) {
	r := start(t, server.Config{})
	ctx := context.Background()
	tc := r.createTenant(t, "workloads")
	tid := tc.TenantID
	v, err := r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "wl-kv", ResourceGroup: "app"})
	if err != nil {
		t.Fatal(err)
	}
	grant := func(principal, role string) {
		t.Helper()
		err := r.srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: tid, ID: uuid.NewString(), Scope: v.ResourceID,
			RoleDefinitionID: role, PrincipalID: principal, PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	secretsClient := func(cred azcore.TokenCredential) *azsecrets.Client {
		t.Helper()
		c, err := azsecrets.NewClient("https://wl-kv.vault.azure.net", cred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: r.client()}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const secretName, value = "db-password", "s3cret-for-workloads"
	// read checks a read is refused with 403 (want 0) or returns the value.
	read := func(who string, c *azsecrets.Client, want int) {
		t.Helper()
		got, err := c.GetSecret(ctx, secretName, "", nil)
		if want == http.StatusForbidden {
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
				t.Fatalf("%s before the grant: %v; want 403", who, err)
			}
			return
		}
		if err != nil || got.Value == nil || *got.Value != value {
			t.Fatalf("%s after the grant: %v, %v", who, got.Value, err)
		}
	}

	// The tenant's administrator stores the secret as Secrets Officer.
	grant(tc.Admin.ServicePrincipalID, rbac.RoleKeyVaultSecretsOfficer)
	admin, err := azidentity.NewClientSecretCredential(tid, tc.Admin.ClientID, tc.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	v2 := value
	if _, err := secretsClient(admin).SetSecret(ctx, secretName, azsecrets.SetSecretParameters{Value: &v2}, nil); err != nil {
		t.Fatalf("set as Key Vault Secrets Officer: %v", err)
	}

	// A workload running as two user-assigned identities: "reader" reads
	// the vault itself; "federator" only vouches for an application.
	dir := r.srv.Directory()
	reader, err := dir.CreateUserAssignedIdentity(ctx, tid, "", "reader")
	if err != nil {
		t.Fatal(err)
	}
	federator, err := dir.CreateUserAssignedIdentity(ctx, tid, "", "federator")
	if err != nil {
		t.Fatal(err)
	}
	_, header, err := dir.CreateWorkload(ctx, tid, "", "web", false, []string{reader.ID, federator.ID})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("IDENTITY_ENDPOINT", "https://"+r.addr+"/"+tid+"/msi/token")
	t.Setenv("IDENTITY_HEADER", header)

	t.Run("ManagedIdentityCredential", func(t *testing.T) {
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: r.client()}, ID: azidentity.ClientID(reader.AppID)})
		if err != nil {
			t.Fatal(err)
		}
		c := secretsClient(cred)
		read("the managed identity", c, http.StatusForbidden)
		grant(reader.ID, rbac.RoleKeyVaultSecretsUser)
		read("the managed identity", c, http.StatusOK)
	})

	t.Run("WorkloadIdentityCredential", func(t *testing.T) {
		mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: r.client()}, ID: azidentity.ClientID(federator.AppID)})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{directory.TokenExchangeAudience + "/.default"}})
		if err != nil {
			t.Fatalf("the managed identity's token for %s: %v", directory.TokenExchangeAudience, err)
		}
		claims, err := azclient.UnverifiedClaims(tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		iss, _ := claims["iss"].(string)
		sub, _ := claims["sub"].(string)
		if iss == "" || sub != federator.ID {
			t.Fatalf("exchange token: iss %q sub %q; want the identity %s", iss, sub, federator.ID)
		}
		file := filepath.Join(t.TempDir(), "azure-identity-token")
		if err := os.WriteFile(file, []byte(tok.Token), 0o600); err != nil {
			t.Fatal(err)
		}

		app, err := dir.CreateApplication(ctx, tid, directory.Application{DisplayName: "federated reader"})
		if err != nil {
			t.Fatal(err)
		}
		sp, err := dir.CreateServicePrincipal(ctx, tid, app.AppID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dir.AddFederatedCredential(ctx, tid, app.ID, directory.FederatedIdentityCredential{Name: "web-federator",
			Issuer: iss, Subject: sub, Audiences: []string{directory.TokenExchangeAudience}}); err != nil {
			t.Fatal(err)
		}
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: r.client()}, ClientID: app.AppID, TenantID: tid, TokenFilePath: file})
		if err != nil {
			t.Fatal(err)
		}
		c := secretsClient(cred)
		read("the federated application", c, http.StatusForbidden)
		grant(sp.ID, rbac.RoleKeyVaultSecretsUser)
		read("the federated application", c, http.StatusOK)
	})
}
