package vault

// Deleted vaults: Key Vault's vault-level soft delete, as its resource
// provider serves it (Key Vault REST, e.g. 2023-07-01: Vaults - List
// Deleted, Get Deleted, Purge Deleted; createMode "recover").
//
// Deleting a vault (or its group) keeps it as a deleted vault for its
// softDeleteRetentionInDays, with its secrets and keys; the data plane
// does not serve it (the store's GetVault sees live vaults only). Its name
// stays taken until it is purged: a create of the name is refused, and
// checkNameAvailability says the name is in use. A deleted vault is
// recovered by a PUT at its id with properties.createMode "recover", or
// purged by POST …/locations/{location}/deletedVaults/{name}/purge —
// refused while purge protection is on. Past its scheduled purge date a
// deleted vault is no longer listed, recovered or purged, and its name is
// free: the create that reuses the name purges it in its transaction.
//
// Deleted vaults are the tenant's: another tenant's is never listed or
// found (404, as for none), and a create of its name is refused as for a
// live vault's (VaultAlreadyExists) — for its own tenant too.

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const (
	// targetDeletedVaults is GET /subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults.
	targetDeletedVaults rp.Target = 102
	// targetDeletedVault is …/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}[/purge]:
	// Path.Name is the vault's name, Path.Child the location, Path.Op "purge".
	targetDeletedVault rp.Target = 103

	// The actions of Microsoft.KeyVault's operations list for deleted
	// vaults (Reader may read them; purging takes Contributor).
	actionDeletedVaultsRead = "Microsoft.KeyVault/deletedVaults/read"
	actionDeletedVaultRead  = "Microsoft.KeyVault/locations/deletedVaults/read"
	actionDeletedVaultPurge = "Microsoft.KeyVault/locations/deletedVaults/purge/action"

	deletedVaultType = "Microsoft.KeyVault/deletedVaults"
)

// deletedVaultPath recognises the deleted-vault paths (segments without
// the leading slash); their scope is the subscription.
func deletedVaultPath(segs []string) (rp.Path, bool, error) {
	n := len(segs)
	is := func(i int, s string) bool { return i < n && strings.EqualFold(segs[i], s) }
	if n < 5 || !is(0, "subscriptions") || segs[1] == "" || !is(2, "providers") || !is(3, "Microsoft.KeyVault") {
		return rp.Path{}, false, nil
	}
	var ap rp.Path
	switch {
	case n == 5 && is(4, "deletedVaults"):
		ap.Target = targetDeletedVaults
	case (n == 8 || (n == 9 && is(8, "purge"))) && is(4, "locations") && is(6, "deletedVaults"):
		ap.Target, ap.Child, ap.Name = targetDeletedVault, segs[5], segs[7]
		if n == 9 {
			ap.Op = "purge"
		}
		if ap.Child == "" || ap.Name == "" {
			return rp.Path{}, true, rp.BadPath("The deleted vault's location and name are required.")
		}
	default:
		return rp.Path{}, false, nil
	}
	sc, err := rp.ParseScopeText("/subscriptions/" + segs[1])
	if err != nil {
		return rp.Path{}, true, err
	}
	ap.Scope, ap.Sub = sc, sc.SubscriptionID()
	return ap, true, nil
}

// purgeDate is when a deleted vault is purged by the service.
func purgeDate(v store.Vault) time.Time {
	return v.Deleted.AddDate(0, 0, v.SoftDeleteRetentionDays)
}

// expired reports whether a deleted vault is past its scheduled purge.
func expired(rq *rp.Request, v store.Vault) bool { return !rq.Now().Before(purgeDate(v)) }

type deletedVaultProperties struct {
	VaultID                string    `json:"vaultId"`
	Location               string    `json:"location"`
	DeletionDate           time.Time `json:"deletionDate"`
	ScheduledPurgeDate     time.Time `json:"scheduledPurgeDate"`
	PurgeProtectionEnabled bool      `json:"purgeProtectionEnabled"`
	Tags                   struct{}  `json:"tags"`
}

type deletedVaultView struct {
	ID         string                 `json:"id"`
	Name       string                 `json:"name"`
	Type       string                 `json:"type"`
	Properties deletedVaultProperties `json:"properties"`
}

func deletedVaultViewOf(v store.Vault) deletedVaultView {
	sub := ""
	if segs := strings.Split(strings.TrimPrefix(v.ResourceID, "/"), "/"); len(segs) > 1 {
		sub = segs[1]
	}
	return deletedVaultView{ID: "/subscriptions/" + sub + "/providers/Microsoft.KeyVault/locations/" + v.Location + "/deletedVaults/" + v.Name,
		Name: v.Name, Type: deletedVaultType, Properties: deletedVaultProperties{VaultID: v.ResourceID, Location: v.Location,
			DeletionDate: v.Deleted.UTC(), ScheduledPurgeDate: purgeDate(v).UTC(), PurgeProtectionEnabled: v.EnablePurgeProtection}}
}

// listDeletedVaults serves Vaults - List Deleted: the tenant's deleted
// vaults of the subscription.
func listDeletedVaults(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionDeletedVaultsRead)
	if err != nil {
		return err
	}
	vs, err := rq.Store().ListDeletedVaults(rq.Ctx, tenantID)
	if err != nil {
		return rp.InternalError(err)
	}
	out := []deletedVaultView{}
	for _, v := range vs {
		if rp.IDIn(v.ResourceID, rq.Path.Sub, "") && !expired(rq, v) {
			out = append(out, deletedVaultViewOf(v))
		}
	}
	return rp.WriteJSON(rq, http.StatusOK, rp.List[deletedVaultView]{Value: out})
}

// findDeletedVault is the tenant's deleted vault the path names, in the
// path's subscription and location, not past its purge date; else 404.
func findDeletedVault(rq *rp.Request, st store.Store, tenantID string) (store.Vault, error) {
	v, err := st.GetDeletedVault(rq.Ctx, rq.Path.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!strings.EqualFold(v.TenantID, tenantID) || !rp.IDIn(v.ResourceID, rq.Path.Sub, "") ||
		v.Location != rp.NormalizeLocation(rq.Path.Child) || expired(rq, v))) {
		return store.Vault{}, rp.NewError(http.StatusNotFound, "ResourceNotFound", "The deleted vault '%s' was not found in location '%s'.",
			rp.SafeText(rq.Path.Name), rp.SafeText(rq.Path.Child))
	} else if err != nil {
		return store.Vault{}, rp.InternalError(err)
	}
	return v, nil
}

// getDeletedVault serves Vaults - Get Deleted.
func getDeletedVault(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionDeletedVaultRead)
	if err != nil {
		return err
	}
	v, err := findDeletedVault(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, deletedVaultViewOf(v))
}

// purgeDeletedVault serves Vaults - Purge Deleted (a long-running
// operation in the spec, 200 or 202; it is done when answered here, and
// armkeyvault's poller takes the 200 as its end). A vault with purge
// protection is refused as Azure refuses it: 405 MethodNotAllowed,
// "Operation 'DeletedVaultPurge' is not allowed." (as az reports it:
// microsoft/AzureTRE#1446).
func purgeDeletedVault(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionDeletedVaultPurge)
	if err != nil {
		return err
	}
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		v, err := findDeletedVault(rq, tx, tenantID)
		if err != nil {
			return err
		}
		rq.Target = v.ResourceID
		if v.EnablePurgeProtection {
			return rp.NewError(http.StatusMethodNotAllowed, "MethodNotAllowed", "Operation 'DeletedVaultPurge' is not allowed.")
		}
		if err := tx.DeleteVault(rq.Ctx, v.Name); err != nil {
			return rp.InternalError(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rq.W.WriteHeader(http.StatusOK)
	return nil
}

// heldByDeletedVault refuses, inside the create's transaction, a name a
// deleted vault holds, whoever's it is, as any taken name: Azure answers
// VaultAlreadyExists, whose message names the possibility of a deleted
// vault (as Azure's create answers today, e.g. Esri/arcgis-gitops#174),
// and so tells no tenant whether the vault is deleted or whose it is. A
// deleted vault past its purge date is purged here, freeing the name.
func heldByDeletedVault(rq *rp.Request, tx store.Store, name string) error {
	v, err := tx.GetDeletedVault(rq.Ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return rp.InternalError(err)
	case expired(rq, v):
		if err := tx.DeleteVault(rq.Ctx, v.Name); err != nil {
			return rp.InternalError(err)
		}
		return nil
	}
	return vaultExists(name)
}

// nameHeld reports whether a deleted vault, not past its purge date,
// holds the name.
func nameHeld(rq *rp.Request, st store.Store, name string) (bool, error) {
	v, err := st.GetDeletedVault(rq.Ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, rp.InternalError(err)
	}
	return !expired(rq, v), nil
}

// recoverVault serves a PUT with properties.createMode "recover": the
// tenant's deleted vault of the path's id (its group and subscription)
// becomes live again with its secrets, keys and settings; its tags are
// the body's (its role assignments are gone, as in Azure). Without such a
// deleted vault: 404 SoftDeletedVaultDoesNotExist (the code Azure
// answers, hashicorp/terraform-provider-azurerm#12972).
func recoverVault(rq *rp.Request, tenantID, location string, tags map[string]string) error {
	if err := rp.CheckTags(tags); err != nil {
		return err
	}
	var out store.Vault
	var outRes store.Resource
	err := rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		g, err := rp.PathGroup(rq, tx)
		if err != nil {
			return err
		}
		id := "/subscriptions/" + g.SubscriptionID + "/resourceGroups/" + g.Name + "/providers/" + vaultType + "/" + rq.Path.Name
		rq.Target = id
		v, err := tx.GetDeletedVault(rq.Ctx, rq.Path.Name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (!strings.EqualFold(v.TenantID, tenantID) || !strings.EqualFold(v.ResourceID, id) || expired(rq, v))) {
			return rp.NewError(http.StatusNotFound, "SoftDeletedVaultDoesNotExist",
				"No deleted vault '%s' that may be recovered exists in resource group '%s'.", rp.SafeText(rq.Path.Name), rp.SafeText(rq.Path.RG))
		} else if err != nil {
			return rp.InternalError(err)
		}
		if l := rp.NormalizeLocation(location); l != "" && l != v.Location {
			return rp.NewError(http.StatusBadRequest, "LocationNotAvailableForResourceType", "The deleted vault '%s' is in location '%s'; it cannot be recovered in '%s'.",
				v.Name, v.Location, rp.SafeText(location))
		}
		if err := tx.RecoverVault(rq.Ctx, v.Name); err != nil {
			return rp.InternalError(err)
		}
		now := rq.Now().UTC()
		res := store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: v.ResourceID,
			Type: vaultType, Name: v.Name, Location: v.Location, Tags: tags, Created: now, Updated: now}
		if err := rp.SaveRecord(rq, tx, &res, nil); err != nil {
			return err
		}
		v.Deleted = time.Time{}
		out, outRes = v, res
		return nil
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, vaultViewOf(rq, out, &outRes))
}
