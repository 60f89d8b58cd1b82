// Package rp is what a resource provider sees of Resource Manager's front
// door (package arm): the request the door has authenticated, and the
// door's services a provider's handlers use — authorization by the RBAC
// engine, changes made in one transaction with their audit record, ARM's
// error envelope, JSON bodies, paging with nextLink, and the generic
// resource records.
//
// A service (Key Vault, Service Bus, Managed Identity, Solutions) keeps its
// control plane in its own package, next to its data plane, and registers
// it with the door as a Provider: its namespace, its resource types (with
// their api-versions and locations, as GET /providers shows them), how its
// paths parse and the handler that serves them. The door imports no
// service; the server hands it the providers (arm.Config.Providers).
//
// This package is its own so that a service package and the door can
// import it without importing each other.
package rp

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// Door is the front door's side of a request: what package arm provides
// to the providers' handlers through the Request.
type Door interface {
	Store() store.Store
	Directory() *directory.Service
	Now() time.Time
	Logger() *slog.Logger
	// PageSize is how many items one page of a list holds.
	PageSize() int
	// ScopeTenant is the tenant that owns the request's scope, once it is
	// the token's (or the scope's tenant delegated to the caller).
	ScopeTenant(rq *Request) (string, error)
	// Decide asks the RBAC engine whether the caller may perform action
	// at scope.
	Decide(rq *Request, action, scope string) (rbac.Decision, error)
	// Change runs fn and the request's success audit record in one
	// transaction.
	Change(rq *Request, tenantID string, fn func(tx store.Store, dir *directory.Service) error) error
	// Record writes an audit record of the request with result.
	Record(rq *Request, tenantID, result string)
	// DeleteGroupResources deletes, inside tx, what every provider keeps
	// of group g outside the generic records (which the group's own
	// delete removes): vaults, identities.
	DeleteGroupResources(rq *Request, tx store.Store, dir *directory.Service, g store.ResourceGroup) error
}

// Request is one authenticated call to Resource Manager.
type Request struct {
	W    http.ResponseWriter
	R    *http.Request
	Ctx  context.Context
	Path Path
	// Claims are the verified bearer token's.
	Claims token.Claims
	// TenantID is the token's tenant (tid), the tenant acted in; OID the
	// caller's object id there; Home its home tenant (idp).
	TenantID, OID, Home string
	// CrossTenant is the tenant that owns the scope when it is not the
	// token's: a publisher's principal acting in a managed resource group
	// of its customer through a cross-tenant role assignment.
	CrossTenant string
	// Action, Target and Detail name the operation for the audit record.
	Action, Target, Detail string

	door Door
}

// NewRequest is a request the door serves with d.
func NewRequest(w http.ResponseWriter, r *http.Request, d Door) *Request {
	return &Request{W: w, R: r, Ctx: r.Context(), door: d}
}

// Background is a request with no HTTP exchange, for work a provider does
// inside a transaction on behalf of another request (a managed
// application's deployment): it carries only the context and the door.
func Background(ctx context.Context, d Door) *Request { return &Request{Ctx: ctx, door: d} }

// Door is the door the request came through.
func (rq *Request) Door() Door { return rq.door }

// Store is the door's store (the directory's).
func (rq *Request) Store() store.Store { return rq.door.Store() }

// Directory is the door's directory service.
func (rq *Request) Directory() *directory.Service { return rq.door.Directory() }

// Now is the door's clock.
func (rq *Request) Now() time.Time { return rq.door.Now() }

// Logger is the door's logger.
func (rq *Request) Logger() *slog.Logger { return rq.door.Logger() }

// Who names the caller in AuthorizationFailed: the UPN of a user, the
// application id of an application.
func (rq *Request) Who() string {
	if rq.Claims.UPN != "" {
		return rq.Claims.UPN
	}
	if rq.Claims.PreferredUsername != "" && !rq.Claims.IsAppOnly() {
		return rq.Claims.PreferredUsername
	}
	if id := rq.Claims.ClientID(); id != "" {
		return id
	}
	return rq.OID
}

// ScopeTenant is the tenant that owns the request's scope (Door.ScopeTenant).
func (rq *Request) ScopeTenant() (string, error) { return rq.door.ScopeTenant(rq) }

// Decide asks the RBAC engine whether the caller may perform action at scope.
func (rq *Request) Decide(action, scope string) (rbac.Decision, error) {
	return rq.door.Decide(rq, action, scope)
}

// Authorize refuses with AuthorizationFailed (or, when a deny assignment
// blocks, DenyAssignmentAuthorizationFailed) unless the caller may
// perform action at scope. It names the action for the audit record.
func (rq *Request) Authorize(action, scope string) error {
	rq.Action = action
	d, err := rq.Decide(action, scope)
	if err != nil {
		return err
	}
	if d.Allowed {
		return nil
	}
	rq.Detail = d.Because.String()
	if da := d.Because.Deny; da != nil {
		// Azure's refusal by a deny assignment (recorded responses, e.g.
		// of a managed application's managed resource group).
		return NewError(http.StatusForbidden, "DenyAssignmentAuthorizationFailed",
			"The client '%s' with object id '%s' has permission to perform action '%s' on scope '%s'; however, the access is denied because of the deny assignment with name '%s' and Id '%s' at scope '%s'.",
			SafeText(rq.Who()), rq.OID, action, SafeText(scope), SafeText(da.Name), da.ID, SafeText(da.Scope))
	}
	return NewError(http.StatusForbidden, "AuthorizationFailed",
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		SafeText(rq.Who()), rq.OID, action, SafeText(scope))
}

// AuthorizeAt returns the tenant that owns the path's subscription once
// the caller may perform action at the path's scope.
func (rq *Request) AuthorizeAt(action string) (string, error) {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return "", err
	}
	if err := rq.Authorize(action, rq.Path.Scope.String()); err != nil {
		return "", err
	}
	return tenantID, nil
}

// ListTenant starts a list of the path's group or subscription: the
// tenant that owns it, with action named for the audit record, or
// ResourceGroupNotFound.
func (rq *Request) ListTenant(action string) (string, error) {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return "", err
	}
	rq.Action = action
	if rq.Path.RG != "" {
		if _, err := PathGroup(rq, rq.Store()); err != nil {
			return "", err
		}
	}
	return tenantID, nil
}

// Change runs fn and the success audit record in one transaction; Target
// and Detail go into the record.
func (rq *Request) Change(tenantID string, fn func(tx store.Store, dir *directory.Service) error) error {
	return rq.door.Change(rq, tenantID, fn)
}

// Record writes an audit record of the request with result.
func (rq *Request) Record(tenantID, result string) { rq.door.Record(rq, tenantID, result) }

// DeleteGroupResources deletes, inside tx, what the providers keep of
// group g outside the generic records (Door.DeleteGroupResources).
func (rq *Request) DeleteGroupResources(tx store.Store, dir *directory.Service, g store.ResourceGroup) error {
	return rq.door.DeleteGroupResources(rq, tx, dir, g)
}

// LoginBase is the login authority for the host the request came in on:
// login.microsoftonline.com, or login.{domain} for management.{domain}.
func LoginBase(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	if d, ok := strings.CutPrefix(host, "management."); ok && d != "azure.com" && d != "" {
		return "https://login." + d
	}
	return "https://login.microsoftonline.com"
}
