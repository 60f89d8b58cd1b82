package arm

// Microsoft.ManagedIdentity/userAssignedIdentities and their
// federatedIdentityCredentials.
//
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

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const (
	// targetIdentities is a userAssignedIdentities id or collection.
	targetIdentities target = 110
	// targetIdentityCredentials is a federatedIdentityCredentials id or
	// collection below an identity.
	targetIdentityCredentials target = 111
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
func identityPath(segs []string) (armPath, bool, error) {
	return typedPath(segs, identityNamespace, "userAssignedIdentities", "federatedIdentityCredentials", targetIdentities, targetIdentityCredentials)
}

// identities serves the Microsoft.ManagedIdentity paths.
func (h *Handler) identities(rq *request) error {
	if rq.path.target == targetIdentityCredentials {
		return h.serveType(rq, rq.path.child == "", typeHandlers{list: h.listIdentityCredentials,
			get: h.getIdentityCredential, put: h.putIdentityCredential, del: h.deleteIdentityCredential})
	}
	return h.serveType(rq, rq.path.name == "", typeHandlers{list: h.listIdentities,
		get: h.getIdentity, put: h.putIdentity, del: h.deleteIdentity})
}

// directoryError turns a directory refusal into ARM's shape: an invalid
// request is 400, a conflict 409, anything else a 500.
func directoryError(err error) error {
	if msg, ok := directory.IsInvalid(err); ok {
		return badRequest("%s", safeText(msg))
	}
	if msg, ok := directory.ConflictMessage(err); ok {
		return newError(http.StatusConflict, "Conflict", "%s", safeText(msg))
	}
	return internalError(err)
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

// idIn reports whether resource id is in subscription sub and, if rg is
// not empty, resource group rg.
func idIn(id, sub, rg string) bool {
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	if len(segs) < 4 || !strings.EqualFold(segs[0], "subscriptions") || !strings.EqualFold(segs[1], sub) || !strings.EqualFold(segs[2], "resourceGroups") {
		return false
	}
	return rg == "" || strings.EqualFold(segs[3], rg)
}

// identityIDOf is the id the path names, in the path's case.
func identityIDOf(rq *request) string {
	return directory.UserAssignedIdentityID(rq.path.sub, rq.path.rg, rq.path.name)
}

// findIdentity returns the user-assigned identity the path names, with its
// generic record if there is one: ResourceGroupNotFound, or
// ResourceNotFound.
func findIdentity(rq *request, dir *directory.Service, tenantID string) (*directory.ServicePrincipal, *store.Resource, error) {
	if _, err := pathGroup(rq, dir.Store()); err != nil {
		return nil, nil, err
	}
	sp, err := dir.ManagedIdentityByResourceID(rq.ctx, tenantID, identityIDOf(rq))
	if errors.Is(err, directory.ErrNotFound) || (err == nil && !sp.IsUserAssigned()) {
		return nil, nil, resourceNotFound(identityType, rq.path.rg, rq.path.name)
	} else if err != nil {
		return nil, nil, internalError(err)
	}
	res, err := recordOf(rq, dir.Store(), sp.ManagedIdentityResourceID())
	if err != nil {
		return nil, nil, err
	}
	return sp, res, nil
}

// ---- identities ----

func (h *Handler) getIdentity(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionIdentityRead)
	if err != nil {
		return err
	}
	sp, res, err := findIdentity(rq, h.dir, tenantID)
	if err != nil {
		return err
	}
	return writeJSON(rq, http.StatusOK, identityViewOf(tenantID, sp, res))
}

// listIdentities lists the user-assigned identities of a group or
// subscription that the caller may read.
func (h *Handler) listIdentities(rq *request) error {
	tenantID, err := h.listTenant(rq, actionIdentityRead)
	if err != nil {
		return err
	}
	sps, err := h.dir.ListManagedIdentities(rq.ctx, tenantID)
	if err != nil {
		return internalError(err)
	}
	sps = slices.DeleteFunc(sps, func(sp *directory.ServicePrincipal) bool {
		return !sp.IsUserAssigned() || !idIn(sp.ManagedIdentityResourceID(), rq.path.sub, rq.path.rg)
	})
	return writeReadable(h, rq, actionIdentityRead, sps, (*directory.ServicePrincipal).ManagedIdentityResourceID,
		func(sp *directory.ServicePrincipal) (identityView, error) {
			res, err := recordOf(rq, h.st, sp.ManagedIdentityResourceID())
			return identityViewOf(tenantID, sp, res), err
		})
}

func (h *Handler) putIdentity(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionIdentityWrite)
	if err != nil {
		return err
	}
	var body struct {
		Location string            `json:"location"`
		Tags     map[string]string `json:"tags"`
	}
	if err := readBody(rq, &body); err != nil {
		return err
	}
	location, err := checkLocation(body.Location, identityType)
	if err != nil {
		return err
	}
	if err := checkTags(body.Tags); err != nil {
		return err
	}
	status := http.StatusOK
	var out identityView
	err = h.change(rq, tenantID, func(tx store.Store, dir *directory.Service) error {
		now := h.now().UTC()
		g, err := pathGroup(rq, tx)
		if err != nil {
			return err
		}
		sp, err := dir.ManagedIdentityByResourceID(rq.ctx, tenantID, identityIDOf(rq))
		switch {
		case errors.Is(err, directory.ErrNotFound):
			t, err := tx.GetTenant(rq.ctx, tenantID)
			if err != nil {
				return internalError(err)
			}
			if !strings.EqualFold(t.SubscriptionID, g.SubscriptionID) {
				return badRequest("User-assigned identities can be created only in the tenant's default subscription '%s'.", t.SubscriptionID)
			}
			status = http.StatusCreated
			if sp, err = dir.CreateUserAssignedIdentity(rq.ctx, tenantID, g.Name, rq.path.name); err != nil {
				return directoryError(err)
			}
		case err != nil:
			return internalError(err)
		case !sp.IsUserAssigned():
			return newError(http.StatusConflict, "Conflict", "The resource id '%s' belongs to a system-assigned identity.", safeText(identityIDOf(rq)))
		}
		id := sp.ManagedIdentityResourceID()
		rq.target = id
		res := store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: id,
			Type: identityType, Name: identityName(sp), Location: location, Tags: body.Tags, Created: now, Updated: now}
		err = saveRecord(rq, tx, &res, func(old store.Resource) error {
			if old.Location != "" && old.Location != location {
				return locationMoved(safeText(res.Name), old.Location, g.Name, location)
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
	return writeJSON(rq, status, out)
}

func (h *Handler) deleteIdentity(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionIdentityDelete)
	if err != nil {
		return err
	}
	return h.deleteAndWrite(rq, tenantID, func(_ store.Store, dir *directory.Service) error {
		sp, _, err := findIdentity(rq, dir, tenantID)
		if err != nil {
			return nothingIfNotFound(err)
		}
		rq.target = sp.ManagedIdentityResourceID()
		return deleteIdentityRecords(rq, dir, tenantID, sp)
	})
}

// deleteIdentityRecords deletes the identity in the directory (its role
// assignments go with it), its generic record and the role assignments at
// its scope.
func deleteIdentityRecords(rq *request, dir *directory.Service, tenantID string, sp *directory.ServicePrincipal) error {
	if err := dir.DeleteManagedIdentity(rq.ctx, tenantID, sp.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
		return internalError(err)
	}
	return deleteRecord(rq, dir.Store(), sp.ManagedIdentityResourceID())
}

// deleteGroupIdentities deletes the user-assigned identities of group g,
// inside the transaction that deletes the group.
func deleteGroupIdentities(rq *request, dir *directory.Service, g store.ResourceGroup) error {
	sps, err := dir.ListManagedIdentities(rq.ctx, g.TenantID)
	if err != nil {
		return internalError(err)
	}
	for _, sp := range sps {
		if sp.IsUserAssigned() && idIn(sp.ManagedIdentityResourceID(), g.SubscriptionID, g.Name) {
			if err := deleteIdentityRecords(rq, dir, g.TenantID, sp); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- federated identity credentials ----

// findCredential finds the credential the path names on sp.
func findCredential(rq *request, sp *directory.ServicePrincipal) (directory.FederatedIdentityCredential, error) {
	for _, f := range sp.FederatedCredentials {
		if strings.EqualFold(f.Name, rq.path.child) {
			return f, nil
		}
	}
	return directory.FederatedIdentityCredential{}, resourceNotFound(ficType, rq.path.rg, rq.path.name+"/"+rq.path.child)
}

// findParentIdentity is findIdentity for a child path: a missing identity
// is ParentResourceNotFound.
func findParentIdentity(rq *request, dir *directory.Service, tenantID string) (*directory.ServicePrincipal, error) {
	sp, _, err := findIdentity(rq, dir, tenantID)
	return sp, asParent(err, identityType, rq.path.name)
}

func (h *Handler) getIdentityCredential(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionFICRead)
	if err != nil {
		return err
	}
	sp, err := findParentIdentity(rq, h.dir, tenantID)
	if err != nil {
		return err
	}
	f, err := findCredential(rq, sp)
	if err != nil {
		return err
	}
	return writeJSON(rq, http.StatusOK, ficViewOf(sp.ManagedIdentityResourceID(), f))
}

func (h *Handler) listIdentityCredentials(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionFICRead)
	if err != nil {
		return err
	}
	sp, err := findParentIdentity(rq, h.dir, tenantID)
	if err != nil {
		return err
	}
	out := []ficView{}
	for _, f := range sp.FederatedCredentials {
		out = append(out, ficViewOf(sp.ManagedIdentityResourceID(), f))
	}
	return writeJSON(rq, http.StatusOK, list[ficView]{Value: out})
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
func (h *Handler) oneFICWriter(rq *request) (func(), error) {
	id := strings.ToLower("/subscriptions/" + rq.path.sub + "/resourceGroups/" + rq.path.rg + "/providers/" + identityNamespace + "/userAssignedIdentities/" + rq.path.name)
	if !h.ficWrites.begin(id) {
		return nil, newError(http.StatusConflict, "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
			"Too many Federated Identity Credentials are written concurrently for the managed identity '%s'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported.", safeText(id))
	}
	return func() { h.ficWrites.end(id) }, nil
}

func (h *Handler) putIdentityCredential(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionFICWrite)
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
	if err := readBody(rq, &body); err != nil {
		return err
	}
	if body.Properties == nil {
		return badRequest("The parameter properties is required.")
	}
	f := directory.FederatedIdentityCredential{Name: rq.path.child, Issuer: body.Properties.Issuer, Subject: body.Properties.Subject, Audiences: body.Properties.Audiences}
	status := http.StatusCreated
	var out ficView
	err = h.change(rq, tenantID, func(_ store.Store, dir *directory.Service) error {
		sp, err := findParentIdentity(rq, dir, tenantID)
		if err != nil {
			return err
		}
		id := sp.ManagedIdentityResourceID()
		if old, err := findCredential(rq, sp); err == nil {
			// An update: replace the credential, keeping its name.
			status = http.StatusOK
			f.Name = old.Name
			if err := dir.RemoveIdentityFederatedCredential(rq.ctx, tenantID, sp.ID, old.ID); err != nil {
				return directoryError(err)
			}
		}
		rq.target = id + "/federatedIdentityCredentials/" + f.Name
		added, err := dir.AddIdentityFederatedCredential(rq.ctx, tenantID, sp.ID, f)
		if err != nil {
			return directoryError(err)
		}
		out = ficViewOf(id, added)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(rq, status, out)
}

func (h *Handler) deleteIdentityCredential(rq *request) error {
	tenantID, err := h.authorizeAt(rq, actionFICDelete)
	if err != nil {
		return err
	}
	done, err := h.oneFICWriter(rq)
	if err != nil {
		return err
	}
	defer done()
	return h.deleteAndWrite(rq, tenantID, func(_ store.Store, dir *directory.Service) error {
		sp, err := findParentIdentity(rq, dir, tenantID)
		if err != nil {
			return err
		}
		f, err := findCredential(rq, sp)
		if err != nil {
			return errNothingToDo
		}
		rq.target = sp.ManagedIdentityResourceID() + "/federatedIdentityCredentials/" + f.Name
		if err := dir.RemoveIdentityFederatedCredential(rq.ctx, tenantID, sp.ID, f.ID); err != nil {
			return directoryError(err)
		}
		return nil
	})
}
