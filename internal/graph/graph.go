// Package graph is a Microsoft Graph v1.0-compatible API over the directory:
// applications, service principals and their credentials, federated
// identity credentials, users, groups, memberships, owners and app role
// assignments, in Graph's own JSON shapes, status codes and OData errors,
// so that Graph SDKs and tools work against it unchanged.
//
// The package only translates. Every rule (what is valid, what is unique,
// who may be a member) is the directory's; this package decides who may
// call what (auth.go), speaks the wire format (views.go, query.go, path.go,
// errors.go) and records every change in the audit log.
//
// Every change is made in one transaction together with its audit record
// (see Handler.change): if the record cannot be written the change is
// rolled back and the request fails with 500, so a change is never stored
// without the record that it happened.
package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maxBody is the largest request body accepted: far above any Graph
// object, small enough that a hostile client costs little.
const maxBody = 1 << 20

// Config holds the Graph surface's dependencies; all are required.
type Config struct {
	Directory *directory.Service
	Verifier  TokenVerifier
	// Audit records refusals. Successful changes are recorded through the
	// directory's store inside the change's own transaction (see the
	// package doc), so Audit must write to that same store.
	Audit  *audit.Log
	Logger *slog.Logger // default: discard
}

// Handler serves the Graph API under /v1.0/. It is safe for concurrent use.
type Handler struct {
	dir      *directory.Service
	verifier TokenVerifier
	audit    *audit.Log
	log      *slog.Logger
	mux      *http.ServeMux
}

// New returns the Graph handler. A missing dependency panics at wiring
// time: a Graph that cannot check tokens or record changes must not start.
func New(cfg Config) *Handler {
	if cfg.Directory == nil || cfg.Verifier == nil || cfg.Audit == nil {
		panic("graph: Config needs Directory, Verifier and Audit")
	}
	h := &Handler{dir: cfg.Directory, verifier: cfg.Verifier, audit: cfg.Audit, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.mux = h.buildMux(h.routes())
	return h
}

// route is one endpoint: its ServeMux pattern, what it acts on and how
// (the key into permissionTable), the name its audit records carry, and
// the function that serves it.
type route struct {
	pattern string
	kind    resourceKind
	verb    verb
	action  string
	serve   func(*request) error
}

// routes lists every endpoint. Paths are the canonical form parsePath
// produces: (appId='…') has become a plain {id} segment.
func (h *Handler) routes() []route {
	return []route{
		{"GET /v1.0/applications", kindApplications, read, "application.list", h.listApplications},
		{"GET /v1.0/applications/$count", kindApplications, read, "application.count", h.listApplications},
		{"POST /v1.0/applications", kindApplications, write, "application.create", h.createApplication},
		{"GET /v1.0/applications/{id}", kindApplications, read, "application.get", h.getApplication},
		{"PATCH /v1.0/applications/{id}", kindApplications, write, "application.update", h.updateApplication},
		{"DELETE /v1.0/applications/{id}", kindApplications, write, "application.delete", h.deleteApplication},
		{"POST /v1.0/applications/{id}/addPassword", kindApplications, write, "application.addPassword", h.addApplicationPassword},
		{"POST /v1.0/applications/{id}/removePassword", kindApplications, write, "application.removePassword", h.removeApplicationCredential((*directory.Service).RemoveApplicationPassword, false)},
		{"POST /v1.0/applications/{id}/addKey", kindApplications, write, "application.addKey", h.addApplicationKey},
		{"POST /v1.0/applications/{id}/removeKey", kindApplications, write, "application.removeKey", h.removeApplicationCredential((*directory.Service).RemoveApplicationKey, true)},
		{"GET /v1.0/applications/{id}/federatedIdentityCredentials", kindApplications, read, "application.federatedIdentityCredential.list", h.listFederatedCredentials},
		{"POST /v1.0/applications/{id}/federatedIdentityCredentials", kindApplications, write, "application.federatedIdentityCredential.create", h.createFederatedCredential},
		{"GET /v1.0/applications/{id}/federatedIdentityCredentials/{ref}", kindApplications, read, "application.federatedIdentityCredential.get", h.getFederatedCredential},
		{"PATCH /v1.0/applications/{id}/federatedIdentityCredentials/{ref}", kindApplications, write, "application.federatedIdentityCredential.update", h.updateFederatedCredential},
		{"DELETE /v1.0/applications/{id}/federatedIdentityCredentials/{ref}", kindApplications, write, "application.federatedIdentityCredential.delete", h.deleteFederatedCredential},
		{"GET /v1.0/applications/{id}/owners", kindApplications, read, "application.owner.list", h.ownersOf(h.applicationObject)},
		{"POST /v1.0/applications/{id}/owners/$ref", kindApplications, write, "application.owner.add", h.addOwner(h.applicationObject)},
		{"DELETE /v1.0/applications/{id}/owners/{ref}/$ref", kindApplications, write, "application.owner.remove", h.removeOwner(h.applicationObject)},

		{"GET /v1.0/servicePrincipals", kindServicePrincipals, read, "servicePrincipal.list", h.listServicePrincipals},
		{"GET /v1.0/servicePrincipals/$count", kindServicePrincipals, read, "servicePrincipal.count", h.listServicePrincipals},
		{"POST /v1.0/servicePrincipals", kindServicePrincipals, write, "servicePrincipal.create", h.createServicePrincipal},
		{"GET /v1.0/servicePrincipals/{id}", kindServicePrincipals, read, "servicePrincipal.get", h.getServicePrincipal},
		{"PATCH /v1.0/servicePrincipals/{id}", kindServicePrincipals, write, "servicePrincipal.update", h.updateServicePrincipal},
		{"DELETE /v1.0/servicePrincipals/{id}", kindServicePrincipals, write, "servicePrincipal.delete", h.deleteServicePrincipal},
		{"POST /v1.0/servicePrincipals/{id}/addPassword", kindServicePrincipals, write, "servicePrincipal.addPassword", h.addServicePrincipalPassword},
		{"POST /v1.0/servicePrincipals/{id}/removePassword", kindServicePrincipals, write, "servicePrincipal.removePassword", h.removeServicePrincipalPassword},
		{"GET /v1.0/servicePrincipals/{id}/owners", kindServicePrincipals, read, "servicePrincipal.owner.list", h.ownersOf(h.servicePrincipalObject)},
		{"POST /v1.0/servicePrincipals/{id}/owners/$ref", kindServicePrincipals, write, "servicePrincipal.owner.add", h.addOwner(h.servicePrincipalObject)},
		{"DELETE /v1.0/servicePrincipals/{id}/owners/{ref}/$ref", kindServicePrincipals, write, "servicePrincipal.owner.remove", h.removeOwner(h.servicePrincipalObject)},
		{"GET /v1.0/servicePrincipals/{id}/appRoleAssignments", kindAppRoleAssignments, read, "appRoleAssignment.list", h.listAssignments(byPrincipal)},
		{"POST /v1.0/servicePrincipals/{id}/appRoleAssignments", kindAppRoleAssignments, write, "appRoleAssignment.create", h.createAssignment(byPrincipal)},
		{"DELETE /v1.0/servicePrincipals/{id}/appRoleAssignments/{ref}", kindAppRoleAssignments, write, "appRoleAssignment.delete", h.deleteAssignment(byPrincipal)},
		{"GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo", kindAppRoleAssignments, read, "appRoleAssignment.list", h.listAssignments(byResource)},
		{"POST /v1.0/servicePrincipals/{id}/appRoleAssignedTo", kindAppRoleAssignments, write, "appRoleAssignment.create", h.createAssignment(byResource)},
		{"DELETE /v1.0/servicePrincipals/{id}/appRoleAssignedTo/{ref}", kindAppRoleAssignments, write, "appRoleAssignment.delete", h.deleteAssignment(byResource)},
		{"GET /v1.0/servicePrincipals/{id}/oauth2PermissionGrants", kindOAuth2PermissionGrants, read, "oauth2PermissionGrant.list", h.listServicePrincipalGrants},

		{"GET /v1.0/users", kindUsers, read, "user.list", h.listUsers},
		{"GET /v1.0/users/$count", kindUsers, read, "user.count", h.listUsers},
		{"POST /v1.0/users", kindUsers, write, "user.create", h.createUser},
		{"GET /v1.0/users/{id}", kindUsers, read, "user.get", h.getUser},
		{"PATCH /v1.0/users/{id}", kindUsers, write, "user.update", h.updateUser},
		{"DELETE /v1.0/users/{id}", kindUsers, write, "user.delete", h.deleteUser},
		{"GET /v1.0/users/{id}/appRoleAssignments", kindAppRoleAssignments, read, "appRoleAssignment.list", h.listUserAssignments},
		{"GET /v1.0/users/{id}/memberOf", kindUserMemberships, read, "user.memberOf", h.listMemberOf},
		{"GET /v1.0/users/{id}/oauth2PermissionGrants", kindOAuth2PermissionGrants, read, "oauth2PermissionGrant.list", h.listUserGrants},

		{"GET /v1.0/groups", kindGroups, read, "group.list", h.listGroups},
		{"GET /v1.0/groups/$count", kindGroups, read, "group.count", h.listGroups},
		{"POST /v1.0/groups", kindGroups, write, "group.create", h.createGroup},
		{"GET /v1.0/groups/{id}", kindGroups, read, "group.get", h.getGroup},
		{"PATCH /v1.0/groups/{id}", kindGroups, write, "group.update", h.updateGroup},
		{"DELETE /v1.0/groups/{id}", kindGroups, write, "group.delete", h.deleteGroup},
		{"GET /v1.0/groups/{id}/members", kindGroupMembers, read, "group.member.list", h.listMembers(false)},
		{"GET /v1.0/groups/{id}/transitiveMembers", kindGroupMembers, read, "group.member.list", h.listMembers(true)},
		{"POST /v1.0/groups/{id}/members/$ref", kindGroupMembers, write, "group.member.add", h.addMember},
		{"DELETE /v1.0/groups/{id}/members/{ref}/$ref", kindGroupMembers, write, "group.member.remove", h.removeMember},
		{"GET /v1.0/groups/{id}/owners", kindGroups, read, "group.owner.list", h.ownersOf(h.groupObject)},
		{"POST /v1.0/groups/{id}/owners/$ref", kindGroups, write, "group.owner.add", h.addOwner(h.groupObject)},
		{"DELETE /v1.0/groups/{id}/owners/{ref}/$ref", kindGroups, write, "group.owner.remove", h.removeOwner(h.groupObject)},

		{"GET /v1.0/me", kindMe, read, "user.me", h.getMe},
		{"POST /v1.0/directoryObjects/getByIds", kindDirectoryObjects, read, "directoryObject.getByIds", h.getByIDs},
		{"GET /v1.0/users/{id}/authentication/methods", kindAuthMethods, read, "user.authenticationMethod.list", h.listAuthMethods},

		{"GET /v1.0/directoryRoles", kindDirectoryRoles, read, "directoryRole.list", h.listDirectoryRoles},
		{"POST /v1.0/directoryRoles", kindDirectoryRoles, write, "directoryRole.activate", h.activateDirectoryRole},
		{"GET /v1.0/directoryRoles/{id}", kindDirectoryRoles, read, "directoryRole.get", h.getDirectoryRole},
		{"GET /v1.0/directoryRoles/{id}/members", kindDirectoryRoles, read, "directoryRole.member.list", h.listDirectoryRoleMembers},
		{"POST /v1.0/directoryRoles/{id}/members/$ref", kindDirectoryRoles, write, "directoryRole.member.add", h.addDirectoryRoleMember},
		{"DELETE /v1.0/directoryRoles/{id}/members/{ref}/$ref", kindDirectoryRoles, write, "directoryRole.member.remove", h.removeDirectoryRoleMember},
		{"GET /v1.0/roleManagement/directory/roleDefinitions", kindDirectoryRoles, read, "roleDefinition.list", h.listRoleDefinitions},
		{"GET /v1.0/roleManagement/directory/roleDefinitions/{id}", kindDirectoryRoles, read, "roleDefinition.get", h.getRoleDefinition},
		{"GET /v1.0/roleManagement/directory/roleAssignments", kindDirectoryRoles, read, "roleAssignment.list", h.listRoleAssignments},
		{"POST /v1.0/roleManagement/directory/roleAssignments", kindDirectoryRoles, write, "roleAssignment.create", h.createRoleAssignment},
		{"GET /v1.0/roleManagement/directory/roleAssignments/{id}", kindDirectoryRoles, read, "roleAssignment.get", h.getRoleAssignment},
		{"DELETE /v1.0/roleManagement/directory/roleAssignments/{id}", kindDirectoryRoles, write, "roleAssignment.delete", h.deleteRoleAssignment},

		{"GET /v1.0/oauth2PermissionGrants", kindOAuth2PermissionGrants, read, "oauth2PermissionGrant.list", h.listGrants},
		{"POST /v1.0/oauth2PermissionGrants", kindOAuth2PermissionGrants, write, "oauth2PermissionGrant.create", h.createGrant},
		{"GET /v1.0/oauth2PermissionGrants/{id}", kindOAuth2PermissionGrants, read, "oauth2PermissionGrant.get", h.getGrant},
		{"PATCH /v1.0/oauth2PermissionGrants/{id}", kindOAuth2PermissionGrants, write, "oauth2PermissionGrant.update", h.updateGrant},
		{"DELETE /v1.0/oauth2PermissionGrants/{id}", kindOAuth2PermissionGrants, write, "oauth2PermissionGrant.delete", h.deleteGrant},
	}
}

// buildMux registers the routes, and for each path a method-less pattern
// that answers other methods with Graph's 405, and "/" for Graph's answer
// to a path it does not know; the mux's own plain-text 404 and 405 never
// reach a client.
func (h *Handler) buildMux(routes []route) *http.ServeMux {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		mux.Handle(rt.pattern, h.endpoint(rt))
		method, path, _ := strings.Cut(rt.pattern, " ")
		if _, seen := allowed[path]; !seen {
			paths = append(paths, path)
		}
		allowed[path] = append(allowed[path], method)
	}
	// The 405s are registered per method (not method-less), so that a
	// literal path such as /applications/$count may sit beside
	// /applications/{id}; ServeHTTP answers methods outside knownMethods.
	for _, path := range paths {
		methods := strings.Join(allowed[path], ", ")
		for _, m := range knownMethods {
			if slices.Contains(allowed[path], m) || (m == http.MethodHead && slices.Contains(allowed[path], http.MethodGet)) {
				continue
			}
			mux.HandleFunc(m+" "+path, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Allow", methods)
				writeError(w, r, errMethodNotAllowed)
			})
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		segs := strings.Split(r.URL.Path, "/")
		writeError(w, r, &graphError{status: http.StatusBadRequest, code: codeUnknownSegment,
			message: "Resource not found for the segment '" + safeText(segs[len(segs)-1]) + "'."})
	})
	return mux
}

// knownMethods are the methods routed; any other gets Graph's 405 before routing.
var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect}

var errMethodNotAllowed = &graphError{status: http.StatusMethodNotAllowed, code: codeBadRequest,
	message: "Specified HTTP method is not allowed for the request uri."}

// selfService are the actions an application may take on its own
// registration without any Graph permission.
var selfService = map[string]bool{"application.addKey": true, "application.removeKey": true}

// routedKey carries what ServeHTTP parsed to the endpoint.
type routedKey struct{}

type routed struct {
	path     graphPath
	original string // the escaped path as the client sent it
}

// ServeHTTP gives the request an id (unless the front door did), echoes the
// client's, rewrites Graph's key syntax into plain segments and routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	info := httpx.InfoFrom(ctx)
	if info.RequestID == "" {
		info.RequestID = uuid.NewString()
		ctx = httpx.WithInfo(ctx, info)
	}
	w.Header().Set("request-id", info.RequestID)
	clientID := r.Header.Get("client-request-id")
	if clientID == "" || len(clientID) > 128 || strings.ContainsFunc(clientID, func(c rune) bool { return c < 0x20 || c > 0x7e }) {
		clientID = info.RequestID // what Graph does without a usable one
	}
	w.Header().Set("client-request-id", clientID)
	w.Header().Set("OData-Version", "4.0")
	defer func() {
		if v := recover(); v != nil {
			h.log.ErrorContext(ctx, "graph: panic", "panic", v, "stack", string(debug.Stack()))
			writeError(w, r.WithContext(ctx), internalError(nil))
		}
	}()

	if !slices.Contains(knownMethods, r.Method) {
		writeError(w, r.WithContext(ctx), errMethodNotAllowed)
		return
	}
	original := r.URL.EscapedPath()
	p, err := parsePath(original)
	if err != nil {
		writeError(w, r.WithContext(ctx), badRequest("The request URI is not valid."))
		return
	}
	r2 := r.Clone(context.WithValue(ctx, routedKey{}, routed{path: p, original: original}))
	r2.URL.Path = apiVersion + "/" + strings.Join(p.segments, "/")
	r2.URL.RawPath = p.canonical()
	h.mux.ServeHTTP(w, r2)
}

// request is one authorized call, as handlers see it.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	caller caller
	access access // full or ownedOnly; never denied
	action string
	path   graphPath
	// originalPath is the escaped path as the client sent it (with its
	// key syntax), so that a nextLink asks for the same thing.
	originalPath string
	// target is the id of the object acted on, once a handler knows it,
	// for the audit record and 404 messages.
	target string
	// detail adds to the audit record what else the change was about,
	// e.g. the owner added; never secret.
	detail string
}

func (rq *request) tenant() string { return rq.caller.tenantID }

// pathID is a path wildcard's value ({id} or {ref}).
func (rq *request) pathID(name string) string { return rq.r.PathValue(name) }

// endpoint wraps a route's handler with authentication, the permission
// check, error translation and the audit of refusals and failed changes.
func (h *Handler) endpoint(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, gerr := h.authenticate(r)
		if gerr != nil {
			writeError(w, r, gerr)
			return
		}
		rd, _ := r.Context().Value(routedKey{}).(routed)
		rq := &request{w: w, r: r, ctx: r.Context(), caller: c, action: rt.action, path: rd.path,
			originalPath: rd.original, target: r.PathValue("id")}
		var err error
		rq.access, err = h.principalAccess(r.Context(), c, rt.kind, rt.verb, decide(c.claims, rt.kind, rt.verb))
		if err == nil && rq.access == denied && selfService[rt.action] && c.claims.IsAppOnly() {
			// "An application does not need any specific permission to
			// roll its own keys." (application-addkey, application-removekey)
			rq.access = selfOnly
		}
		if err != nil {
			rq.access = denied
		} else if rq.access == denied {
			err = errDenied
		} else {
			err = rt.serve(rq)
		}
		if err == nil {
			return
		}
		ge := toGraphError(err, rq.target)
		if ge.status >= 500 {
			h.log.ErrorContext(rq.ctx, "graph: request failed", "action", rt.action, "err", err)
		}
		if ge.status == http.StatusForbidden || rt.verb == write {
			h.recordRefusal(rq, ge.code)
		}
		writeError(w, r, ge)
	})
}

// change makes a change and its audit record in one transaction. fn does
// the change with tx (and every check it depends on, so that they see the
// same data) and returns the id of the object changed. If the record
// cannot be written, nothing is stored and the request fails with 500.
func (h *Handler) change(rq *request, fn func(tx *directory.Service) (target string, err error)) error {
	return h.dir.InTx(rq.ctx, func(tx *directory.Service) error {
		target, err := fn(tx)
		if err != nil {
			return err
		}
		rq.target = target
		rec := h.auditRecord(rq, audit.Success)
		if err := audit.New(tx.Store(), h.log).Record(rq.ctx, rec); err != nil {
			return errAuditFailed(err)
		}
		return nil
	})
}

// recordRefusal records a refused or failed attempt. Nothing was changed,
// so a record that cannot be written is logged (by audit.Log) and the
// caller still gets the refusal.
func (h *Handler) recordRefusal(rq *request, code string) {
	_ = h.audit.Record(rq.ctx, h.auditRecord(rq, code))
}

func (h *Handler) auditRecord(rq *request, result string) store.AuditRecord {
	return store.AuditRecord{
		Actor:        rq.caller.objectID,
		ActorTenant:  rq.caller.homeTenant,
		TargetTenant: rq.caller.tenantID,
		Action:       rq.action,
		Target:       rq.target,
		Result:       result,
		Detail:       strings.TrimSpace("appid=" + rq.caller.claims.ClientID() + " " + rq.detail),
	}
}

// ---- responses ----

// contextURL is the @odata.context of a response: BASE/v1.0/$metadata#SET,
// with the selected properties in parentheses and /$entity for one object.
func contextURL(rq *request, set string, sel []string, single bool) string {
	u := httpx.BaseURL(rq.r) + apiVersion + "/$metadata#" + set
	if len(sel) > 0 {
		u += "(" + strings.Join(sel, ",") + ")"
	}
	if single {
		u += "/$entity"
	}
	return u
}

// writeEntity sends one object.
func (h *Handler) writeEntity(rq *request, status int, set string, sel []string, view any) error {
	e, err := toMap(view)
	if err != nil {
		return internalError(err)
	}
	e = e.project(sel).annotate("@odata.context", contextURL(rq, set, sel, true))
	httpx.WriteJSON(rq.w, status, e)
	return nil
}

// writeValue sends a result that is not an entity of a set, such as the
// credential addPassword returns, under the @odata.context of its type.
func (h *Handler) writeValue(rq *request, typeName string, view any) error {
	e, err := toMap(view)
	if err != nil {
		return internalError(err)
	}
	e.annotate("@odata.context", httpx.BaseURL(rq.r)+apiVersion+"/$metadata#"+typeName)
	httpx.WriteJSON(rq.w, http.StatusOK, e)
	return nil
}

// page is one page of a collection: its items, in id order, whether more
// follow, and the id the next page starts after.
type page struct {
	items []entity
	more  bool
	last  string
	// lastKey is the last item's sort key in a sorted collection.
	lastKey string
	count   *int // @odata.count, when asked for
}

func (p *page) add(id string, view any) error {
	e, err := toMap(view)
	if err != nil {
		return internalError(err)
	}
	p.items = append(p.items, e)
	p.last = id
	return nil
}

// collectionBody is Graph's collection response.
type collectionBody struct {
	Context  string   `json:"@odata.context"`
	Count    *int     `json:"@odata.count,omitempty"`
	NextLink string   `json:"@odata.nextLink,omitempty"`
	Value    []entity `json:"value"`
}

// writeCollection sends a page, with @odata.nextLink when more follow: an
// absolute URL of the same request with the cursor of the next page.
func (h *Handler) writeCollection(rq *request, set string, opts queryOptions, p page) error {
	body := collectionBody{Context: contextURL(rq, set, opts.sel, false), Count: p.count, Value: []entity{}}
	for _, e := range p.items {
		body.Value = append(body.Value, e.project(opts.sel))
	}
	if p.more && p.last != "" {
		body.NextLink = httpx.BaseURL(rq.r) + rq.originalPath + "?" + opts.nextLinkQuery(p.last, p.lastKey)
	}
	httpx.WriteJSON(rq.w, http.StatusOK, body)
	return nil
}

// noContent answers a change that returns nothing.
func noContent(rq *request) error {
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// readBody reads a JSON request body with httpx.ReadJSON's rules (JSON
// content type, 1 MiB, one well-formed value) and returns its bytes for
// decodeBody. allowEmpty accepts a request with no body at all.
func readBody(rq *request, allowEmpty bool) ([]byte, error) {
	if allowEmpty && rq.r.ContentLength == 0 {
		return nil, nil
	}
	var raw json.RawMessage
	if err := httpx.ReadJSON(rq.r, maxBody, &raw); err != nil {
		if err == httpx.ErrBodyTooLarge {
			return nil, &graphError{status: http.StatusRequestEntityTooLarge, code: codeBadRequest, message: "The request body is too large."}
		}
		return nil, badRequest("%s", err.Error())
	}
	return raw, nil
}

// listCollection answers a collection GET the same way for every object
// type: the query options and Graph's rules on advanced queries, for an
// owned-only caller (Application.ReadWrite.OwnedBy) just the objects it
// owns, the filter and search evaluated on each object's Graph view, one
// item more than the page to know whether another follows, @odata.count
// when asked for, and the collection with its nextLink.
func listCollection[T any](h *Handler, rq *request, name string, spec querySpec, ownedOnly bool,
	list func(directory.Query) ([]T, error), view func(T) (id string, v any)) error {
	if segs := rq.path.segments; len(segs) > 0 && segs[len(segs)-1] == "$count" {
		return countCollection(h, rq, spec, ownedOnly, list, view)
	}
	opts, err := parseQuery(rq.r.URL.RawQuery, spec)
	if err != nil {
		return err
	}
	if err := opts.applyAdvanced(rq.r.Header); err != nil {
		return err
	}
	var p page
	total := 0 // of a sorted collection, whose scan sees every match
	if opts.orderBy != "" {
		// Sorted: every match is scanned, and only the page after the
		// cursor (and one more) is kept (orderby.go).
		picker := sortedPicker{opts: opts}
		err = scanCollection(h, rq, opts, "", ownedOnly, list, view, func(id string, e entity) bool {
			total++
			picker.add(sortedItem{id: id, key: sortKey(e, opts.orderBy), e: e})
			return true
		})
		p = picker.page()
	} else {
		err = scanCollection(h, rq, opts, opts.after, ownedOnly, list, view, func(id string, e entity) bool {
			if len(p.items) == opts.top {
				p.more = true
				return false
			}
			p.items = append(p.items, e)
			p.last = id
			return true
		})
	}
	if err != nil {
		return err
	}
	if opts.count {
		if opts.orderBy == "" {
			// An id-ordered page stops early and starts at the cursor.
			err = scanCollection(h, rq, opts, "", ownedOnly, list, view, func(string, entity) bool { total++; return true })
			if err != nil {
				return err
			}
		}
		p.count = &total
	}
	return h.writeCollection(rq, name, opts, p)
}

// countCollection answers GET /{collection}/$count: the number of objects
// as text/plain. Counting directory objects is "only supported using the
// advanced queries parameters. If the ConsistencyLevel=eventual header is
// not specified, the request returns an error when the $count URL segment
// is used": 400 Request_BadRequest "$count is not currently supported."
// (https://learn.microsoft.com/graph/aad-advanced-queries).
func countCollection[T any](h *Handler, rq *request, spec querySpec, ownedOnly bool,
	list func(directory.Query) ([]T, error), view func(T) (id string, v any)) error {
	if !eventual(rq.r.Header) {
		return badRequest("$count is not currently supported.")
	}
	opts, err := parseQuery(rq.r.URL.RawQuery, spec)
	if err != nil {
		return err
	}
	if opts.rawTop != "" || opts.after != "" || opts.rawSelect != "" || opts.rawCount != "" {
		return badRequest("Query options $top, $skiptoken, $select and $count do not apply to a $count segment.")
	}
	opts.count = true // the segment stands for $count=true
	if err := opts.applyAdvanced(rq.r.Header); err != nil {
		return err
	}
	n := 0
	if err := scanCollection(h, rq, opts, "", ownedOnly, list, view, func(string, entity) bool { n++; return true }); err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rq.w.WriteHeader(http.StatusOK)
	_, _ = rq.w.Write([]byte(strconv.Itoa(n)))
	return nil
}

// scanBatch is how many objects one store read takes while scanning a
// filtered or counted collection.
const scanBatch = 200

// scanCollection visits, in id order after the cursor, every object the
// options match (visit returns false to stop). The store is asked for what
// the filter's conjuncts let it narrow by; the whole filter and search are
// evaluated on each object's Graph view, so the answer is the same either
// way.
func scanCollection[T any](h *Handler, rq *request, opts queryOptions, after string, ownedOnly bool,
	list func(directory.Query) ([]T, error), view func(T) (id string, v any), visit func(id string, e entity) bool) error {
	q := directory.Query{After: after}
	if !opts.filter.pushDown(&q) {
		return nil
	}
	if ownedOnly {
		ok, err := h.ownedIDs(rq, &q)
		if err != nil || !ok {
			return err
		}
	}
	filtered := opts.filter != nil || opts.search != nil
	q.Limit = opts.top + 1
	if filtered || opts.count {
		q.Limit = max(q.Limit, scanBatch)
	}
	for {
		items, err := list(q)
		if err != nil {
			return err
		}
		for _, it := range items {
			id, v := view(it)
			e, err := toMap(v)
			if err != nil {
				return internalError(err)
			}
			if filtered {
				obj, err := decodeEntity(e)
				if err != nil {
					return internalError(err)
				}
				if !opts.matches(obj) {
					continue
				}
			}
			if !visit(id, e) {
				return nil
			}
		}
		if len(items) < q.Limit {
			return nil
		}
		q.After, _ = view(items[len(items)-1])
	}
}

// decodeEntity reads a view's properties into plain values for the filter.
func decodeEntity(e entity) (map[string]any, error) {
	out := make(map[string]any, len(e))
	for k, raw := range e {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// trimPage cuts a store result fetched with Limit top+1 down to top and
// reports whether there was more.
func trimPage[T any](items []T, top int) ([]T, bool) {
	if len(items) > top {
		return items[:top], true
	}
	return items, false
}

// pageOf pages an in-memory list (members, owners, assignments): sorted by
// id, after the cursor, at most top.
func pageOf[T any](items []T, id func(T) string, opts queryOptions) ([]T, bool) {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	if opts.after != "" {
		items = slices.DeleteFunc(items, func(x T) bool { return id(x) <= opts.after })
	}
	return trimPage(items, opts.top)
}
