package arm

// Management locks (Microsoft.Authorization/locks) and their enforcement
// at the front door.
//
// A lock sits at a subscription, a resource group or a resource and holds
// for everything below it (Management Locks REST API, 2020-05-01: "When
// you apply a lock at a parent scope, all child resources inherit the
// same lock"). CanNotDelete refuses deletes; ReadOnly refuses every write
// and delete, and the POST actions that change something or hand out a
// secret. A refusal is 409 ScopeLocked in Azure's words (recorded by
// users, e.g. "The scope '…' cannot perform delete operation because
// following scope(s) are locked: '/subscriptions/…'. Please remove the
// lock and try again.").
//
// Locks are a control-plane matter only: the Key Vault and Service Bus
// data planes never consult them (learn.microsoft.com/azure/
// azure-resource-manager/management/lock-resources: "locks only apply to
// control plane Azure operations and not data plane operations").
//
// A managed application's lockLevel is not a lock object here. In Azure
// the application's lock level is applied to the managed resource group
// as a deny assignment for the customer (the publisher is excluded), not
// as a Microsoft.Authorization/locks resource the customer could list or
// remove; managedapps.go does exactly that.

import (
	"errors"
	"net/http"
	"strings"
	"unicode"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// targetLocks is {scope}/providers/Microsoft.Authorization/locks[/{name}].
const targetLocks target = 170

// The lock levels Resource Manager enforces (LockLevel of the REST spec;
// NotSpecified is not a level one can create).
const (
	lockCanNotDelete = "CanNotDelete"
	lockReadOnly     = "ReadOnly"
)

// lockType is the locks' resource type.
const lockType = "Microsoft.Authorization/locks"

// Limits of the REST spec (Management Locks - Create Or Update By Scope):
// a lock name of at most 260 characters without <, >, %, &, :, \, ?, /
// or control characters, notes of at most 512 characters.
const (
	maxLockName  = 260
	maxLockNotes = 512
	// maxLockOwners bounds a body's owners list: the spec sets no limit,
	// tenantbridge keeps one lock small.
	maxLockOwners = 16
)

// locksPath recognises {scope}/providers/Microsoft.Authorization/locks and
// …/locks/{name} at a subscription, a resource group or a resource (Azure
// serves locks at no other scope).
func locksPath(segs []string) (rp.Path, bool, error) {
	n := len(segs)
	var i int
	switch {
	case n >= 5 && strings.EqualFold(segs[n-3], "providers") && strings.EqualFold(segs[n-2], "Microsoft.Authorization") && strings.EqualFold(segs[n-1], "locks"):
		i = n - 3
	case n >= 6 && strings.EqualFold(segs[n-4], "providers") && strings.EqualFold(segs[n-3], "Microsoft.Authorization") && strings.EqualFold(segs[n-2], "locks"):
		i = n - 4
	default:
		return rp.Path{}, false, nil
	}
	sc, err := rp.ParseScopeText("/" + strings.Join(segs[:i], "/"))
	if err != nil {
		return rp.Path{}, true, err
	}
	if sc.SubscriptionID() == "" {
		return rp.Path{}, true, rp.BadPath("locks are served at a subscription, a resource group or a resource")
	}
	ap := rp.Path{Target: targetLocks, Scope: sc, Sub: sc.SubscriptionID(), RG: rp.ResourceGroupOf(segs[:i])}
	if n == i+4 {
		if segs[n-1] == "" {
			return rp.Path{}, true, rp.BadPath("the resource id has an empty name")
		}
		ap.Name = segs[n-1]
	}
	return ap, true, nil
}

// lockView is ManagementLockObject.
type lockView struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Properties lockProperties `json:"properties"`
}

type lockProperties struct {
	Level  string      `json:"level"`
	Notes  string      `json:"notes,omitempty"`
	Owners []lockOwner `json:"owners,omitempty"`
}

type lockOwner struct {
	ApplicationID string `json:"applicationId"`
}

func lockID(l store.ManagementLock) string {
	return l.Scope + "/providers/" + lockType + "/" + l.Name
}

func lockViewOf(l store.ManagementLock) lockView {
	v := lockView{ID: lockID(l), Name: l.Name, Type: lockType, Properties: lockProperties{Level: l.Level, Notes: l.Notes}}
	for _, o := range l.Owners {
		v.Properties.Owners = append(v.Properties.Owners, lockOwner{ApplicationID: o})
	}
	return v
}

// locks serves the locks of a scope.
func (h *Handler) locks(rq *rp.Request) error {
	switch m := rq.R.Method; {
	case m == http.MethodGet && rq.Path.Name == "":
		return h.listLocks(rq)
	case m == http.MethodGet:
		return h.getLock(rq)
	case m == http.MethodPut && rq.Path.Name != "":
		return h.putLock(rq)
	case m == http.MethodDelete && rq.Path.Name != "":
		return h.deleteLock(rq)
	default:
		return rp.MethodNotAllowed(m)
	}
}

// lockScopeExists refuses a lock at a scope that does not exist: the
// subscription (ScopeTenant has found it), the group, or a resource with a
// generic record, in a group or at the subscription (a subscription-level
// resource id is checked too, or locks could pile up at ids of nothing,
// each one read by every write's checkLocks; Azure answers 404 for a lock
// on a resource that is not there).
func (h *Handler) lockScopeExists(rq *rp.Request) error {
	sc := rq.Path.Scope.String()
	if rq.Path.RG == "" {
		if strings.EqualFold(sc, "/subscriptions/"+rq.Path.Sub) {
			return nil
		}
	} else {
		if _, err := rp.PathGroup(rq, h.st); err != nil {
			return err
		}
		if strings.EqualFold(sc, "/subscriptions/"+rq.Path.Sub+"/resourceGroups/"+rq.Path.RG) {
			return nil
		}
	}
	if _, err := h.st.GetResource(rq.Ctx, sc); errors.Is(err, store.ErrNotFound) {
		return rp.NewError(http.StatusNotFound, "ResourceNotFound", "The Resource '%s' was not found.", rp.SafeText(sc))
	} else if err != nil {
		return rp.InternalError(err)
	}
	return nil
}

func (h *Handler) getLock(rq *rp.Request) error {
	if _, err := rq.AuthorizeAt("Microsoft.Authorization/locks/read"); err != nil {
		return err
	}
	l, err := h.st.GetManagementLock(rq.Ctx, rq.Path.Scope.String(), rq.Path.Name)
	if errors.Is(err, store.ErrNotFound) {
		// The REST spec's 404 for a lock that is not there.
		return rp.NewError(http.StatusNotFound, "LockNotFound", "The lock '%s' could not be found.", rp.SafeText(rq.Path.Name))
	} else if err != nil {
		return rp.InternalError(err)
	}
	return rp.WriteJSON(rq, http.StatusOK, lockViewOf(l))
}

// listLocks lists the locks that bear on the scope: those at it and above
// it, and, without $filter=atScope() (the one filter the lock lists take),
// those below it too (List At Resource Group Level: "all the management
// locks for a resource group", its resources' included).
func (h *Handler) listLocks(rq *rp.Request) error {
	atScope := false
	if f := strings.TrimSpace(rq.R.URL.Query().Get("$filter")); f != "" {
		if !strings.EqualFold(strings.Join(strings.Fields(f), ""), "atScope()") {
			return rp.NewError(http.StatusBadRequest, "InvalidFilterInQueryString", "The filter '%s' is not valid: the lock lists take only atScope().", rp.SafeText(f))
		}
		atScope = true
	}
	if _, err := rq.AuthorizeAt("Microsoft.Authorization/locks/read"); err != nil {
		return err
	}
	if err := h.lockScopeExists(rq); err != nil {
		return err
	}
	all, err := h.st.ListManagementLocks(rq.Ctx, rq.Path.Sub)
	if err != nil {
		return rp.InternalError(err)
	}
	p, err := rq.PageOf("$skipToken", false)
	if err != nil {
		return err
	}
	scope := rq.Path.Scope.Key()
	var views []lockView
	for _, l := range all {
		key := strings.ToLower(l.Scope)
		if underOrAt(scope, key) || (!atScope && underOrAt(key, scope)) {
			views = append(views, lockViewOf(l))
		}
	}
	return rp.WritePage(rq, p, views, func(v lockView) string { return strings.ToLower(v.ID) })
}

// underOrAt reports whether the lower-cased id is the lower-cased scope or
// lies below it on whole segments.
func underOrAt(id, scope string) bool {
	return id == scope || strings.HasPrefix(id, scope+"/")
}

// lockBody is the PUT body (ManagementLockObject).
type lockBody struct {
	Properties *struct {
		Level  string `json:"level"`
		Notes  string `json:"notes"`
		Owners []struct {
			ApplicationID string `json:"applicationId"`
		} `json:"owners"`
	} `json:"properties"`
}

// checkLockName enforces the REST spec's lock name rule.
func checkLockName(name string) error {
	if len([]rune(name)) > maxLockName || strings.IndexFunc(name, func(r rune) bool {
		return unicode.IsControl(r) || strings.ContainsRune(`<>%&:\?/`, r)
	}) >= 0 {
		return rp.NewError(http.StatusBadRequest, "InvalidLockName",
			"The lock name '%s' is not valid: it may be at most %d characters and may not contain <, >, %%, &, :, \\, ?, / or control characters.", rp.SafeText(name), maxLockName)
	}
	return nil
}

func (h *Handler) putLock(rq *rp.Request) error {
	if err := checkLockName(rq.Path.Name); err != nil {
		return err
	}
	var body lockBody
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if body.Properties == nil {
		return rp.BadRequest("The parameter properties is required.")
	}
	var level string
	switch {
	case strings.EqualFold(body.Properties.Level, lockCanNotDelete):
		level = lockCanNotDelete
	case strings.EqualFold(body.Properties.Level, lockReadOnly):
		level = lockReadOnly
	default:
		return rp.BadRequest("The lock level '%s' is not valid: it must be CanNotDelete or ReadOnly.", rp.SafeText(body.Properties.Level))
	}
	// A NUL cannot be stored (the store refuses it, which would be a
	// 500): the body is refused for it instead.
	if len([]rune(body.Properties.Notes)) > maxLockNotes || strings.ContainsRune(body.Properties.Notes, 0) {
		return rp.BadRequest("The lock notes are longer than %d characters or hold a NUL character.", maxLockNotes)
	}
	if len(body.Properties.Owners) > maxLockOwners {
		return rp.BadRequest("A lock has at most %d owners.", maxLockOwners)
	}
	var owners []string
	for _, o := range body.Properties.Owners {
		if o.ApplicationID == "" || len(o.ApplicationID) > 64 || strings.IndexFunc(o.ApplicationID, unicode.IsControl) >= 0 {
			return rp.BadRequest("A lock owner's applicationId must be given, at most 64 characters and without control characters.")
		}
		owners = append(owners, o.ApplicationID)
	}
	// Owner and User Access Administrator hold Microsoft.Authorization/*;
	// Contributor's NotActions take Microsoft.Authorization/*/Write away
	// (REST spec: "Of the built-in roles, only Owner and User Access
	// Administrator are granted those actions").
	tenantID, err := rq.AuthorizeAt("Microsoft.Authorization/locks/write")
	if err != nil {
		return err
	}
	if err := h.lockScopeExists(rq); err != nil {
		return err
	}
	scope := rq.Path.Scope.String()
	rq.Target = scope + "/providers/" + lockType + "/" + rq.Path.Name
	rq.Detail = "level=" + level
	now := h.now().UTC()
	status := http.StatusCreated
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		if _, err := tx.GetManagementLock(rq.Ctx, scope, rq.Path.Name); err == nil {
			status = http.StatusOK
		} else if !errors.Is(err, store.ErrNotFound) {
			return rp.InternalError(err)
		}
		return tx.PutManagementLock(rq.Ctx, store.ManagementLock{TenantID: tenantID, SubscriptionID: rq.Path.Sub, Scope: scope, Name: rq.Path.Name,
			Level: level, Notes: body.Properties.Notes, Owners: owners, Created: now, Updated: now})
	})
	if err != nil {
		return err
	}
	l, err := h.st.GetManagementLock(rq.Ctx, scope, rq.Path.Name)
	if err != nil {
		return rp.InternalError(err)
	}
	return rp.WriteJSON(rq, status, lockViewOf(l))
}

// deleteLock removes a lock: 200, or 204 when there was none (the REST
// spec's two answers).
func (h *Handler) deleteLock(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt("Microsoft.Authorization/locks/delete")
	if err != nil {
		return err
	}
	scope := rq.Path.Scope.String()
	rq.Target = scope + "/providers/" + lockType + "/" + rq.Path.Name
	return rq.DeleteAndWrite(tenantID, func(tx store.Store, _ *directory.Service) error {
		if err := tx.DeleteManagementLock(rq.Ctx, scope, rq.Path.Name); errors.Is(err, store.ErrNotFound) {
			return rp.ErrNothingToDo
		} else if err != nil {
			return rp.InternalError(err)
		}
		return nil
	})
}

// readActions are the POST actions that change nothing and hand out no
// secret, which a ReadOnly lock lets through. Every other POST is a write
// to the lock: Azure counts listKeys as one (a ReadOnly storage account
// refuses its listKeys, lock-resources: "A read-only lock on a storage
// account prevents users from listing the account keys";
// Azure/azure-rest-api-specs#6363), so Service Bus listKeys and
// regenerateKeys are refused, as are register/unregister and a
// deployment's cancel. listTokens reads a token of the managed
// application's identity, as a GET would (Microsoft.Solutions/
// applications/listTokens/action is a read in Azure's lock evaluation);
// a deployment's validate and exportTemplate write nothing.
var readActions = map[string]bool{
	"listtokens":            true,
	"validate":              true,
	"exporttemplate":        true,
	"checknameavailability": true,
}

// checkLocks refuses with 409 ScopeLocked a request that a lock at or
// above its scope forbids (for a delete, also a lock below it: deleting
// the scope would delete the locked resource). The locks themselves are
// not locked, or no lock could be removed.
func (h *Handler) checkLocks(rq *rp.Request) error {
	m := rq.R.Method
	if m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || rq.Path.Target == targetLocks || rq.Path.Sub == "" {
		return nil
	}
	scope := requestScope(rq.R.URL.Path)
	if m == http.MethodPost {
		action := scope[strings.LastIndex(scope, "/")+1:]
		if readActions[strings.ToLower(action)] {
			return nil
		}
		scope = scope[:strings.LastIndex(scope, "/")]
	}
	all, err := h.st.ListManagementLocks(rq.Ctx, rq.Path.Sub)
	if err != nil {
		return rp.InternalError(err)
	}
	isDelete := m == http.MethodDelete
	key := strings.ToLower(scope)
	var locked []string
	for _, l := range all {
		lk := strings.ToLower(l.Scope)
		applies := underOrAt(key, lk) && (isDelete || l.Level == lockReadOnly)
		if isDelete && underOrAt(lk, key) {
			applies = true
		}
		if applies && !containsFold(locked, l.Scope) {
			locked = append(locked, l.Scope)
		}
	}
	if len(locked) == 0 {
		return nil
	}
	// A lock is its owner's business: a caller the scope's tenant does not
	// admit learns of none.
	if _, err := h.scopeTenant(rq); err != nil {
		return err
	}
	op := "write"
	if isDelete {
		op = "delete"
	}
	return rp.NewError(http.StatusConflict, "ScopeLocked",
		"The scope '%s' cannot perform %s operation because following scope(s) are locked: '%s'. Please remove the lock and try again.",
		rp.SafeText(scope), op, rp.SafeText(strings.Join(locked, "','")))
}

// requestScope is the resource id a request path names: without a
// trailing slash, with the leading "//" of a joined id taken as one.
func requestScope(p string) string {
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if strings.HasPrefix(p, "//") {
		p = p[1:]
	}
	return p
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// deleteGroupLocks removes, inside tx, the locks at group g and below it
// when the group goes (the group's own delete has checked that none
// forbids it; a managed application's managed group goes with its
// application), so that no lock outlives its scope and locks a group
// made later under the same name.
func deleteGroupLocks(rq *rp.Request, tx store.Store, g store.ResourceGroup) error {
	all, err := tx.ListManagementLocks(rq.Ctx, g.SubscriptionID)
	if err != nil {
		return rp.InternalError(err)
	}
	group := strings.ToLower("/subscriptions/" + g.SubscriptionID + "/resourceGroups/" + g.Name)
	for _, l := range all {
		if !underOrAt(strings.ToLower(l.Scope), group) {
			continue
		}
		if err := tx.DeleteManagementLock(rq.Ctx, l.Scope, l.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return rp.InternalError(err)
		}
	}
	return nil
}
