package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// edgeView is one edge as the page shows it.
type edgeView struct {
	Edge
	FromTenant string // the other side's tenant name (or cluster)
	InTenant   string // the tenant trusted into, by name
	CanRevoke  bool
}

// graphPage shows a tenant's trust graph: inbound (who of other tenants
// can do what here) or outbound (what this tenant's principals can do
// elsewhere).
func (h *Handler) graphPage(w http.ResponseWriter, r *http.Request, v *viewer, tenantID string) {
	ctx := r.Context()
	t, err := h.cfg.Directory.Tenant(ctx, tenantID)
	if errors.Is(err, directory.ErrNotFound) {
		h.message(w, http.StatusNotFound, "Not found", "There is no such page.")
		return
	} else if err != nil {
		h.serverError(w, r, err)
		return
	}
	view := r.URL.Query().Get("view")
	if view != "out" {
		view = "in"
	}
	var edges []Edge
	if view == "in" {
		edges, err = h.graph.Inbound(ctx, t.ID)
	} else {
		edges, err = h.graph.Outbound(ctx, t.ID)
	}
	truncated := errors.Is(err, ErrTruncated)
	if err != nil && !truncated {
		h.serverError(w, r, err)
		return
	}
	names := tenantNames{h: h, ctx: ctx, m: map[string]string{}}
	views := make([]edgeView, 0, len(edges))
	for _, e := range edges {
		ev := edgeView{Edge: e, FromTenant: names.of(e.From.TenantID, e.From.Cluster), InTenant: names.of(e.TenantID, "")}
		// Only the tenant trusted into (or the operator) revokes.
		ev.CanRevoke = e.Revocable() && v.sees(e.TenantID)
		views = append(views, ev)
	}
	d := pageData{Title: "Trust graph of " + t.Name, Viewer: v, Tenant: t, View: view, Edges: views, Truncated: truncated,
		SVG: drawGraph(t.Name, view, views), Notice: noticeOf(r.URL.Query().Get("done"))}
	h.render(w, http.StatusOK, "graph", d)
}

// noticeOf turns the revocation's redirect parameter into its notice.
func noticeOf(done string) string {
	if done == "revoked" {
		return "Revoked. The change took effect at once and is in both tenants' audit."
	}
	return ""
}

// tenantNames finds tenants' names, once each.
type tenantNames struct {
	h   *Handler
	ctx context.Context
	m   map[string]string
}

func (n tenantNames) of(id, cluster string) string {
	if id == "" {
		return cluster
	}
	if s, ok := n.m[id]; ok {
		return s
	}
	s := id
	if t, err := n.h.cfg.Directory.Tenant(n.ctx, id); err == nil {
		s = t.Name
	}
	n.m[id] = s
	return s
}

// revokePost revokes one edge of the tenant: it must be an edge the
// tenant's inbound graph shows now (so nothing else can be deleted
// through this form), and the viewer must be allowed to remove it as the
// API would allow them.
func (h *Handler) revokePost(w http.ResponseWriter, r *http.Request, v *viewer, tenantID string) {
	ctx := r.Context()
	ref := r.PostForm.Get("edge")
	edges, err := h.graph.Inbound(ctx, tenantID)
	if err != nil && !errors.Is(err, ErrTruncated) {
		h.serverError(w, r, err)
		return
	}
	i := slices.IndexFunc(edges, func(e Edge) bool { return e.Ref() == ref })
	if i < 0 || !edges[i].Revocable() {
		h.record(ctx, v, tenantID, "console.revoke", ref, "NotFound", "no such edge")
		h.message(w, http.StatusNotFound, "Not found", "That trust no longer exists, or cannot be revoked here.")
		return
	}
	e := edges[i]
	if err := h.revoke(ctx, v, e); err != nil {
		var refused *refusal
		if errors.As(err, &refused) {
			h.record(ctx, v, tenantID, "console.revoke", e.ObjectID, "AuthorizationFailed", refused.msg)
			h.message(w, http.StatusForbidden, "Not allowed", refused.msg)
			return
		}
		if errors.Is(err, directory.ErrNotFound) || errors.Is(err, arm.ErrRoleAssignmentNotFound) {
			h.message(w, http.StatusNotFound, "Not found", "That trust no longer exists.")
			return
		}
		h.serverError(w, r, err)
		return
	}
	q := url.Values{"done": {"revoked"}}
	http.Redirect(w, r, Prefix+"tenants/"+tenantID+"/graph?"+q.Encode(), http.StatusSeeOther)
}

// refusal is a revocation the viewer may not make.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

// revoke removes the edge through the service the API uses for it, with
// one audit record in the tenant trusted into and one in the trusted
// principal's home tenant, committed with the change.
func (h *Handler) revoke(ctx context.Context, v *viewer, e Edge) error {
	actor, home := "operator", ""
	if !v.Operator {
		actor, home = v.UserID, v.TenantID
	}
	detail := "console: " + string(e.Kind) + " of " + e.From.Name
	records := []store.AuditRecord{{Actor: actor, ActorTenant: home, TargetTenant: e.TenantID, Detail: detail}}
	if e.From.TenantID != "" && !strings.EqualFold(e.From.TenantID, e.TenantID) {
		records = append(records, store.AuditRecord{Actor: actor, ActorTenant: home, TargetTenant: e.From.TenantID,
			Detail: detail + " in tenant " + e.TenantID})
	}
	switch e.Kind {
	case EdgeRole, EdgeDelegation:
		if h.cfg.Roles == nil {
			return &refusal{"Role assignments cannot be revoked from this console."}
		}
		if !v.Operator {
			// As ARM would: the administrator needs the right to delete
			// role assignments at the assignment's scope (Global
			// Administrator is a directory role, not an Azure one).
			a, err := h.cfg.Store.GetRoleAssignment(ctx, e.TenantID, e.ObjectID)
			if err != nil {
				return err
			}
			if h.cfg.RBAC == nil {
				return &refusal{"Role assignments cannot be revoked from this console."}
			}
			d, err := h.cfg.RBAC.Decide(ctx, rbac.Request{PrincipalID: v.UserID, PrincipalTenantID: v.TenantID, TenantID: e.TenantID,
				Action: "Microsoft.Authorization/roleAssignments/delete", Scope: a.Scope})
			if err != nil {
				return err
			}
			if !d.Allowed {
				return &refusal{fmt.Sprintf("You may not delete role assignments at %s: %s.", a.Scope, d.Because.String())}
			}
		}
		_, err := h.cfg.Roles.RevokeRoleAssignment(ctx, e.TenantID, e.ObjectID, records...)
		return err
	}
	// Directory objects: the directory's own operations, as Graph calls
	// them, and their audit records, in one transaction.
	action, target := "", e.ObjectID
	return h.cfg.Directory.InTx(ctx, func(dir *directory.Service) error {
		var err error
		switch e.Kind {
		case EdgeServicePrincipal:
			action, err = "servicePrincipal.delete", dir.DeleteServicePrincipal(ctx, e.TenantID, e.ObjectID)
		case EdgeAppRole:
			action, err = "appRoleAssignment.delete", dir.RemoveAppRoleAssignment(ctx, e.TenantID, e.ObjectID)
		case EdgeGrant:
			action, err = "oauth2PermissionGrant.delete", dir.DeleteDelegatedGrant(ctx, e.TenantID, e.ObjectID)
		case EdgeFederated:
			target = e.ObjectID + "/federatedIdentityCredentials/" + e.CredentialID
			if strings.HasPrefix(e.Via, "application ") {
				action, err = "application.federatedCredential.delete", dir.RemoveFederatedCredential(ctx, e.TenantID, e.ObjectID, e.CredentialID)
			} else {
				action, err = "managedIdentity.federatedCredential.delete", dir.RemoveIdentityFederatedCredential(ctx, e.TenantID, e.ObjectID, e.CredentialID)
			}
		default:
			return &refusal{"This trust cannot be revoked from the console."}
		}
		if err != nil {
			return err
		}
		log := audit.New(dir.Store(), h.log)
		for _, rec := range records {
			rec.Action, rec.Target, rec.Result = action, target, audit.Success
			if err := log.Record(ctx, rec); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
		}
		return nil
	})
}
