package observe

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Store returns st with its main calls timed into
// tenantbridge_store_operation_duration_seconds: transactions, the queue
// commits, audit appends, and the reads on the hot paths of tokens, RBAC,
// Key Vault and ARM. Every other call goes to st untimed (the embedded
// interface), so a method added to store.Store needs nothing here. A call
// inside InTx is part of the timed transaction and not timed again.
//
// With Options.Tracer set, the same calls made under a recording span (a
// traced request, an RBAC decision) are child spans "store.<op>"; with
// it nil they cost a nil check more.
func (m *Metrics) Store(st store.Store) store.Store {
	t := &timedStore{Store: st, tracer: m.tracer}
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

// timedStore is a store.Store that times (and traces) some calls.
type timedStore struct {
	store.Store
	tracer                                                                                         trace.Tracer // nil: tracing off
	tx, queueOps, audit, tenant, object, objects, assignments, denies, secret, secretSet, resource prometheus.Observer
}

// begin starts a call's span when the caller's is recording (childSpan).
func (t *timedStore) begin(ctx context.Context, name string) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	return childSpan(ctx, t.tracer, name)
}

// done observes the time since start and ends sp (nil: not traced), an
// error span when *err is set. The error's text stays out of the span
// (it may quote what was looked up); its presence is what a trace shows.
func done(h prometheus.Observer, sp trace.Span, start time.Time, err *error) {
	h.Observe(time.Since(start).Seconds())
	if sp == nil {
		return
	}
	if err != nil && *err != nil {
		sp.SetStatus(codes.Error, "store call failed")
	}
	sp.End()
}

func (t *timedStore) InTx(ctx context.Context, fn func(tx store.Store) error) (err error) {
	ctx, sp := t.begin(ctx, "store.InTx")
	defer done(t.tx, sp, time.Now(), &err)
	return t.Store.InTx(ctx, fn)
}

func (t *timedStore) ApplyQueueOps(ctx context.Context, now time.Time, ops []store.QueueOp) []store.QueueResult {
	ctx, sp := t.begin(ctx, "store.ApplyQueueOps")
	defer done(t.queueOps, sp, time.Now(), nil)
	return t.Store.ApplyQueueOps(ctx, now, ops)
}

func (t *timedStore) AppendAudit(ctx context.Context, r store.AuditRecord) (_ int64, err error) {
	ctx, sp := t.begin(ctx, "store.AppendAudit")
	defer done(t.audit, sp, time.Now(), &err)
	return t.Store.AppendAudit(ctx, r)
}

func (t *timedStore) AppendAudits(ctx context.Context, rs []store.AuditRecord) (err error) {
	ctx, sp := t.begin(ctx, "store.AppendAudit")
	defer done(t.audit, sp, time.Now(), &err)
	return t.Store.AppendAudits(ctx, rs)
}

func (t *timedStore) GetTenant(ctx context.Context, idOrDomain string) (_ store.Tenant, err error) {
	ctx, sp := t.begin(ctx, "store.GetTenant")
	defer done(t.tenant, sp, time.Now(), &err)
	return t.Store.GetTenant(ctx, idOrDomain)
}

func (t *timedStore) GetObject(ctx context.Context, tenantID string, kind store.ObjectKind, id string) (_ store.Object, err error) {
	ctx, sp := t.begin(ctx, "store.GetObject")
	defer done(t.object, sp, time.Now(), &err)
	return t.Store.GetObject(ctx, tenantID, kind, id)
}

func (t *timedStore) ListObjects(ctx context.Context, q store.ObjectQuery) (_ []store.Object, err error) {
	ctx, sp := t.begin(ctx, "store.ListObjects")
	defer done(t.objects, sp, time.Now(), &err)
	return t.Store.ListObjects(ctx, q)
}

func (t *timedStore) ListRoleAssignments(ctx context.Context, q store.RoleAssignmentQuery) (_ []store.RoleAssignment, err error) {
	ctx, sp := t.begin(ctx, "store.ListRoleAssignments")
	defer done(t.assignments, sp, time.Now(), &err)
	return t.Store.ListRoleAssignments(ctx, q)
}

func (t *timedStore) ListDenyAssignments(ctx context.Context, q store.DenyAssignmentQuery) (_ []store.DenyAssignment, err error) {
	ctx, sp := t.begin(ctx, "store.ListDenyAssignments")
	defer done(t.denies, sp, time.Now(), &err)
	return t.Store.ListDenyAssignments(ctx, q)
}

func (t *timedStore) GetSecret(ctx context.Context, vault, name, version string) (_ store.Secret, err error) {
	ctx, sp := t.begin(ctx, "store.GetSecret")
	defer done(t.secret, sp, time.Now(), &err)
	return t.Store.GetSecret(ctx, vault, name, version)
}

func (t *timedStore) CreateSecretVersion(ctx context.Context, s store.Secret) (_ store.Secret, err error) {
	ctx, sp := t.begin(ctx, "store.CreateSecretVersion")
	defer done(t.secretSet, sp, time.Now(), &err)
	return t.Store.CreateSecretVersion(ctx, s)
}

func (t *timedStore) GetResource(ctx context.Context, id string) (_ store.Resource, err error) {
	ctx, sp := t.begin(ctx, "store.GetResource")
	defer done(t.resource, sp, time.Now(), &err)
	return t.Store.GetResource(ctx, id)
}
