package vault

// Microsoft.KeyVault/vaults: the management plane (control plane) of the
// vaults whose secrets and keys this package serves, registered with
// Resource Manager's front door as a provider (Provider).
//
// A vault is kept twice, in one transaction: as the store's Vault (global
// name, tenant, retention; what the secrets data plane reads on every
// request) and as a generic ARM Resource of type Microsoft.KeyVault/vaults
// (tags and sku; and deleting it removes the role assignments at the
// vault's scope). Deleting a resource group deletes its vaults in the same
// transaction as the group (deleteGroupVaults).
//
// Only the RBAC permission model exists: enableRbacAuthorization must be
// true (or absent) and enableSoftDelete true (or absent). DELETE
// soft-deletes the vault: it is kept as a deleted vault, with its secrets,
// until it is recovered or purged (provider_deleted.go). A PUT on an
// existing vault replaces its tags and
// sku and follows Azure's rules for the soft-delete settings (package
// vault: UpdateVault): softDeleteRetentionInDays is set once, at
// creation, and may only be restated; enablePurgeProtection may be turned
// on at any time and never off (false is refused, as Azure refuses it).

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Provider is Key Vault's control plane as a resource provider of
// Resource Manager's front door (package arm): Microsoft.KeyVault/vaults,
// their secrets (provider_secrets.go, whose values kek seals as the data
// plane's do: the server's KEK) and checkNameAvailability. The server
// registers it with arm.Config.Providers.
func Provider(kek []byte) *rp.Provider {
	return &rp.Provider{Namespace: "Microsoft.KeyVault", Types: []rp.ResourceType{
		{Name: "vaults", Listed: true, APIVersions: keyVaultVersions, Locations: rp.AllRegions(), Capabilities: rp.TrackedCapabilities},
		{Name: "checkNameAvailability", APIVersions: keyVaultVersions},
		{Name: "deletedVaults", APIVersions: keyVaultVersions},
		{Name: "locations/deletedVaults", APIVersions: keyVaultVersions},
		{Name: "vaults/secrets", APIVersions: keyVaultVersions}},
		Parse: vaultPath, Serve: func(rq *rp.Request) error {
			if rq.Path.Target == targetSecrets {
				return secrets(rq, kek)
			}
			return vaults(rq)
		},
		DeleteGroup: func(rq *rp.Request, tx store.Store, _ *directory.Service, g store.ResourceGroup) error {
			return deleteGroupVaults(rq, tx, g)
		}}
}

// keyVaultVersions are Microsoft.KeyVault's api-versions, newest first:
// the published versions of its REST spec (azure-rest-api-specs,
// specification/keyvault/resource-manager), which include what the
// current SDK sends (armkeyvault v1.5.0: 2024-11-01) and what Debian's az
// 2.45 sends (2022-07-01).
var keyVaultVersions = []string{"2024-11-01", "2023-07-01", "2023-02-01", "2022-11-01", "2022-07-01", "2021-10-01", "2019-09-01",
	"2018-02-14", "2016-10-01", "2015-06-01"}

// The provider's targets (rp.Path.Target).
const (
	// targetVaults is a Microsoft.KeyVault/vaults id or collection.
	targetVaults rp.Target = 100
	// targetVaultCheckName is POST /subscriptions/{sub}/providers/Microsoft.KeyVault/checkNameAvailability.
	targetVaultCheckName rp.Target = 101
)

// actionVaultCheckName is the action Azure's operations list names for
// the name check ("checkNameAvailability/read"): Reader may ask.
const actionVaultCheckName = "Microsoft.KeyVault/checkNameAvailability/read"

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
func parseVaultPath(segs []string) (rp.Path, bool) {
	is := func(i int, s string) bool { return strings.EqualFold(segs[i], s) }
	n := len(segs)
	if n < 5 || !is(0, "subscriptions") || segs[1] == "" {
		return rp.Path{}, false
	}
	var ap rp.Path
	switch {
	case n == 5 && is(2, "providers") && is(3, "Microsoft.KeyVault") && is(4, "vaults"):
		ap = rp.Path{Target: targetVaults, Sub: segs[1]}
	case (n == 7 || n == 8) && is(2, "resourceGroups") && segs[3] != "" && is(4, "providers") && is(5, "Microsoft.KeyVault") && is(6, "vaults"):
		ap = rp.Path{Target: targetVaults, Sub: segs[1], RG: segs[3]}
		if n == 8 {
			if segs[7] == "" {
				return rp.Path{}, false
			}
			ap.Name = segs[7]
		}
	default:
		return rp.Path{}, false
	}
	return ap, true
}

// vaultPath turns a recognised vault path into an rp.Path whose scope is
// the subscription (subscription list), the group (group list) or the
// vault's id.
func vaultPath(segs []string) (rp.Path, bool, error) {
	if ap, ok, err := rp.ParseCheckNamePath(segs, "Microsoft.KeyVault", targetVaultCheckName); ok {
		return ap, true, err
	}
	if ap, ok, err := deletedVaultPath(segs); ok {
		return ap, true, err
	}
	if len(segs) == 9 || len(segs) == 10 {
		// …/vaults/{vault}/secrets[/{name}]: the scope is the vault (a
		// list) or the secret's id.
		return rp.TypedPath(segs, "Microsoft.KeyVault", "vaults", "secrets", targetVaults, targetSecrets)
	}
	ap, ok := parseVaultPath(segs)
	if !ok {
		return rp.Path{}, false, nil
	}
	scopeText := "/subscriptions/" + ap.Sub
	if ap.RG != "" {
		scopeText += "/resourceGroups/" + ap.RG
	}
	if ap.Name != "" {
		scopeText += "/providers/" + vaultType + "/" + ap.Name
	}
	sc, err := rp.ParseScopeText(scopeText)
	if err != nil {
		return rp.Path{}, true, err
	}
	ap.Scope, ap.Sub = sc, sc.SubscriptionID()
	return ap, true, nil
}

// vaults serves the Microsoft.KeyVault/vaults paths.
func vaults(rq *rp.Request) error {
	switch rq.Path.Target {
	case targetVaultCheckName:
		return vaultCheckName(rq)
	case targetDeletedVaults:
		return rp.Only(rq, http.MethodGet, listDeletedVaults)
	case targetDeletedVault:
		if rq.Path.Op == "purge" {
			return rp.Only(rq, http.MethodPost, purgeDeletedVault)
		}
		return rp.Only(rq, http.MethodGet, getDeletedVault)
	}
	return rp.ServeType(rq, rq.Path.Name == "", rp.TypeHandlers{List: listVaults, Get: getVault, Put: putVault, Patch: patchVault, Delete: deleteVault})
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

// vaultResourceProps is what the generic resource record keeps: the sku
// and the three switches that let Azure's own services read the vault's
// secrets (VaultProperties in the Key Vault REST spec). Only
// enabledForTemplateDeployment has an effect here: Resource Manager
// resolves a template parameter's Key Vault reference only from a vault
// that has it (learn.microsoft.com, azure-resource-manager/templates/
// key-vault-parameter: "enabledForTemplateDeployment ... must be true").
// The other two are kept and shown as given, for the tools that set them.
type vaultResourceProps struct {
	Sku                          vaultSku `json:"sku"`
	EnabledForDeployment         bool     `json:"enabledForDeployment,omitempty"`
	EnabledForDiskEncryption     bool     `json:"enabledForDiskEncryption,omitempty"`
	EnabledForTemplateDeployment bool     `json:"enabledForTemplateDeployment,omitempty"`
}

// vaultURI is the vault's data-plane URL for the host the request came in
// on: https://{name}.vault.azure.net/, or https://{name}.vault.{domain}/
// for management.{domain}.
func vaultURI(r *http.Request, name string) string {
	domain := "azure.net"
	if lb := rp.LoginBase(r); lb != "https://login.microsoftonline.com" {
		domain = strings.TrimPrefix(lb, "https://login.")
	}
	return "https://" + strings.ToLower(name) + ".vault." + domain + "/"
}

func vaultViewOf(rq *rp.Request, v store.Vault, res *store.Resource) vaultView {
	sku := vaultSku{Family: "A", Name: "standard"}
	tags := map[string]string{}
	var p vaultResourceProps
	if res != nil {
		if len(res.Properties) > 0 && json.Unmarshal(res.Properties, &p) == nil && p.Sku.Name != "" {
			sku = p.Sku
		}
		if res.Tags != nil {
			tags = res.Tags
		}
	}
	return vaultView{ID: v.ResourceID, Name: v.Name, Type: vaultType, Location: v.Location, Tags: tags,
		Properties: vaultProperties{TenantID: v.TenantID, Sku: sku, AccessPolicies: []any{}, VaultURI: vaultURI(rq.R, v.Name),
			EnableRbacAuthorization: true, EnableSoftDelete: true, SoftDeleteRetentionInDays: v.SoftDeleteRetentionDays,
			EnablePurgeProtection: v.EnablePurgeProtection, PublicNetworkAccess: "Enabled", ProvisioningState: "Succeeded",
			EnabledForDeployment: p.EnabledForDeployment, EnabledForDiskEncryption: p.EnabledForDiskEncryption,
			EnabledForTemplateDeploy: p.EnabledForTemplateDeployment}}
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
func findVault(rq *rp.Request, st store.Store, tenantID string) (store.Vault, *store.Resource, error) {
	if _, err := rp.PathGroup(rq, st); err != nil {
		return store.Vault{}, nil, err
	}
	v, err := st.GetVault(rq.Ctx, rq.Path.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!strings.EqualFold(v.TenantID, tenantID) || !vaultIn(v, rq.Path.Sub, rq.Path.RG))) {
		return store.Vault{}, nil, rp.ResourceNotFound(vaultType, rq.Path.RG, rq.Path.Name)
	} else if err != nil {
		return store.Vault{}, nil, rp.InternalError(err)
	}
	res, err := rp.RecordOf(rq, st, v.ResourceID)
	if err != nil {
		return store.Vault{}, nil, err
	}
	return v, res, nil
}

// ---- operations ----

func getVault(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionVaultRead)
	if err != nil {
		return err
	}
	v, res, err := findVault(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, vaultViewOf(rq, v, res))
}

// listVaults lists the vaults of a group or subscription that the caller
// may read.
func listVaults(rq *rp.Request) error {
	tenantID, err := rq.ListTenant(actionVaultRead)
	if err != nil {
		return err
	}
	vs, err := rq.Store().ListVaults(rq.Ctx, tenantID)
	if err != nil {
		return rp.InternalError(err)
	}
	vs = slices.DeleteFunc(vs, func(v store.Vault) bool { return !vaultIn(v, rq.Path.Sub, rq.Path.RG) })
	return rp.WriteReadable(rq, actionVaultRead, vs, func(v store.Vault) string { return v.ResourceID },
		func(v store.Vault) (vaultView, error) {
			res, err := rp.RecordOf(rq, rq.Store(), v.ResourceID)
			return vaultViewOf(rq, v, res), err
		})
}

func putVault(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionVaultWrite)
	if err != nil {
		return err
	}
	name := rq.Path.Name
	if !ValidName(name) {
		return rp.NewError(http.StatusBadRequest, "VaultNameNotValid",
			"The vault name '%s' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.", rp.SafeText(name))
	}
	var body struct {
		Location   string            `json:"location"`
		Tags       map[string]string `json:"tags"`
		Properties *struct {
			TenantID                     string    `json:"tenantId"`
			Sku                          *vaultSku `json:"sku"`
			EnableRbacAuthorization      *bool     `json:"enableRbacAuthorization"`
			EnableSoftDelete             *bool     `json:"enableSoftDelete"`
			SoftDeleteRetentionInDays    *int      `json:"softDeleteRetentionInDays"`
			EnablePurgeProtection        *bool     `json:"enablePurgeProtection"`
			EnabledForDeployment         bool      `json:"enabledForDeployment"`
			EnabledForDiskEncryption     bool      `json:"enabledForDiskEncryption"`
			EnabledForTemplateDeployment bool      `json:"enabledForTemplateDeployment"`
			CreateMode                   string    `json:"createMode"`
		} `json:"properties"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if p := body.Properties; p != nil && strings.EqualFold(p.CreateMode, "recover") {
		return recoverVault(rq, tenantID, body.Location, body.Tags)
	} else if p != nil && p.CreateMode != "" && !strings.EqualFold(p.CreateMode, "default") {
		return rp.BadRequest("The createMode '%s' is not valid: it must be 'default' or 'recover'.", rp.SafeText(p.CreateMode))
	}
	location, err := rp.CheckPut(vaultType, body.Location, body.Tags, body.Properties)
	if err != nil {
		return err
	}
	p := body.Properties
	if p.TenantID == "" {
		return rp.BadRequest("The parameter properties.tenantId is required.")
	}
	if !strings.EqualFold(p.TenantID, tenantID) {
		return rp.BadRequest("The tenant id '%s' of the vault must be the tenant '%s' that owns the subscription.", rp.SafeText(p.TenantID), tenantID)
	}
	if p.Sku == nil || p.Sku.Name == "" {
		return rp.BadRequest("The parameter properties.sku is required.")
	}
	sku := vaultSku{Family: "A", Name: strings.ToLower(p.Sku.Name)}
	if (p.Sku.Family != "" && !strings.EqualFold(p.Sku.Family, "A")) || (sku.Name != "standard" && sku.Name != "premium") {
		return rp.BadRequest("The sku '%s/%s' is not valid: the family must be 'A' and the name 'standard' or 'premium'.", rp.SafeText(p.Sku.Family), rp.SafeText(p.Sku.Name))
	}
	if p.EnableRbacAuthorization != nil && !*p.EnableRbacAuthorization {
		return rp.BadRequest("Access policies are not supported by this service: enableRbacAuthorization must be true.")
	}
	if p.EnableSoftDelete != nil && !*p.EnableSoftDelete {
		return rp.BadRequest("Soft delete cannot be disabled: enableSoftDelete must be true.")
	}
	days, purge, err := CreationSettings(p.SoftDeleteRetentionInDays, p.EnablePurgeProtection)
	if err != nil {
		return vaultRuleError(err)
	}
	// A PUT states the switches whole (absent is false); a PATCH arrives
	// here as the current state with the patch merged in, so what it does
	// not name stays as it was.
	propsJSON, err := json.Marshal(vaultResourceProps{Sku: sku, EnabledForDeployment: p.EnabledForDeployment,
		EnabledForDiskEncryption: p.EnabledForDiskEncryption, EnabledForTemplateDeployment: p.EnabledForTemplateDeployment})
	if err != nil {
		return rp.InternalError(err)
	}

	status := http.StatusOK
	var out store.Vault
	var outRes store.Resource
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		now := rq.Now().UTC()
		g, err := rp.PathGroup(rq, tx)
		if err != nil {
			return err
		}
		id := "/subscriptions/" + g.SubscriptionID + "/resourceGroups/" + g.Name + "/providers/" + vaultType + "/" + name
		rq.Target = id
		v, err := tx.GetVault(rq.Ctx, name)
		switch {
		case errors.Is(err, store.ErrNotFound) && rq.IsPatch():
			return rp.ResourceNotFound(vaultType, rq.Path.RG, name)
		case errors.Is(err, store.ErrNotFound):
			status = http.StatusCreated
			v = store.Vault{TenantID: tenantID, Name: name, ResourceID: id, Location: location,
				SoftDeleteRetentionDays: days, EnablePurgeProtection: purge, EnableSoftDelete: true, Created: now}
			if err := heldByDeletedVault(rq, tx, name); err != nil {
				return err
			}
			if err := tx.CreateVault(rq.Ctx, v); errors.Is(err, store.ErrConflict) {
				return vaultExists(name)
			} else if err != nil {
				return rp.InternalError(err)
			}
			if v, err = tx.GetVault(rq.Ctx, name); err != nil {
				return rp.InternalError(err)
			}
		case err != nil:
			return rp.InternalError(err)
		case !strings.EqualFold(v.TenantID, tenantID) || !strings.EqualFold(v.ResourceID, id):
			return vaultExists(name)
		default:
			if v.Location != location {
				return rp.NewError(http.StatusBadRequest, "LocationNotAvailableForResourceType", "The vault '%s' exists in location '%s'; a vault cannot be moved to '%s'.", v.Name, v.Location, rp.SafeText(location))
			}
			// An update: the retention may only be restated, purge
			// protection only turned on (ApplyUpdate).
			v, err = UpdateVault(rq.Ctx, tx, tenantID, v.Name, VaultUpdate{
				SoftDeleteRetentionDays: p.SoftDeleteRetentionInDays, EnablePurgeProtection: p.EnablePurgeProtection})
			if err != nil {
				return vaultRuleError(err)
			}
		}
		res := store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: v.ResourceID,
			Type: vaultType, Name: v.Name, Location: v.Location, Tags: body.Tags, Properties: propsJSON, Created: now, Updated: now}
		if err := rp.SaveRecord(rq, tx, &res, nil); err != nil {
			return err
		}
		out, outRes = v, res
		return nil
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, vaultViewOf(rq, out, &outRes))
}

// patchVault serves Vaults - Update (PATCH; Key Vault REST, e.g.
// 2023-07-01, VaultPatchParameters: tags and properties; 200 or 201, of
// which armkeyvault's VaultsClient.Update accepts both): the vault's
// current tags, tenant and sku with the patch's members over them,
// written as a PUT would write them. What the patch leaves out stays as
// it is — in particular the retention and purge protection, which a PUT
// may only restate or turn on (the vault's GET shows
// enablePurgeProtection false, which a PUT refuses, so it is not part of
// the current state the patch merges into).
func patchVault(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionVaultWrite)
	if err != nil {
		return err
	}
	v, res, err := findVault(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	view := vaultViewOf(rq, v, res)
	current := map[string]any{"location": view.Location, "tags": view.Tags,
		"properties": map[string]any{"tenantId": view.Properties.TenantID, "sku": view.Properties.Sku}}
	return rp.PatchAsPut(rq, current, []string{"tags", "properties"}, putVault)
}

// vaultRuleError answers a refusal of the vault package's rules as Key
// Vault's resource provider does: 400 BadRequest with Azure's message.
func vaultRuleError(err error) error {
	var re *RuleError
	if errors.As(err, &re) {
		return rp.BadRequest("%s", re.Message)
	}
	return rp.InternalError(err)
}

// vaultExists is Key Vault's refusal of a name in use, by a live vault or
// a deleted one (which its message allows for).
func vaultExists(name string) error {
	return rp.NewError(http.StatusConflict, "VaultAlreadyExists",
		"The vault name '%s' is already in use. Vault names are globally unique so it is possible that the name is already taken. If you are sure that the vault name was not taken then it is possible that a vault with the same name was recently deleted but not purged after being placed in a recoverable state. If the vault is in a recoverable state then the vault will need to be purged before reusing the name.", rp.SafeText(name))
}

func deleteVault(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionVaultDelete)
	if err != nil {
		return err
	}
	return rq.DeleteAndWrite(tenantID, func(tx store.Store, _ *directory.Service) error {
		v, _, err := findVault(rq, tx, tenantID)
		if err != nil {
			return rp.NothingIfNotFound(err)
		}
		rq.Target = v.ResourceID
		return deleteVaultRecords(rq, tx, v)
	})
}

// deleteVaultRecords soft-deletes a vault (Key Vault's vault-level soft
// delete: it keeps its name, secrets and keys for its retention, as a
// deleted vault, provider_deleted.go) and removes its generic record and
// the role assignments at its scope, which Azure does not restore on
// recovery either ("role assignments disappear when a key vault is
// deleted").
func deleteVaultRecords(rq *rp.Request, tx store.Store, v store.Vault) error {
	if err := tx.SoftDeleteVault(rq.Ctx, v.Name, rq.Now().UTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return rp.InternalError(err)
	}
	return rp.DeleteRecord(rq, tx, v.ResourceID)
}

// deleteGroupVaults deletes the vaults of group g of the tenant, inside
// the transaction that deletes the group.
func deleteGroupVaults(rq *rp.Request, tx store.Store, g store.ResourceGroup) error {
	vs, err := tx.ListVaults(rq.Ctx, g.TenantID)
	if err != nil {
		return rp.InternalError(fmt.Errorf("list vaults: %w", err))
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

// vaultCheckName answers Vaults - Check Name Availability (Key Vault REST,
// 2023-07-01): the body {"name", "type": "Microsoft.KeyVault/vaults"};
// 200 {"nameAvailable": true}, or false with reason AccountNameInvalid or
// AlreadyExists and Key Vault's message.
func vaultCheckName(rq *rp.Request) error {
	if rq.R.Method != http.MethodPost {
		return rp.MethodNotAllowed(rq.R.Method)
	}
	if _, err := rq.AuthorizeAt(actionVaultCheckName); err != nil {
		return err
	}
	var body struct {
		Name *string `json:"name"`
		Type *string `json:"type"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if body.Name == nil || body.Type == nil {
		return rp.BadRequest("The request body must have 'name' and 'type'.")
	}
	if !strings.EqualFold(*body.Type, vaultType) {
		return rp.BadRequest("The type '%s' is not valid: it must be '%s'.", rp.SafeText(*body.Type), vaultType)
	}
	type answer struct {
		NameAvailable bool   `json:"nameAvailable"`
		Reason        string `json:"reason,omitempty"`
		Message       string `json:"message,omitempty"`
	}
	name := *body.Name
	if !ValidName(name) {
		return rp.WriteJSON(rq, http.StatusOK, answer{Reason: "AccountNameInvalid", Message: "Vault name must only contain alphanumeric characters and dashes and cannot start with a number."})
	}
	held, err := nameHeld(rq, rq.Store(), name)
	if err != nil {
		return err
	}
	switch _, err := rq.Store().GetVault(rq.Ctx, name); {
	case err == nil || held:
		return rp.WriteJSON(rq, http.StatusOK, answer{Reason: "AlreadyExists",
			Message: "The vault name '" + name + "' is already in use. Vault names are globally unique so it is possible that the name is already taken."})
	case !errors.Is(err, store.ErrNotFound):
		return rp.InternalError(err)
	}
	return rp.WriteJSON(rq, http.StatusOK, answer{NameAvailable: true})
}
