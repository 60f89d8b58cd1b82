package arm

// Key Vault references in deployment parameters
// (learn.microsoft.com/azure/azure-resource-manager/templates/key-vault-parameter):
// a parameter given as {"reference": {"keyVault": {"id": VAULT}, "secretName": N,
// "secretVersion": V}} takes the secret's value at deployment time. Azure
// reads it only when
//
//   - the deployer may perform Microsoft.KeyVault/vaults/deploy/action on
//     the vault ("Grant deployment access to the secrets": so that a
//     deployer cannot name a vault it does not own), else
//     KeyVaultParameterReferenceAuthorizationFailed;
//   - the vault exists, else KeyVaultParameterReferenceNotFound;
//   - the vault has enabledForTemplateDeployment, else Key Vault refuses
//     Resource Manager ("Access denied to first party service") and the
//     deployment fails with KeyVaultParameterReferenceSecretRetrieveFailed,
//     as it does for a missing or disabled secret.
//
// The order matters for isolation: the authorization is decided first, so
// a deployer learns nothing of a vault it may not deploy from, not even
// whether it exists. The value goes into the plan only (a securestring
// parameter, which the deployment record shows without value); it is
// never stored, logged or audited.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/armtemplate"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// SecretResolver reads a Key Vault secret for the platform, by its URI
// (https://{vault}.vault.azure.net/secrets/{name}[/{version}]), in a
// vault of tenantID: the latest enabled, valid version, or the one named.
// vault.Service.ResolveReference implements it.
type SecretResolver func(ctx context.Context, tenantID, secretURI string) (string, error)

const (
	// actionVaultDeploy is what a deployer needs on a vault whose
	// secrets its parameters reference.
	actionVaultDeploy = "Microsoft.KeyVault/vaults/deploy/action"
	seeKeyVaultRefs   = "Please see https://aka.ms/arm-keyvault for usage details."
)

// vaultTemplateFlags is what a vault's generic resource record says of
// its use by deployments.
type vaultTemplateFlags struct {
	EnabledForTemplateDeployment bool `json:"enabledForTemplateDeployment"`
}

// KeyVaultSecret resolves a Key Vault parameter reference for the
// deployment's caller (armtemplate.Resolver).
func (x *run) KeyVaultSecret(ctx context.Context, vaultID, secretName, version string) (string, error) {
	return x.h.keyVaultSecret(ctx, x.c, vaultID, secretName, version)
}

// Nested is the Resolver of the deployments nested in this one
// (armtemplate.NestedResolver): for a managed application's install,
// their Key Vault references to a vault outside the managed resource
// group are resolved as the publisher tenant's Appliance Resource
// Provider. Azure's documentation requires a package to reference the
// publisher's vault "in the parameters for the linked or nested
// template", and has the publisher grant that principal the vault's
// deploy/action
// (learn.microsoft.com/azure/azure-resource-manager/managed-applications/key-vault-access).
// The application's own parameters, which the customer gives, are not
// resolved so: a customer cannot point the publisher's grant at the
// publisher's vault.
func (x *run) Nested() armtemplate.Resolver { return nestedRun{x} }

// nestedRun is a run as the Resolver of its nested deployments.
type nestedRun struct{ *run }

// Nested keeps the nested deployments' resolver for deeper ones.
func (n nestedRun) Nested() armtemplate.Resolver { return n }

// KeyVaultSecret resolves a nested deployment's Key Vault reference: as
// the Appliance Resource Provider for a managed application's vault
// reference outside its managed group, as the caller otherwise.
func (n nestedRun) KeyVaultSecret(ctx context.Context, vaultID, secretName, version string) (string, error) {
	c := n.c
	if c.platformScope != "" && c.appliance != nil && !belowScope(c.platformScope, vaultID) {
		c = c.appliance
	}
	// Without an Appliance Resource Provider in the publisher tenant the
	// platform decides, and refuses every vault outside its group.
	return n.h.keyVaultSecret(ctx, c, vaultID, secretName, version)
}

// belowScope reports whether id is strictly below scope.
func belowScope(scope, id string) bool {
	base, err := rbac.ParseScope(scope)
	sc, serr := rbac.ParseScope(id)
	return err == nil && serr == nil && strings.HasPrefix(sc.Key(), base.Key()+"/")
}

func (h *Handler) keyVaultSecret(ctx context.Context, c *caller, vaultID, secretName, version string) (string, error) {
	notVault := &armtemplate.Error{Code: "KeyVaultParameterReferenceNotFound", Target: vaultID,
		Message: fmt.Sprintf("The specified KeyVault '%s' could not be found. %s", rp.SafeText(vaultID), seeKeyVaultRefs)}
	sc, err := rbac.ParseScope(vaultID)
	segs := strings.Split(strings.TrimPrefix(sc.String(), "/"), "/")
	if err != nil || len(segs) != 8 || !strings.EqualFold(segs[0], "subscriptions") || !strings.EqualFold(segs[2], "resourceGroups") ||
		!strings.EqualFold(segs[4], "providers") || !strings.EqualFold(segs[5]+"/"+segs[6], vaultType) {
		return "", notVault
	}
	id := sc.String()
	allowed, err := h.mayDeployFrom(ctx, c, id)
	if err != nil {
		return "", err
	}
	if !allowed {
		who := c.claims.ObjectID
		return "", &armtemplate.Error{Code: "KeyVaultParameterReferenceAuthorizationFailed", Target: vaultID,
			Message: fmt.Sprintf("The client '%s' with object id '%s' does not have permission to perform action '%s' on the specified KeyVault resource '%s'. %s",
				rp.SafeText(who), rp.SafeText(who), strings.ToUpper(actionVaultDeploy), rp.SafeText(id), seeKeyVaultRefs)}
	}
	tenantID, name, enabled, err := h.vaultForDeployment(ctx, id, segs[7])
	if errors.Is(err, store.ErrNotFound) {
		return "", notVault
	} else if err != nil {
		return "", rp.InternalError(err)
	}
	retrieveFailed := func(status, why string) error {
		return &armtemplate.Error{Code: "KeyVaultParameterReferenceSecretRetrieveFailed", Target: vaultID,
			Message: fmt.Sprintf("The secret of KeyVault parameter '%s' cannot be retrieved. Http status code: '%s'. Error message: '%s'. %s",
				rp.SafeText(secretName), status, why, seeKeyVaultRefs)}
	}
	if !enabled {
		return "", retrieveFailed("Forbidden", "Access denied to first party service. The vault is not enabled for template deployment (enabledForTemplateDeployment).")
	}
	if h.secrets == nil {
		return "", retrieveFailed("NotImplemented", "This Resource Manager reads no Key Vault secrets.")
	}
	uri := "https://" + strings.ToLower(name) + ".vault.azure.net/secrets/" + url.PathEscape(secretName)
	if version != "" {
		uri += "/" + url.PathEscape(version)
	}
	value, err := h.secrets(ctx, tenantID, uri)
	// The deployer's use of the vault, never the value; the vault
	// records its own read.
	rec := store.AuditRecord{Actor: c.claims.ObjectID, ActorTenant: c.claims.HomeTenant(), TargetTenant: tenantID, Action: actionVaultDeploy,
		Target: id + "/secrets/" + rp.SafeText(secretName), Result: audit.Success, Detail: "appid=" + c.claims.ClientID() + " keyVault parameter reference"}
	if err != nil {
		rec.Result = "KeyVaultParameterReferenceSecretRetrieveFailed"
	}
	_ = h.audit.Record(ctx, rec)
	if err != nil {
		// A missing, disabled or expired secret, or a malformed name or
		// version: Key Vault's 404 (or 400), which Azure passes on.
		return "", retrieveFailed("NotFound", "A secret with (name/version) "+rp.SafeText(secretName)+"/"+rp.SafeText(version)+" was not found in this key vault.")
	}
	return value, nil
}

// vaultForDeployment finds the vault id names (name is its last segment):
// its tenant, its name as stored, and whether its resource record says
// enabledForTemplateDeployment. A vault without a record (made outside
// Resource Manager) is not enabled. store.ErrNotFound when there is none.
func (h *Handler) vaultForDeployment(ctx context.Context, id, name string) (tenantID, vaultName string, enabled bool, err error) {
	res, err := h.st.GetResource(ctx, id)
	switch {
	case err == nil && strings.EqualFold(res.Type, vaultType):
		var flags vaultTemplateFlags
		if len(res.Properties) > 0 && json.Unmarshal(res.Properties, &flags) != nil {
			return "", "", false, fmt.Errorf("vault record %s: malformed properties", id)
		}
		return res.TenantID, res.Name, flags.EnabledForTemplateDeployment, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return "", "", false, err
	}
	v, err := h.st.GetVault(ctx, name)
	if err != nil {
		return "", "", false, err
	}
	if !strings.EqualFold(v.ResourceID, id) {
		return "", "", false, store.ErrNotFound
	}
	return v.TenantID, v.Name, false, nil
}

// mayDeployFrom decides whether the caller may perform
// Microsoft.KeyVault/vaults/deploy/action on the vault.
func (h *Handler) mayDeployFrom(ctx context.Context, c *caller, vaultID string) (bool, error) {
	return h.callerMay(ctx, c, actionVaultDeploy, vaultID)
}

// callerMay decides whether a deployment's caller may perform action at
// scope. The platform (a managed application's install) is decided as
// everything it does: below its managed resource group only, so a
// publisher's vault or a group outside it is refused.
func (h *Handler) callerMay(ctx context.Context, c *caller, action, scope string) (bool, error) {
	if c.platformScope != "" {
		return belowScope(c.platformScope, scope), nil
	}
	d, err := h.rbac.Decide(ctx, rbac.Request{PrincipalID: c.claims.ObjectID, PrincipalTenantID: c.claims.TenantID, TenantID: c.claims.TenantID,
		Action: action, Scope: scope})
	switch {
	case errors.Is(err, rbac.ErrUnknownScope), errors.Is(err, rbac.ErrInvalidScope):
		// A subscription this tenant does not hold: no permission.
		return false, nil
	case err != nil:
		return false, rp.InternalError(err)
	}
	return d.Allowed, nil
}
