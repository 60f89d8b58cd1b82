// Package managedidentity is Managed Identity's control plane:
// Microsoft.ManagedIdentity/userAssignedIdentities and their
// federatedIdentityCredentials, registered with Resource Manager's front
// door (package arm) as a provider (Provider). The identities' data plane
// is elsewhere: the directory holds them (package directory) and the
// token service issues their tokens (package sts, the managed-identity
// endpoint and federated credentials' token exchange).
package managedidentity

// The directory's managed identity (a service principal of type
// ManagedIdentity whose alternativeNames hold the resource id) IS the
// resource: PUT creates it through the directory, DELETE deletes it there,
// and its principal id and client id are the service principal's object
// id and appId. Location and tags are kept in a generic ARM Resource of the
// same id, written in the same transaction. Federated identity credentials
// live on the identity's service principal; the directory applies Entra's
// rules (names, https issuer, one audience, at most 20, unique name and
// issuer+subject). Deleting a resource group deletes its identities through
// the directory in the group's transaction (deleteGroupIdentities).

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const (
	// targetIdentities is a userAssignedIdentities id or collection.
	targetIdentities rp.Target = 110
	// targetIdentityCredentials is a federatedIdentityCredentials id or
	// collection below an identity.
	targetIdentityCredentials rp.Target = 111
)

// Provider is Managed Identity's resource provider. The server registers
// it with arm.Config.Providers.
func Provider() *rp.Provider {
	h := &provider{}
	return &rp.Provider{Namespace: identityNamespace, Types: []rp.ResourceType{
		{Name: "userAssignedIdentities", Listed: true, APIVersions: identityVersions, Locations: rp.AllRegions(), Capabilities: rp.TrackedCapabilities},
		{Name: "userAssignedIdentities/federatedIdentityCredentials", APIVersions: ficVersions}},
		Parse: identityPath, Serve: h.identities,
		DeleteGroup: func(rq *rp.Request, _ store.Store, dir *directory.Service, g store.ResourceGroup) error {
			return deleteGroupIdentities(rq, dir, g)
		},
		Unrecorded: unrecordedIdentities}
}

// provider serves the Microsoft.ManagedIdentity paths.
type provider struct {
	// ficWrites are the user-assigned identities whose federated
	// credentials are being written (oneFICWriter).
	ficWrites inFlight
}

// The api-versions, newest first: the published versions of the REST
// spec (azure-rest-api-specs, specification/msi/resource-manager), which
// include what the current SDK sends (armmsi v1.3.0: 2024-11-30) and what
// Debian's az 2.45 sends (2022-01-31-preview).
var (
	identityVersions = []string{"2024-11-30", "2023-07-31-preview", "2023-01-31", "2022-01-31-preview", "2021-09-30-preview", "2018-11-30",
		"2015-08-31-preview"}
	// ficVersions: federated identity credentials came with 2022-01-31-preview.
	ficVersions = []string{"2024-11-30", "2023-07-31-preview", "2023-01-31", "2022-01-31-preview"}
)

const (
	identityNamespace    = "Microsoft.ManagedIdentity"
	identityType         = "Microsoft.ManagedIdentity/userAssignedIdentities"
	ficType              = identityType + "/federatedIdentityCredentials"
	actionIdentityRead   = identityType + "/read"
	actionIdentityWrite  = identityType + "/write"
	actionIdentityDelete = identityType + "/delete"
	actionFICRead        = ficType + "/read"
	actionFICWrite       = ficType + "/write"
	actionFICDelete      = ficType + "/delete"
)

// identityPath recognises the Microsoft.ManagedIdentity paths.
func identityPath(segs []string) (rp.Path, bool, error) {
	return rp.TypedPath(segs, identityNamespace, "userAssignedIdentities", "federatedIdentityCredentials", targetIdentities, targetIdentityCredentials)
}

// identities serves the Microsoft.ManagedIdentity paths.
func (h *provider) identities(rq *rp.Request) error {
	if rq.Path.Target == targetIdentityCredentials {
		return rp.ServeType(rq, rq.Path.Child == "", rp.TypeHandlers{List: h.listIdentityCredentials,
			Get: h.getIdentityCredential, Put: h.putIdentityCredential, Delete: h.deleteIdentityCredential})
	}
	return rp.ServeType(rq, rq.Path.Name == "", rp.TypeHandlers{List: h.listIdentities,
		Get: h.getIdentity, Put: h.putIdentity, Patch: h.patchIdentity, Delete: h.deleteIdentity})
}

// ---- wire shapes ----

type identityProperties struct {
	TenantID    string `json:"tenantId"`
	PrincipalID string `json:"principalId"`
	ClientID    string `json:"clientId"`
}

type identityView struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Location   string             `json:"location"`
	Tags       map[string]string  `json:"tags"`
	Properties identityProperties `json:"properties"`
}

type ficProperties struct {
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences"`
}

type ficView struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Type       string        `json:"type"`
	Properties ficProperties `json:"properties"`
}

// identityName is the last segment of an identity's resource id.
func identityName(sp *directory.ServicePrincipal) string {
	id := sp.ManagedIdentityResourceID()
	return id[strings.LastIndexByte(id, '/')+1:]
}

func identityViewOf(tenantID string, sp *directory.ServicePrincipal, res *store.Resource) identityView {
	v := identityView{ID: sp.ManagedIdentityResourceID(), Name: identityName(sp), Type: identityType, Tags: map[string]string{},
		Properties: identityProperties{TenantID: tenantID, PrincipalID: sp.ID, ClientID: sp.AppID}}
	if res != nil {
		v.Location = res.Location
		if res.Tags != nil {
			v.Tags = res.Tags
		}
	}
	return v
}

func ficViewOf(identityID string, f directory.FederatedIdentityCredential) ficView {
	aud := f.Audiences
	if aud == nil {
		aud = []string{}
	}
	return ficView{ID: identityID + "/federatedIdentityCredentials/" + f.Name, Name: f.Name, Type: ficType,
		Properties: ficProperties{Issuer: f.Issuer, Subject: f.Subject, Audiences: aud}}
}

// identityIDOf is the id the path names, in the path's case.
func identityIDOf(rq *rp.Request) string {
	return directory.UserAssignedIdentityID(rq.Path.Sub, rq.Path.RG, rq.Path.Name)
}

// findIdentity returns the user-assigned identity the path names, with its
// generic record if there is one: ResourceGroupNotFound, or
// ResourceNotFound.
func findIdentity(rq *rp.Request, dir *directory.Service, tenantID string) (*directory.ServicePrincipal, *store.Resource, error) {
	if _, err := rp.PathGroup(rq, dir.Store()); err != nil {
		return nil, nil, err
	}
	sp, err := dir.ManagedIdentityByResourceID(rq.Ctx, tenantID, identityIDOf(rq))
	if errors.Is(err, directory.ErrNotFound) || (err == nil && !sp.IsUserAssigned()) {
		return nil, nil, rp.ResourceNotFound(identityType, rq.Path.RG, rq.Path.Name)
	} else if err != nil {
		return nil, nil, rp.InternalError(err)
	}
	res, err := rp.RecordOf(rq, dir.Store(), sp.ManagedIdentityResourceID())
	if err != nil {
		return nil, nil, err
	}
	return sp, res, nil
}

// ---- identities ----

func (h *provider) getIdentity(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionIdentityRead)
	if err != nil {
		return err
	}
	sp, res, err := findIdentity(rq, rq.Directory(), tenantID)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, identityViewOf(tenantID, sp, res))
}

// patchIdentity serves UserAssignedIdentities - Update (PATCH; Managed
// Identity REST, e.g. 2023-01-31, IdentityUpdate: location and tags;
// 200): the identity's current location and tags with the patch's over
// them, written as a PUT would write them (a location other than the
// identity's is refused as a PUT refuses it). Federated identity
// credentials have no Update operation: PATCH on one is 405.
func (h *provider) patchIdentity(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionIdentityWrite)
	if err != nil {
		return err
	}
	sp, res, err := findIdentity(rq, rq.Directory(), tenantID)
	if err != nil {
		return err
	}
	view := identityViewOf(tenantID, sp, res)
	current := map[string]any{"location": view.Location, "tags": view.Tags}
	return rp.PatchAsPut(rq, current, []string{"location", "tags"}, h.putIdentity)
}

// listIdentities lists the user-assigned identities of a group or
// subscription that the caller may read.
func (h *provider) listIdentities(rq *rp.Request) error {
	tenantID, err := rq.ListTenant(actionIdentityRead)
	if err != nil {
		return err
	}
	sps, err := rq.Directory().ListManagedIdentities(rq.Ctx, tenantID)
	if err != nil {
		return rp.InternalError(err)
	}
	sps = slices.DeleteFunc(sps, func(sp *directory.ServicePrincipal) bool {
		return !sp.IsUserAssigned() || !rp.IDIn(sp.ManagedIdentityResourceID(), rq.Path.Sub, rq.Path.RG)
	})
	return rp.WriteReadable(rq, actionIdentityRead, sps, (*directory.ServicePrincipal).ManagedIdentityResourceID,
		func(sp *directory.ServicePrincipal) (identityView, error) {
			res, err := rp.RecordOf(rq, rq.Store(), sp.ManagedIdentityResourceID())
			return identityViewOf(tenantID, sp, res), err
		})
}

func (h *provider) putIdentity(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionIdentityWrite)
	if err != nil {
		return err
	}
	var body struct {
		Location string            `json:"location"`
		Tags     map[string]string `json:"tags"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	location, err := rp.CheckLocation(body.Location, identityType)
	if err != nil {
		return err
	}
	if err := rp.CheckTags(body.Tags); err != nil {
		return err
	}
	status := http.StatusOK
	var out identityView
	err = rq.Change(tenantID, func(tx store.Store, dir *directory.Service) error {
		now := rq.Now().UTC()
		g, err := rp.PathGroup(rq, tx)
		if err != nil {
			return err
		}
		sp, err := dir.ManagedIdentityByResourceID(rq.Ctx, tenantID, identityIDOf(rq))
		switch {
		case errors.Is(err, directory.ErrNotFound) && rq.IsPatch():
			return rp.ResourceNotFound(identityType, rq.Path.RG, rq.Path.Name)
		case errors.Is(err, directory.ErrNotFound):
			t, err := tx.GetTenant(rq.Ctx, tenantID)
			if err != nil {
				return rp.InternalError(err)
			}
			if !strings.EqualFold(t.SubscriptionID, g.SubscriptionID) {
				return rp.BadRequest("User-assigned identities can be created only in the tenant's default subscription '%s'.", t.SubscriptionID)
			}
			status = http.StatusCreated
			if sp, err = dir.CreateUserAssignedIdentity(rq.Ctx, tenantID, g.Name, rq.Path.Name); err != nil {
				return rp.DirectoryError(err)
			}
		case err != nil:
			return rp.InternalError(err)
		case !sp.IsUserAssigned():
			return rp.NewError(http.StatusConflict, "Conflict", "The resource id '%s' belongs to a system-assigned identity.", rp.SafeText(identityIDOf(rq)))
		}
		id := sp.ManagedIdentityResourceID()
		rq.Target = id
		res := store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: id,
			Type: identityType, Name: identityName(sp), Location: location, Tags: body.Tags, Created: now, Updated: now}
		err = rp.SaveRecord(rq, tx, &res, func(old store.Resource) error {
			if old.Location != "" && old.Location != location {
				return rp.LocationMoved(rp.SafeText(res.Name), old.Location, g.Name, location)
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = identityViewOf(tenantID, sp, &res)
		return nil
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, out)
}

func (h *provider) deleteIdentity(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionIdentityDelete)
	if err != nil {
		return err
	}
	return rq.DeleteAndWrite(tenantID, func(_ store.Store, dir *directory.Service) error {
		sp, _, err := findIdentity(rq, dir, tenantID)
		if err != nil {
			return rp.NothingIfNotFound(err)
		}
		rq.Target = sp.ManagedIdentityResourceID()
		return deleteIdentityRecords(rq, dir, tenantID, sp)
	})
}

// deleteIdentityRecords deletes the identity in the directory (its role
// assignments go with it), its generic record and the role assignments at
// its scope.
func deleteIdentityRecords(rq *rp.Request, dir *directory.Service, tenantID string, sp *directory.ServicePrincipal) error {
	if err := dir.DeleteManagedIdentity(rq.Ctx, tenantID, sp.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
		return rp.InternalError(err)
	}
	return rp.DeleteRecord(rq, dir.Store(), sp.ManagedIdentityResourceID())
}

// deleteGroupIdentities deletes the user-assigned identities of group g,
// inside the transaction that deletes the group.
func deleteGroupIdentities(rq *rp.Request, dir *directory.Service, g store.ResourceGroup) error {
	sps, err := dir.ListManagedIdentities(rq.Ctx, g.TenantID)
	if err != nil {
		return rp.InternalError(err)
	}
	for _, sp := range sps {
		if sp.IsUserAssigned() && rp.IDIn(sp.ManagedIdentityResourceID(), g.SubscriptionID, g.Name) {
			if err := deleteIdentityRecords(rq, dir, g.TenantID, sp); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- federated identity credentials ----

// findCredential finds the credential the path names on sp.
func findCredential(rq *rp.Request, sp *directory.ServicePrincipal) (directory.FederatedIdentityCredential, error) {
	for _, f := range sp.FederatedCredentials {
		if strings.EqualFold(f.Name, rq.Path.Child) {
			return f, nil
		}
	}
	return directory.FederatedIdentityCredential{}, rp.ResourceNotFound(ficType, rq.Path.RG, rq.Path.Name+"/"+rq.Path.Child)
}

// findParentIdentity is findIdentity for a child path: a missing identity
// is ParentResourceNotFound.
func findParentIdentity(rq *rp.Request, dir *directory.Service, tenantID string) (*directory.ServicePrincipal, error) {
	sp, _, err := findIdentity(rq, dir, tenantID)
	return sp, rp.AsParent(err, identityType, rq.Path.Name)
}

func (h *provider) getIdentityCredential(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionFICRead)
	if err != nil {
		return err
	}
	sp, err := findParentIdentity(rq, rq.Directory(), tenantID)
	if err != nil {
		return err
	}
	f, err := findCredential(rq, sp)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, ficViewOf(sp.ManagedIdentityResourceID(), f))
}

func (h *provider) listIdentityCredentials(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionFICRead)
	if err != nil {
		return err
	}
	sp, err := findParentIdentity(rq, rq.Directory(), tenantID)
	if err != nil {
		return err
	}
	out := []ficView{}
	for _, f := range sp.FederatedCredentials {
		out = append(out, ficViewOf(sp.ManagedIdentityResourceID(), f))
	}
	return rp.WriteJSON(rq, http.StatusOK, rp.List[ficView]{Value: out})
}

// inFlight is a set of keys with an operation under way, taken without
// waiting.
type inFlight struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

// begin takes key, or reports false when it is taken.
func (f *inFlight) begin(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[key]; ok {
		return false
	}
	if f.keys == nil {
		f.keys = map[string]struct{}{}
	}
	f.keys[key] = struct{}{}
	return true
}

func (f *inFlight) end(key string) {
	f.mu.Lock()
	delete(f.keys, key)
	f.mu.Unlock()
}

// oneFICWriter lets one federated-credential write (PUT or DELETE) under
// a user-assigned identity run at a time and refuses the others as
// Managed Identity does, with 409
// ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity
// (Azure/bicep-registry-modules#1447, hashicorp/terraform-provider-azurerm
// #19968: recorded responses; templates must write them with batchSize 1).
// The refusal names the identity's id in lower case, as Azure's does. It
// returns the function that ends the write.
func (h *provider) oneFICWriter(rq *rp.Request) (func(), error) {
	id := strings.ToLower("/subscriptions/" + rq.Path.Sub + "/resourceGroups/" + rq.Path.RG + "/providers/" + identityNamespace + "/userAssignedIdentities/" + rq.Path.Name)
	if !h.ficWrites.begin(id) {
		return nil, rp.NewError(http.StatusConflict, "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
			"Too many Federated Identity Credentials are written concurrently for the managed identity '%s'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported.", rp.SafeText(id))
	}
	return func() { h.ficWrites.end(id) }, nil
}

func (h *provider) putIdentityCredential(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionFICWrite)
	if err != nil {
		return err
	}
	done, err := h.oneFICWriter(rq)
	if err != nil {
		return err
	}
	defer done()
	var body struct {
		Properties *struct {
			Issuer    string   `json:"issuer"`
			Subject   string   `json:"subject"`
			Audiences []string `json:"audiences"`
		} `json:"properties"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if body.Properties == nil {
		return rp.BadRequest("The parameter properties is required.")
	}
	f := directory.FederatedIdentityCredential{Name: rq.Path.Child, Issuer: body.Properties.Issuer, Subject: body.Properties.Subject, Audiences: body.Properties.Audiences}
	status := http.StatusCreated
	var out ficView
	err = rq.Change(tenantID, func(_ store.Store, dir *directory.Service) error {
		sp, err := findParentIdentity(rq, dir, tenantID)
		if err != nil {
			return err
		}
		id := sp.ManagedIdentityResourceID()
		if old, err := findCredential(rq, sp); err == nil {
			// An update: replace the credential, keeping its name.
			status = http.StatusOK
			f.Name = old.Name
			if err := dir.RemoveIdentityFederatedCredential(rq.Ctx, tenantID, sp.ID, old.ID); err != nil {
				return rp.DirectoryError(err)
			}
		}
		rq.Target = id + "/federatedIdentityCredentials/" + f.Name
		added, err := dir.AddIdentityFederatedCredential(rq.Ctx, tenantID, sp.ID, f)
		if err != nil {
			return rp.DirectoryError(err)
		}
		out = ficViewOf(id, added)
		return nil
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, out)
}

func (h *provider) deleteIdentityCredential(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionFICDelete)
	if err != nil {
		return err
	}
	done, err := h.oneFICWriter(rq)
	if err != nil {
		return err
	}
	defer done()
	return rq.DeleteAndWrite(tenantID, func(_ store.Store, dir *directory.Service) error {
		sp, err := findParentIdentity(rq, dir, tenantID)
		if err != nil {
			return err
		}
		f, err := findCredential(rq, sp)
		if err != nil {
			return rp.ErrNothingToDo
		}
		rq.Target = sp.ManagedIdentityResourceID() + "/federatedIdentityCredentials/" + f.Name
		if err := dir.RemoveIdentityFederatedCredential(rq.Ctx, tenantID, sp.ID, f.ID); err != nil {
			return rp.DirectoryError(err)
		}
		return nil
	})
}

// unrecordedIdentities are the tenant's user-assigned identities without a
// generic record (those made through the operator API).
func unrecordedIdentities(rq *rp.Request, tenantID string) ([]store.Resource, error) {
	sps, err := rq.Directory().ListManagedIdentities(rq.Ctx, tenantID)
	if err != nil {
		return nil, rp.InternalError(err)
	}
	var out []store.Resource
	for _, sp := range sps {
		if !sp.IsUserAssigned() {
			continue
		}
		id := sp.ManagedIdentityResourceID()
		if _, err := rq.Store().GetResource(rq.Ctx, id); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			// A failed read is not "no record": listing it here too would
			// show the identity twice.
			return nil, rp.InternalError(err)
		}
		segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
		out = append(out, store.Resource{TenantID: tenantID, SubscriptionID: segs[1], ResourceGroup: rp.ResourceGroupOf(segs), ID: id,
			Name: identityName(sp), Type: identityType, Created: sp.CreatedDateTime, Updated: sp.CreatedDateTime})
	}
	return out, nil
}
