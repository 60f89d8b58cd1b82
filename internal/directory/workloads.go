package directory

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Workload is a compute resource that runs as managed identities, as an App
// Service app or a VM does in Azure: it may have a system-assigned identity
// and any number of user-assigned ones. Its code reaches the identity
// endpoint with a secret header; that header is what binds a caller to the
// identities granted to the workload, and nothing else does.
type Workload struct {
	ID               string    `json:"id"`
	TenantID         string    `json:"-"`
	Name             string    `json:"name"`
	ResourceID       string    `json:"resourceId"`
	SystemIdentityID string    `json:"systemIdentityId,omitempty"` // service principal object id
	UserIdentityIDs  []string  `json:"userIdentityIds,omitempty"`  // service principal object ids
	HeaderHash       []byte    `json:"headerHash"`                 // keyed hash of the current header secret
	CreatedDateTime  time.Time `json:"createdDateTime"`
	Version          int64     `json:"-"`
}

func (w *Workload) keys() objectKeys {
	return objectKeys{store.KindWorkload, w.ID, "", w.Name, []string{w.Name, w.ResourceID}}
}
func (w *Workload) setMeta(t string, v int64) { w.TenantID, w.Version = t, v }
func (w *Workload) version() int64            { return w.Version }

// WorkloadResourceID is the resource id of a workload. Azure has many
// compute types; a workload stands for any of them.
func WorkloadResourceID(subscriptionID, resourceGroup, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/TenantBridge.Compute/workloads/%s", subscriptionID, resourceGroup, name)
}

// newWorkloadSecret returns a fresh 256-bit secret for an identity header.
// The header a workload presents is "<workload id>.<secret>", so that the
// endpoint finds the workload without an index of secrets; only a keyed
// hash of the secret is stored.
func newWorkloadSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreateWorkload creates a workload, with its own system-assigned identity
// when systemAssigned is set, running also as the given user-assigned
// identities (object ids, client ids, names or resource ids of the tenant).
// It returns the workload and its identity header, shown only here.
func (s *Service) CreateWorkload(ctx context.Context, tenantID, resourceGroup, name string, systemAssigned bool, userIdentities []string) (*Workload, string, error) {
	if resourceGroup == "" {
		resourceGroup = DefaultIdentityResourceGroup
	}
	if !resourceName.MatchString(name) || !resourceName.MatchString(resourceGroup) {
		return nil, "", invalidf("Workload and resource group names are 1 to 90 letters, digits, '.', '_', '-', '(' or ')'.")
	}
	if !systemAssigned && len(userIdentities) == 0 {
		return nil, "", invalidf("A workload needs a system-assigned identity or at least one user-assigned identity.")
	}
	var out *Workload
	var header string
	err := s.inTx(ctx, func(tx *Service) error {
		t, err := tx.st.GetTenant(ctx, tenantID)
		if err != nil {
			return err
		}
		w := &Workload{ID: newID(), Name: name, ResourceID: WorkloadResourceID(t.SubscriptionID, resourceGroup, name), CreatedDateTime: tx.Now()}
		for _, ref := range userIdentities {
			mi, err := tx.ManagedIdentity(ctx, tenantID, ref)
			if errors.Is(err, ErrNotFound) || (err == nil && !mi.IsUserAssigned()) {
				return invalidf("User-assigned identity %q was not found in the tenant.", ref)
			}
			if err != nil {
				return err
			}
			if !slices.Contains(w.UserIdentityIDs, mi.ID) {
				w.UserIdentityIDs = append(w.UserIdentityIDs, mi.ID)
			}
		}
		if systemAssigned {
			mi, err := tx.CreateSystemAssignedIdentity(ctx, tenantID, w.ResourceID, name)
			if err != nil {
				return err
			}
			w.SystemIdentityID = mi.ID
		}
		secret := newWorkloadSecret()
		header, w.HeaderHash = w.ID+"."+secret, tx.hashSecret(secret)
		if err := create(ctx, tx.st, tenantID, w); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflictf("A workload named %q already exists", name)
			}
			return err
		}
		out = w
		return nil
	})
	return out, header, err
}

// GetWorkload finds a workload by object id or name.
func (s *Service) GetWorkload(ctx context.Context, tenantID, ref string) (*Workload, error) {
	if w, err := get[Workload](ctx, s.st, tenantID, store.KindWorkload, ref); err == nil || !errors.Is(err, ErrNotFound) {
		return w, err
	}
	ws, err := list[Workload](ctx, s.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindWorkload, Name: ref, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, ErrNotFound
	}
	return ws[0], nil
}

// ListWorkloads lists a tenant's workloads.
func (s *Service) ListWorkloads(ctx context.Context, tenantID string) ([]*Workload, error) {
	return list[Workload](ctx, s.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindWorkload})
}

// RotateWorkloadHeader replaces a workload's identity header; the old one
// stops working at once.
func (s *Service) RotateWorkloadHeader(ctx context.Context, tenantID, ref string) (string, error) {
	w, err := s.GetWorkload(ctx, tenantID, ref)
	if err != nil {
		return "", err
	}
	secret := newWorkloadSecret()
	_, err = update[Workload](ctx, s.st, tenantID, store.KindWorkload, w.ID, func(w *Workload) error {
		w.HeaderHash = s.hashSecret(secret)
		return nil
	})
	return w.ID + "." + secret, err
}

// DeleteWorkload deletes a workload and its system-assigned identity.
func (s *Service) DeleteWorkload(ctx context.Context, tenantID, ref string) error {
	return s.inTx(ctx, func(tx *Service) error {
		w, err := tx.GetWorkload(ctx, tenantID, ref)
		if err != nil {
			return err
		}
		if w.SystemIdentityID != "" {
			if err := tx.st.DeleteObject(ctx, tenantID, store.KindServicePrincipal, w.SystemIdentityID); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		return tx.st.DeleteObject(ctx, tenantID, store.KindWorkload, w.ID)
	})
}

// ErrWorkloadHeader is a missing, malformed or wrong identity header.
var ErrWorkloadHeader = errors.New("directory: identity header is not valid")

// AuthenticateWorkload checks an identity header, in constant time, and
// returns the workload it belongs to.
func (s *Service) AuthenticateWorkload(ctx context.Context, tenantID, header string) (*Workload, error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(header), ".")
	if !ok || secret == "" {
		return nil, ErrWorkloadHeader
	}
	w, err := get[Workload](ctx, s.st, tenantID, store.KindWorkload, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrWorkloadHeader
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(s.hashSecret(secret), w.HeaderHash) != 1 {
		return nil, ErrWorkloadHeader
	}
	return w, nil
}

// IdentitySelector is how a request to the identity endpoint chooses among
// a workload's identities; at most one field is set. With none set the
// system-assigned identity is meant.
type IdentitySelector struct {
	ClientID   string
	ObjectID   string
	ResourceID string
}

// WorkloadIdentity returns the identity of the workload that sel names. An
// identity the workload was not given is not found, whatever the tenant holds.
func (s *Service) WorkloadIdentity(ctx context.Context, w *Workload, sel IdentitySelector) (*ServicePrincipal, error) {
	set := 0
	for _, v := range []string{sel.ClientID, sel.ObjectID, sel.ResourceID} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return nil, invalidf("Only one of client_id, object_id and mi_res_id may be given.")
	}
	if set == 0 {
		if w.SystemIdentityID == "" {
			return nil, invalidf("The workload has no system-assigned identity; name a user-assigned one with client_id, object_id or mi_res_id.")
		}
		return s.GetServicePrincipal(ctx, w.TenantID, w.SystemIdentityID)
	}
	allowed := append([]string{w.SystemIdentityID}, w.UserIdentityIDs...)
	for _, id := range allowed {
		if id == "" {
			continue
		}
		mi, err := s.GetServicePrincipal(ctx, w.TenantID, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since it was granted
		}
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(mi.AppID, sel.ClientID) || strings.EqualFold(mi.ID, sel.ObjectID) ||
			(sel.ResourceID != "" && strings.EqualFold(mi.ManagedIdentityResourceID(), sel.ResourceID)) {
			return mi, nil
		}
	}
	return nil, ErrNotFound
}
