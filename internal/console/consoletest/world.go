// Package consoletest builds, for the console's tests only, a small world
// of tenants that trust each other in every way the trust graph shows: a
// provider whose multi-tenant application is provisioned in two
// customers, with an application permission, a delegated grant, an Azure
// role, a managed application's delegation and a federated credential.
package consoletest

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Password is the customer administrator's password.
const Password = "Console-Test-Password-7"

// World is what Build made.
type World struct {
	Provider, Customer, Other store.Tenant
	App                       *directory.Application
	ProviderSP                *directory.ServicePrincipal // the app's own, in the provider's tenant
	CustomerSP, OtherSP       *directory.ServicePrincipal // provisioned in the customers
	// Admin is the customer's Global Administrator, Owner of its
	// subscription; Plain a user of the customer without a role.
	Admin, Plain *directory.User
	AdminTOTP    string
	// OtherAdmin is the other customer's Global Administrator.
	OtherAdmin *directory.User
	AppRole    store.AppRoleAssignment          // Graph User.Read.All for CustomerSP
	Grant      *directory.OAuth2PermissionGrant // delegated User.Read for CustomerSP
	Role       store.RoleAssignment             // Reader on the customer's subscription for CustomerSP
	Delegation store.RoleAssignment             // a delegation to ProviderSP on the customer's group
	OtherRole  store.RoleAssignment             // Reader on the other customer's subscription for OtherSP
	Federated  directory.FederatedIdentityCredential
	FedAppID   string // the customer's application that holds Federated
}

// Build makes the world in the directory and store, with tenant names
// prefixed by prefix.
func Build(ctx context.Context, dir *directory.Service, st store.Store, prefix string) (*World, error) {
	w := &World{}
	var err error
	mk := func(name string) (store.Tenant, error) {
		b, err := dir.CreateTenant(ctx, prefix+name)
		if err != nil {
			return store.Tenant{}, fmt.Errorf("tenant %s: %w", name, err)
		}
		return b.Tenant, nil
	}
	if w.Provider, err = mk("provider"); err != nil {
		return nil, err
	}
	if w.Customer, err = mk("customer"); err != nil {
		return nil, err
	}
	if w.Other, err = mk("other"); err != nil {
		return nil, err
	}
	w.App, err = dir.CreateApplication(ctx, w.Provider.ID, directory.Application{DisplayName: "Fleet Manager",
		SignInAudience: directory.AudienceMultipleOrgs})
	if err != nil {
		return nil, err
	}
	if w.ProviderSP, err = dir.CreateServicePrincipal(ctx, w.Provider.ID, w.App.AppID); err != nil {
		return nil, err
	}
	if w.CustomerSP, err = dir.CreateServicePrincipal(ctx, w.Customer.ID, w.App.AppID); err != nil {
		return nil, err
	}
	if w.OtherSP, err = dir.CreateServicePrincipal(ctx, w.Other.ID, w.App.AppID); err != nil {
		return nil, err
	}
	graph, err := dir.ServicePrincipalByAppID(ctx, w.Customer.ID, directory.GraphAppID)
	if err != nil {
		return nil, err
	}
	if w.AppRole, err = dir.AssignAppRole(ctx, w.Customer.ID, w.CustomerSP.ID, graph.ID, "df021288-bdef-4463-88db-98f22de89214"); err != nil {
		return nil, fmt.Errorf("app role: %w", err)
	}
	if w.Grant, err = dir.CreateDelegatedGrant(ctx, w.Customer.ID, directory.OAuth2PermissionGrant{ClientID: w.CustomerSP.ID,
		ConsentType: "AllPrincipals", ResourceID: graph.ID, Scope: "User.Read"}); err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	owner, _ := rbac.BuiltInRole("Owner")
	reader, _ := rbac.BuiltInRole("Reader")
	contributor, _ := rbac.BuiltInRole("Contributor")
	now := time.Now().UTC()
	assign := func(a store.RoleAssignment) (store.RoleAssignment, error) {
		a.ID, a.CreatedOn = uuid.NewString(), now
		if a.CreatedBy == "" {
			a.CreatedBy = "consoletest"
		}
		return a, st.CreateRoleAssignment(ctx, a)
	}
	sub := func(t store.Tenant) string { return "/subscriptions/" + t.SubscriptionID }
	if w.Role, err = assign(store.RoleAssignment{TenantID: w.Customer.ID, Scope: sub(w.Customer), RoleDefinitionID: reader.ID,
		PrincipalID: w.CustomerSP.ID, PrincipalType: store.PrincipalServicePrincipal}); err != nil {
		return nil, fmt.Errorf("role: %w", err)
	}
	if w.OtherRole, err = assign(store.RoleAssignment{TenantID: w.Other.ID, Scope: sub(w.Other), RoleDefinitionID: reader.ID,
		PrincipalID: w.OtherSP.ID, PrincipalType: store.PrincipalServicePrincipal}); err != nil {
		return nil, fmt.Errorf("other role: %w", err)
	}
	if w.Delegation, err = assign(store.RoleAssignment{TenantID: w.Customer.ID, Scope: sub(w.Customer) + "/resourceGroups/mrg-fleet",
		RoleDefinitionID: contributor.ID, PrincipalID: w.ProviderSP.ID, PrincipalType: store.PrincipalServicePrincipal,
		PrincipalTenantID: w.Provider.ID, CreatedBy: store.DelegationCreator + "fleet-app"}); err != nil {
		return nil, fmt.Errorf("delegation: %w", err)
	}
	fedApp, err := dir.CreateApplication(ctx, w.Customer.ID, directory.Application{DisplayName: "Nightly Sync"})
	if err != nil {
		return nil, err
	}
	w.FedAppID = fedApp.ID
	if w.Federated, err = dir.AddFederatedCredential(ctx, w.Customer.ID, fedApp.ID, directory.FederatedIdentityCredential{
		Name: "provider-workload", Issuer: "https://login.microsoftonline.com/" + w.Provider.ID + "/v2.0",
		Subject: w.ProviderSP.ID, Audiences: []string{"api://AzureADTokenExchange"}}); err != nil {
		return nil, fmt.Errorf("federated credential: %w", err)
	}
	user := func(t store.Tenant, name string) (*directory.User, error) {
		return dir.CreateUser(ctx, t.ID, directory.NewUser{UserPrincipalName: name + "@" + t.Domain, DisplayName: name,
			Password: Password, AccountEnabled: true})
	}
	if w.Admin, err = user(w.Customer, "megan"); err != nil {
		return nil, err
	}
	if err := dir.AssignDirectoryRole(ctx, w.Customer.ID, w.Admin.ID, directory.RoleGlobalAdministrator); err != nil {
		return nil, err
	}
	if _, w.AdminTOTP, err = dir.EnrollTOTP(ctx, w.Customer.ID, w.Admin.ID); err != nil {
		return nil, err
	}
	if _, err := assign(store.RoleAssignment{TenantID: w.Customer.ID, Scope: sub(w.Customer), RoleDefinitionID: owner.ID,
		PrincipalID: w.Admin.ID, PrincipalType: store.PrincipalUser}); err != nil {
		return nil, fmt.Errorf("owner: %w", err)
	}
	if w.Plain, err = user(w.Customer, "lee"); err != nil {
		return nil, err
	}
	if w.OtherAdmin, err = user(w.Other, "ana"); err != nil {
		return nil, err
	}
	if err := dir.AssignDirectoryRole(ctx, w.Other.ID, w.OtherAdmin.ID, directory.RoleGlobalAdministrator); err != nil {
		return nil, err
	}
	return w, nil
}
