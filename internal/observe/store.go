package observe

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Store returns st with its main calls timed into
// tenantbridge_store_operation_duration_seconds: transactions, the queue
// commits, audit appends, and the reads on the hot paths of tokens, RBAC,
// Key Vault and ARM. Every other call goes to st untimed (the embedded
// interface), so a method added to store.Store needs nothing here. A call
// inside InTx is part of the timed transaction and not timed again.
func (m *Metrics) Store(st store.Store) store.Store {
	t := &timedStore{Store: st}
	for op, h := range map[string]*prometheus.Observer{
		"InTx": &t.tx, "ApplyQueueOps": &t.queueOps, "AppendAudit": &t.audit, "GetTenant": &t.tenant,
		"GetObject": &t.object, "ListObjects": &t.objects, "ListRoleAssignments": &t.assignments,
		"ListDenyAssignments": &t.denies, "GetSecret": &t.secret, "CreateSecretVersion": &t.secretSet,
		"GetResource": &t.resource,
	} {
		*h = m.storeDuration.WithLabelValues(op)
	}
	return t
}

// timedStore is a store.Store that times some calls.
type timedStore struct {
	store.Store
	tx, queueOps, audit, tenant, object, objects, assignments, denies, secret, secretSet, resource prometheus.Observer
}

// since observes the time since start.
func since(h prometheus.Observer, start time.Time) { h.Observe(time.Since(start).Seconds()) }

func (t *timedStore) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	defer since(t.tx, time.Now())
	return t.Store.InTx(ctx, fn)
}

func (t *timedStore) ApplyQueueOps(ctx context.Context, now time.Time, ops []store.QueueOp) []store.QueueResult {
	defer since(t.queueOps, time.Now())
	return t.Store.ApplyQueueOps(ctx, now, ops)
}

func (t *timedStore) AppendAudit(ctx context.Context, r store.AuditRecord) (int64, error) {
	defer since(t.audit, time.Now())
	return t.Store.AppendAudit(ctx, r)
}

func (t *timedStore) AppendAudits(ctx context.Context, rs []store.AuditRecord) error {
	defer since(t.audit, time.Now())
	return t.Store.AppendAudits(ctx, rs)
}

func (t *timedStore) GetTenant(ctx context.Context, idOrDomain string) (store.Tenant, error) {
	defer since(t.tenant, time.Now())
	return t.Store.GetTenant(ctx, idOrDomain)
}

func (t *timedStore) GetObject(ctx context.Context, tenantID string, kind store.ObjectKind, id string) (store.Object, error) {
	defer since(t.object, time.Now())
	return t.Store.GetObject(ctx, tenantID, kind, id)
}

func (t *timedStore) ListObjects(ctx context.Context, q store.ObjectQuery) ([]store.Object, error) {
	defer since(t.objects, time.Now())
	return t.Store.ListObjects(ctx, q)
}

func (t *timedStore) ListRoleAssignments(ctx context.Context, q store.RoleAssignmentQuery) ([]store.RoleAssignment, error) {
	defer since(t.assignments, time.Now())
	return t.Store.ListRoleAssignments(ctx, q)
}

func (t *timedStore) ListDenyAssignments(ctx context.Context, q store.DenyAssignmentQuery) ([]store.DenyAssignment, error) {
	defer since(t.denies, time.Now())
	return t.Store.ListDenyAssignments(ctx, q)
}

func (t *timedStore) GetSecret(ctx context.Context, vault, name, version string) (store.Secret, error) {
	defer since(t.secret, time.Now())
	return t.Store.GetSecret(ctx, vault, name, version)
}

func (t *timedStore) CreateSecretVersion(ctx context.Context, s store.Secret) (store.Secret, error) {
	defer since(t.secretSet, time.Now())
	return t.Store.CreateSecretVersion(ctx, s)
}

func (t *timedStore) GetResource(ctx context.Context, id string) (store.Resource, error) {
	defer since(t.resource, time.Now())
	return t.Store.GetResource(ctx, id)
}
