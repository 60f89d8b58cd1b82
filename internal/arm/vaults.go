package arm

// Microsoft.KeyVault/vaults: the management plane of the vaults whose
// secrets package vault serves.
//
// A vault is kept twice, in one transaction: as the store's Vault (global
// name, tenant, retention; what the secrets data plane reads on every
// request) and as a generic ARM Resource of type Microsoft.KeyVault/vaults
// (tags and sku; and deleting it removes the role assignments at the
// vault's scope). Deleting a resource group deletes its vaults in the same
// transaction as the group (deleteGroupVaults).
//
// Only the RBAC permission model exists: enableRbacAuthorization must be
// true (or absent) and enableSoftDelete true (or absent). Vault-level soft
// delete (deletedVaults) is not implemented: DELETE removes the vault and
// its secrets for good. A PUT on an existing vault replaces its tags and
// sku and follows Azure's rules for the soft-delete settings (package
// vault: vault.UpdateVault): softDeleteRetentionInDays is set once, at
// creation, and may only be restated; enablePurgeProtection may be turned
// on at any time and never off (false is refused, as Azure refuses it).

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// targetVaults is a Microsoft.KeyVault/vaults id or collection.
const targetVaults target = 100

const (
	vaultType         = "Microsoft.KeyVault/vaults"
	actionVaultRead   = "Microsoft.KeyVault/vaults/read"
	actionVaultWrite  = "Microsoft.KeyVault/vaults/write"
	actionVaultDelete = "Microsoft.KeyVault/vaults/delete"
)

// parseVaultPath recognises
//
//	/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults[/{name}]
//
// (segments without the leading slash). ok is false for any other path.
func parseVaultPath(segs []string) (armPath, bool) {
	is := func(i int, s string) bool { return strings.EqualFold(segs[i], s) }
	n := len(segs)
	if n < 5 || !is(0, "subscriptions") || segs[1] == "" {
		return armPath{}, false
	}
	var ap armPath
	switch {
	case n == 5 && is(2, "providers") && is(3, "Microsoft.KeyVault") && is(4, "vaults"):
		ap = armPath{target: targetVaults, sub: segs[1]}
	case (n == 7 || n == 8) && is(2, "resourceGroups") && segs[3] != "" && is(4, "providers") && is(5, "Microsoft.KeyVault") && is(6, "vaults"):
		ap = armPath{target: targetVaults, sub: segs[1], rg: segs[3]}
		if n == 8 {
			if segs[7] == "" {
				return armPath{}, false
			}
			ap.name = segs[7]
		}
	default:
		return armPath{}, false
	}
	return ap, true
}

// vaultPath turns a recognised vault path into an armPath whose scope is
// the subscription (subscription list), the group (group list) or the
// vault's id.
func vaultPath(segs []string) (armPath, bool, error) {
	ap, ok := parseVaultPath(segs)
	if !ok {
		return armPath{}, false, nil
	}
	scopeText := "/subscriptions/" + ap.sub
	if ap.rg != "" {
		scopeText += "/resourceGroups/" + ap.rg
	}
	if ap.name != "" {
		scopeText += "/providers/" + vaultType + "/" + ap.name
	}
	sc, err := parseScopeText(scopeText)
	if err != nil {
		return armPath{}, true, err
	}
	ap.scope, ap.sub = sc, sc.SubscriptionID()
	return ap, true, nil
}

// vaults serves the Microsoft.KeyVault/vaults paths.
func (h *Handler) vaults(rq *request) error {
	return h.serveType(rq, rq.path.name == "", typeHandlers{list: h.listVaults, get: h.getVault, put: h.putVault, del: h.deleteVault})
}

// ---- wire shapes ----

type vaultSku struct {
	Family string `json:"family"`
	Name   string `json:"name"`
}

type vaultProperties struct {
	TenantID                  string   `json:"tenantId"`
	Sku                       vaultSku `json:"sku"`
	AccessPolicies            []any    `json:"accessPolicies"`
	VaultURI                  string   `json:"vaultUri"`
	EnabledForDeployment      bool     `json:"enabledForDeployment"`
	EnabledForDiskEncryption  bool     `json:"enabledForDiskEncryption"`
	EnabledForTemplateDeploy  bool     `json:"enabledForTemplateDeployment"`
	EnableRbacAuthorization   bool     `json:"enableRbacAuthorization"`
	EnableSoftDelete          bool     `json:"enableSoftDelete"`
	SoftDeleteRetentionInDays int      `json:"softDeleteRetentionInDays"`
	EnablePurgeProtection     bool     `json:"enablePurgeProtection"`
	PublicNetworkAccess       string   `json:"publicNetworkAccess"`
	ProvisioningState         string   `json:"provisioningState"`
}

type vaultView struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties vaultProperties   `json:"properties"`
}

// vaultResourceProps is what the generic resource record keeps.
type vaultResourceProps struct {
	Sku vaultSku `json:"sku"`
}

// vaultURI is the vault's data-plane URL for the host the request came in
// on: https://{name}.vault.azure.net/, or https://{name}.vault.{domain}/
// for management.{domain}.
func vaultURI(r *http.Request, name string) string {
	domain := "azure.net"
	if lb := loginBase(r); lb != "https://login.microsoftonline.com" {
		domain = strings.TrimPrefix(lb, "https://login.")
	}
	return "https://" + strings.ToLower(name) + ".vault." + domain + "/"
}

func (h *Handler) vaultViewOf(rq *request, v store.Vault, res *store.Resource) vaultView {
	sku := vaultSku{Family: "A", Name: "standard"}
	tags := map[string]string{}
	if res != nil {
		var p vaultResourceProps
		if len(res.Properties) > 0 && json.Unmarshal(res.Properties, &p) == nil && p.Sku.Name != "" {
			sku = p.Sku
		}
		if res.Tags != nil {
			tags = res.Tags
		}
	}
	return vaultView{ID: v.ResourceID, Name: v.Name, Type: vaultType, Location: v.Location, Tags: tags,
		Properties: vaultProperties{TenantID: v.TenantID, Sku: sku, AccessPolicies: []any{}, VaultURI: vaultURI(rq.r, v.Name),
			EnableRbacAuthorization: true, EnableSoftDelete: true, SoftDeleteRetentionInDays: v.SoftDeleteRetentionDays,
			EnablePurgeProtection: v.EnablePurgeProtection, PublicNetworkAccess: "Enabled", ProvisioningState: "Succeeded"}}
}

// vaultIn reports whether v's resource id is in subscription sub and, if
// rg is not empty, resource group rg.
func vaultIn(v store.Vault, sub, rg string) bool {
	segs := strings.Split(strings.TrimPrefix(v.ResourceID, "/"), "/")
	if len(segs) < 4 || !strings.EqualFold(segs[1], sub) {
		return false
	}
	return rg == "" || strings.EqualFold(segs[3], rg)
}

// findVault returns the vault the path names, with its generic record if
// there is one: ResourceGroupNotFound, or ResourceNotFound when no vault of
// that name lives in that group of that tenant.
func findVault(rq *request, st store.Store, tenantID string) (store.Vault, *store.Resource, error) {
	if _, err := pathGroup(rq, st); err != nil {
		return store.Vault{}, nil, err
	}
	v, err := st.GetVault(rq.ctx, rq.path.name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!strings.EqualFold(v.TenantID, tenantID) || !vaultIn(v, rq.path.sub, rq.path.rg))) {
		return store.Vault{}, nil, resourceNotFound(vaultType, rq.path.rg, rq.path.name)
	} else if err != nil {
		return store.Vault{}, nil, internalError(err)
	}
	res, err := recordOf(rq, st, v.ResourceID)
	if err != nil {
		return store.Vault{}, nil, err
	}
	return v, res, nil
}

// ---- operations ----

func (h *Handler) getVault(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionVaultRead)
	if err != nil {
		return err
	}
	v, res, err := findVault(rq, h.st, tenantID)
	if err != nil {
		return err
	}
	return writeJSON(rq, http.StatusOK, h.vaultViewOf(rq, v, res))
}

// listVaults lists the vaults of a group or subscription that the caller
// may read.
func (h *Handler) listVaults(rq *request) error {
	tenantID, err := h.listTenant(rq, actionVaultRead)
	if err != nil {
		return err
	}
	vs, err := h.st.ListVaults(rq.ctx, tenantID)
	if err != nil {
		return internalError(err)
	}
	vs = slices.DeleteFunc(vs, func(v store.Vault) bool { return !vaultIn(v, rq.path.sub, rq.path.rg) })
	return writeReadable(h, rq, actionVaultRead, vs, func(v store.Vault) string { return v.ResourceID },
		func(v store.Vault) (vaultView, error) {
			res, err := recordOf(rq, h.st, v.ResourceID)
			return h.vaultViewOf(rq, v, res), err
		})
}

func (h *Handler) putVault(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionVaultWrite)
	if err != nil {
		return err
	}
	name := rq.path.name
	if !vault.ValidName(name) {
		return newError(http.StatusBadRequest, "VaultNameNotValid",
			"The vault name '%s' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.", safeText(name))
	}
	var body struct {
		Location   string            `json:"location"`
		Tags       map[string]string `json:"tags"`
		Properties *struct {
			TenantID                  string    `json:"tenantId"`
			Sku                       *vaultSku `json:"sku"`
			EnableRbacAuthorization   *bool     `json:"enableRbacAuthorization"`
			EnableSoftDelete          *bool     `json:"enableSoftDelete"`
			SoftDeleteRetentionInDays *int      `json:"softDeleteRetentionInDays"`
			EnablePurgeProtection     *bool     `json:"enablePurgeProtection"`
		} `json:"properties"`
	}
	if err := readBody(rq, &body); err != nil {
		return err
	}
	location, err := checkPut(vaultType, body.Location, body.Tags, body.Properties)
	if err != nil {
		return err
	}
	p := body.Properties
	if p.TenantID == "" {
		return badRequest("The parameter properties.tenantId is required.")
	}
	if !strings.EqualFold(p.TenantID, tenantID) {
		return badRequest("The tenant id '%s' of the vault must be the tenant '%s' that owns the subscription.", safeText(p.TenantID), tenantID)
	}
	if p.Sku == nil || p.Sku.Name == "" {
		return badRequest("The parameter properties.sku is required.")
	}
	sku := vaultSku{Family: "A", Name: strings.ToLower(p.Sku.Name)}
	if (p.Sku.Family != "" && !strings.EqualFold(p.Sku.Family, "A")) || (sku.Name != "standard" && sku.Name != "premium") {
		return badRequest("The sku '%s/%s' is not valid: the family must be 'A' and the name 'standard' or 'premium'.", safeText(p.Sku.Family), safeText(p.Sku.Name))
	}
	if p.EnableRbacAuthorization != nil && !*p.EnableRbacAuthorization {
		return badRequest("Access policies are not supported by this service: enableRbacAuthorization must be true.")
	}
	if p.EnableSoftDelete != nil && !*p.EnableSoftDelete {
		return badRequest("Soft delete cannot be disabled: enableSoftDelete must be true.")
	}
	days, purge, err := vault.CreationSettings(p.SoftDeleteRetentionInDays, p.EnablePurgeProtection)
	if err != nil {
		return vaultRuleError(err)
	}
	propsJSON, err := json.Marshal(vaultResourceProps{Sku: sku})
	if err != nil {
		return internalError(err)
	}

	status := http.StatusOK
	var out store.Vault
	var outRes store.Resource
	err = h.change(rq, tenantID, func(tx store.Store, _ *directory.Service) error {
		now := h.now().UTC()
		g, err := pathGroup(rq, tx)
		if err != nil {
			return err
		}
		id := "/subscriptions/" + g.SubscriptionID + "/resourceGroups/" + g.Name + "/providers/" + vaultType + "/" + name
		rq.target = id
		v, err := tx.GetVault(rq.ctx, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			status = http.StatusCreated
			v = store.Vault{TenantID: tenantID, Name: name, ResourceID: id, Location: location,
				SoftDeleteRetentionDays: days, EnablePurgeProtection: purge, EnableSoftDelete: true, Created: now}
			if err := tx.CreateVault(rq.ctx, v); errors.Is(err, store.ErrConflict) {
				return vaultExists(name)
			} else if err != nil {
				return internalError(err)
			}
			if v, err = tx.GetVault(rq.ctx, name); err != nil {
				return internalError(err)
			}
		case err != nil:
			return internalError(err)
		case !strings.EqualFold(v.TenantID, tenantID) || !strings.EqualFold(v.ResourceID, id):
			return vaultExists(name)
		default:
			if v.Location != location {
				return newError(http.StatusBadRequest, "LocationNotAvailableForResourceType", "The vault '%s' exists in location '%s'; a vault cannot be moved to '%s'.", v.Name, v.Location, safeText(location))
			}
			// An update: the retention may only be restated, purge
			// protection only turned on (vault.ApplyUpdate).
			v, err = vault.UpdateVault(rq.ctx, tx, tenantID, v.Name, vault.VaultUpdate{
				SoftDeleteRetentionDays: p.SoftDeleteRetentionInDays, EnablePurgeProtection: p.EnablePurgeProtection})
			if err != nil {
				return vaultRuleError(err)
			}
		}
		res := store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: v.ResourceID,
			Type: vaultType, Name: v.Name, Location: v.Location, Tags: body.Tags, Properties: propsJSON, Created: now, Updated: now}
		if err := saveRecord(rq, tx, &res, nil); err != nil {
			return err
		}
		out, outRes = v, res
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(rq, status, h.vaultViewOf(rq, out, &outRes))
}

// vaultRuleError answers a refusal of the vault package's rules as Key
// Vault's resource provider does: 400 BadRequest with Azure's message.
func vaultRuleError(err error) error {
	var re *vault.RuleError
	if errors.As(err, &re) {
		return badRequest("%s", re.Message)
	}
	return internalError(err)
}

func vaultExists(name string) error {
	return newError(http.StatusConflict, "VaultAlreadyExists",
		"The vault name '%s' is already in use. Vault names are globally unique so it is possible that the name is already taken.", safeText(name))
}

func (h *Handler) deleteVault(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionVaultDelete)
	if err != nil {
		return err
	}
	return h.deleteAndWrite(rq, tenantID, func(tx store.Store, _ *directory.Service) error {
		v, _, err := findVault(rq, tx, tenantID)
		if err != nil {
			return nothingIfNotFound(err)
		}
		rq.target = v.ResourceID
		return deleteVaultRecords(rq, tx, v)
	})
}

// deleteVaultRecords removes a vault with its secrets, its generic record
// and the role assignments at its scope.
func deleteVaultRecords(rq *request, tx store.Store, v store.Vault) error {
	if err := tx.DeleteVault(rq.ctx, v.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return internalError(err)
	}
	return deleteRecord(rq, tx, v.ResourceID)
}

// deleteGroupVaults deletes the vaults of group g of the tenant, inside
// the transaction that deletes the group.
func deleteGroupVaults(rq *request, tx store.Store, g store.ResourceGroup) error {
	vs, err := tx.ListVaults(rq.ctx, g.TenantID)
	if err != nil {
		return internalError(fmt.Errorf("list vaults: %w", err))
	}
	for _, v := range vs {
		if vaultIn(v, g.SubscriptionID, g.Name) {
			if err := deleteVaultRecords(rq, tx, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseScopeText parses a scope as parsePath does, as a path error.
func parseScopeText(s string) (rbac.Scope, error) {
	sc, err := rbac.ParseScope(s)
	if err != nil {
		return rbac.Scope{}, badPath("%s", strings.TrimPrefix(err.Error(), rbac.ErrInvalidScope.Error()+": "))
	}
	return sc, nil
}
