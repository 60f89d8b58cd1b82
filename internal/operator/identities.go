package operator

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Managed identities and workloads: tenantbridge's own control plane for
// them. A user-assigned identity is a service principal of type
// ManagedIdentity; a workload is what runs as identities (its own
// system-assigned one and any user-assigned ones) and proves it with its
// identity header at the managed-identity endpoint.

var (
	identityNotFound = notFound{"IdentityNotFound", "User-assigned identity"}
	workloadNotFound = notFound{"WorkloadNotFound", "Workload"}
)

// IdentityView is a user-assigned managed identity as the operator API
// shows it: the names Azure gives it (clientId for the identity endpoint's
// client_id and AZURE_CLIENT_ID, principalId for role assignments).
type IdentityView struct {
	Name          string    `json:"name"`
	ResourceGroup string    `json:"resourceGroup"`
	ClientID      string    `json:"clientId"`
	PrincipalID   string    `json:"principalId"`
	TenantID      string    `json:"tenantId"`
	ResourceID    string    `json:"resourceId"`
	Created       time.Time `json:"created,omitzero"`
}

// WorkloadIdentityView is one identity a workload runs as.
type WorkloadIdentityView struct {
	Name        string `json:"name,omitempty"`
	ClientID    string `json:"clientId"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId,omitempty"`
}

// WorkloadView is a workload as the operator API shows it. IdentityHeader
// (the X-IDENTITY-HEADER value) appears only in the answers that create it:
// the workload's creation and rotateHeader. Only its hash is stored.
type WorkloadView struct {
	ID                     string                 `json:"id"`
	Name                   string                 `json:"name"`
	ResourceGroup          string                 `json:"resourceGroup"`
	TenantID               string                 `json:"tenantId"`
	ResourceID             string                 `json:"resourceId"`
	SystemAssignedIdentity *WorkloadIdentityView  `json:"systemAssignedIdentity,omitempty"`
	UserAssignedIdentities []WorkloadIdentityView `json:"userAssignedIdentities"`
	Created                time.Time              `json:"created,omitzero"`
	IdentityHeader         string                 `json:"identityHeader,omitempty"`
}

// resourceGroupOf reads the resource group from an ARM resource id.
func resourceGroupOf(resourceID string) string {
	parts := strings.Split(resourceID, "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], "resourceGroups") {
			return parts[i+1]
		}
	}
	return ""
}

func identityViewOf(sp *directory.ServicePrincipal) IdentityView {
	rid := sp.ManagedIdentityResourceID()
	return IdentityView{Name: sp.DisplayName, ResourceGroup: resourceGroupOf(rid), ClientID: sp.AppID, PrincipalID: sp.ID,
		TenantID: sp.TenantID, ResourceID: rid, Created: sp.CreatedDateTime}
}

// tenantOf resolves the {tenant} of the path; on failure it has answered.
// Microsoft's own tenant holds the first-party applications and is not the
// operator's to change.
func (a *API) tenantOf(w http.ResponseWriter, r *http.Request, action string) (store.Tenant, bool) {
	ref := r.PathValue("tenant")
	t, err := a.dir.Tenant(r.Context(), ref)
	if err == nil && t.ID == directory.MicrosoftTenantID {
		err = directory.ErrNotFound
	}
	if err != nil {
		a.fail(w, r, action, ref, err)
		return t, false
	}
	return t, true
}

// userAssigned finds a user-assigned identity of the tenant by name, client
// id, principal id or resource id. A system-assigned identity is not one:
// it lives and dies with its workload.
func (a *API) userAssigned(r *http.Request, tenantID, ref string) (*directory.ServicePrincipal, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, directory.ErrNotFound
	}
	sp, err := a.dir.ManagedIdentity(r.Context(), tenantID, ref)
	if err != nil {
		return nil, err
	}
	if !sp.IsUserAssigned() {
		return nil, directory.ErrNotFound
	}
	return sp, nil
}

func (a *API) createIdentity(w http.ResponseWriter, r *http.Request) {
	const action = "managedIdentity.create"
	t, ok := a.tenantOf(w, r, action)
	if !ok {
		return
	}
	var req struct {
		Name          string `json:"name"`
		ResourceGroup string `json:"resourceGroup"`
	}
	if err := httpx.ReadJSON(r, 4<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", err.Error())
		return
	}
	sp, err := a.dir.CreateUserAssignedIdentity(r.Context(), t.ID, req.ResourceGroup, req.Name)
	if err != nil {
		a.failIn(w, r, action, t.ID, req.Name, err, identityNotFound)
		return
	}
	if err := a.audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: action, TargetTenant: t.ID, Target: sp.ID,
		Result: audit.Success, Detail: sp.ManagedIdentityResourceID()}); err != nil {
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The identity was created but the audit record could not be written.")
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, identityViewOf(sp))
}

func (a *API) listIdentities(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r, "")
	if !ok {
		return
	}
	all, err := a.dir.ListManagedIdentities(r.Context(), t.ID)
	if err != nil {
		a.fail(w, r, "", t.ID, err)
		return
	}
	out := []IdentityView{}
	for _, sp := range all {
		if sp.IsUserAssigned() {
			out = append(out, identityViewOf(sp))
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (a *API) showIdentity(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r, "")
	if !ok {
		return
	}
	sp, err := a.userAssigned(r, t.ID, r.PathValue("ref"))
	if err != nil {
		a.failIn(w, r, "", t.ID, r.PathValue("ref"), err, identityNotFound)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, identityViewOf(sp))
}

func (a *API) deleteIdentity(w http.ResponseWriter, r *http.Request) {
	const action = "managedIdentity.delete"
	t, ok := a.tenantOf(w, r, action)
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	sp, err := a.userAssigned(r, t.ID, ref)
	if err == nil {
		err = a.dir.DeleteManagedIdentity(r.Context(), t.ID, sp.ID)
	}
	if err != nil {
		a.failIn(w, r, action, t.ID, ref, err, identityNotFound)
		return
	}
	if err := a.audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: action, TargetTenant: t.ID, Target: sp.ID,
		Result: audit.Success, Detail: sp.ManagedIdentityResourceID()}); err != nil {
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The identity was deleted but the audit record could not be written.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// workloadView shows w with its identities; one deleted since it was
// granted is left out, as the identity endpoint no longer issues for it.
func (a *API) workloadView(r *http.Request, wl *directory.Workload) (WorkloadView, error) {
	v := WorkloadView{ID: wl.ID, Name: wl.Name, ResourceGroup: resourceGroupOf(wl.ResourceID), TenantID: wl.TenantID,
		ResourceID: wl.ResourceID, UserAssignedIdentities: []WorkloadIdentityView{}, Created: wl.CreatedDateTime}
	get := func(id string) (*directory.ServicePrincipal, error) {
		sp, err := a.dir.GetServicePrincipal(r.Context(), wl.TenantID, id)
		if errors.Is(err, directory.ErrNotFound) {
			return nil, nil
		}
		return sp, err
	}
	if wl.SystemIdentityID != "" {
		sp, err := get(wl.SystemIdentityID)
		if err != nil {
			return v, err
		}
		if sp != nil {
			v.SystemAssignedIdentity = &WorkloadIdentityView{ClientID: sp.AppID, PrincipalID: sp.ID}
		}
	}
	for _, id := range wl.UserIdentityIDs {
		sp, err := get(id)
		if err != nil {
			return v, err
		}
		if sp != nil {
			v.UserAssignedIdentities = append(v.UserAssignedIdentities, WorkloadIdentityView{Name: sp.DisplayName,
				ClientID: sp.AppID, PrincipalID: sp.ID, ResourceID: sp.ManagedIdentityResourceID()})
		}
	}
	return v, nil
}

func (a *API) createWorkload(w http.ResponseWriter, r *http.Request) {
	const action = "workload.create"
	t, ok := a.tenantOf(w, r, action)
	if !ok {
		return
	}
	var req struct {
		Name           string   `json:"name"`
		ResourceGroup  string   `json:"resourceGroup"`
		SystemAssigned bool     `json:"systemAssigned"`
		Identities     []string `json:"identities"`
	}
	if err := httpx.ReadJSON(r, 16<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", err.Error())
		return
	}
	if len(req.Identities) > 64 {
		writeError(w, http.StatusBadRequest, "InvalidParameter", "A workload may run as at most 64 user-assigned identities.")
		return
	}
	wl, header, err := a.dir.CreateWorkload(r.Context(), t.ID, req.ResourceGroup, req.Name, req.SystemAssigned, req.Identities)
	if err != nil {
		a.failIn(w, r, action, t.ID, req.Name, err, workloadNotFound)
		return
	}
	if err := a.audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: action, TargetTenant: t.ID, Target: wl.ID,
		Result: audit.Success, Detail: wl.ResourceID}); err != nil {
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The workload was created but the audit record could not be written.")
		return
	}
	v, err := a.workloadView(r, wl)
	if err != nil {
		a.fail(w, r, "", t.ID, err)
		return
	}
	v.IdentityHeader = header
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, v)
}

func (a *API) listWorkloads(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r, "")
	if !ok {
		return
	}
	wls, err := a.dir.ListWorkloads(r.Context(), t.ID)
	if err != nil {
		a.fail(w, r, "", t.ID, err)
		return
	}
	out := make([]WorkloadView, 0, len(wls))
	for _, wl := range wls {
		v, err := a.workloadView(r, wl)
		if err != nil {
			a.fail(w, r, "", t.ID, err)
			return
		}
		out = append(out, v)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (a *API) showWorkload(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r, "")
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	wl, err := a.dir.GetWorkload(r.Context(), t.ID, ref)
	if err != nil {
		a.failIn(w, r, "", t.ID, ref, err, workloadNotFound)
		return
	}
	v, err := a.workloadView(r, wl)
	if err != nil {
		a.fail(w, r, "", t.ID, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (a *API) deleteWorkload(w http.ResponseWriter, r *http.Request) {
	const action = "workload.delete"
	t, ok := a.tenantOf(w, r, action)
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	wl, err := a.dir.GetWorkload(r.Context(), t.ID, ref)
	if err == nil {
		err = a.dir.DeleteWorkload(r.Context(), t.ID, wl.ID)
	}
	if err != nil {
		a.failIn(w, r, action, t.ID, ref, err, workloadNotFound)
		return
	}
	if err := a.audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: action, TargetTenant: t.ID, Target: wl.ID,
		Result: audit.Success, Detail: wl.ResourceID}); err != nil {
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The workload was deleted but the audit record could not be written.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateWorkloadHeader replaces the identity header; the old one stops
// working at once. The answer is {"identityHeader": "..."}, shown only here.
func (a *API) rotateWorkloadHeader(w http.ResponseWriter, r *http.Request) {
	const action = "workload.rotateHeader"
	t, ok := a.tenantOf(w, r, action)
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	wl, err := a.dir.GetWorkload(r.Context(), t.ID, ref)
	var header string
	if err == nil {
		header, err = a.dir.RotateWorkloadHeader(r.Context(), t.ID, wl.ID)
	}
	if err != nil {
		a.failIn(w, r, action, t.ID, ref, err, workloadNotFound)
		return
	}
	if err := a.audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: action, TargetTenant: t.ID, Target: wl.ID,
		Result: audit.Success}); err != nil {
		// The header changed; the caller must learn that the old one is gone.
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The identity header was rotated but the audit record could not be written; rotate it again.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"identityHeader": header})
}
