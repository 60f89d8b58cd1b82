// Package rbac decides Azure role-based access: whether a principal may
// perform an operation at a scope, and why. It evaluates as Azure does:
// deny assignments on the scope and its ancestors win; otherwise the union,
// over the roles assigned to the principal or to any group it belongs to
// (transitively) at the scope or an ancestor, of Actions − NotActions
// (DataActions − NotDataActions for data actions) decides.
//
// Decisions are cached until a part of the store they were read from
// changes (store.Store.PartGeneration): the tenant that owns the scope
// (its role and deny assignments and role definitions), the principal's
// home tenant (its groups) and, for a scope under a subscription, the
// tenants that hold the subscription. Every committed write to those
// moves its tenant's generation, so a role assignment or its removal
// takes effect on the next request, in this process at once and in
// another sharing a PostgreSQL store as soon as its change notification
// arrives (which moves every tenant's); writes to other tenants leave
// the decision cached.
package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Store is what the engine reads; store.Store satisfies it.
type Store interface {
	Generation() uint64
	PartGeneration(part string) uint64
	GetRoleDefinition(ctx context.Context, tenantID, id string) (store.RoleDefinition, error)
	ListRoleAssignments(ctx context.Context, q store.RoleAssignmentQuery) ([]store.RoleAssignment, error)
	ListDenyAssignments(ctx context.Context, q store.DenyAssignmentQuery) ([]store.DenyAssignment, error)
	TenantsBySubscription(ctx context.Context, subscriptionID string) ([]string, error)
}

// Groups gives the groups an object is a direct member of, in a tenant;
// *directory.Service satisfies it. It must read nothing but that tenant's
// rows: decisions are cached on that tenant's generation.
type Groups interface {
	MemberOf(ctx context.Context, tenantID, id string) ([]string, error)
}

// Errors of Decide, besides those of the store.
var (
	// ErrInvalidRequest means the request itself is malformed (an empty
	// principal or operation, a wildcard in the operation); ErrInvalidScope
	// is returned for a malformed scope.
	ErrInvalidRequest = errors.New("rbac: invalid request")
	// ErrUnknownScope means no tenant (or more than one) owns the scope's
	// subscription, or the subscription is not the named tenant's.
	ErrUnknownScope = errors.New("rbac: no tenant owns the scope")
)

// maxGroups bounds the transitive groups of one principal, so that a
// pathological directory cannot turn one decision into unbounded work.
const maxGroups = 900

// maxCachedDecisions bounds the decision cache; past it, the stale
// decisions go, then others until a quarter is free. It must hold every
// decision in steady use: a connected Service Bus link is authorised
// again for every message, and a fan-out of 10,000 customers uses four
// decisions per customer (the provider's send and receive, the worker's
// receive and send), 40,000 in all. An entry is a few hundred bytes (the
// role definition it names is shared).
const maxCachedDecisions = 80_000

// Engine makes access decisions. It is safe for concurrent use.
type Engine struct {
	st        Store
	groups    Groups
	decisions *gencache.PartCache[Request, cachedDecision]
	grantsMu  sync.Mutex
	grants    map[grantKey]*grant // the cached decisions' grants, each once (shareGrant)
	obs       Observer            // nil: none
	tracer    trace.Tracer        // nil: no spans
}

// Observer is told of every decision, for the operator's metrics: whether
// it allowed, whether the decision cache answered it, and the error when
// none could be made.
type Observer interface {
	RBACDecision(allowed, cached bool, err error)
}

// Option configures an Engine.
type Option func(*Engine)

// WithObserver makes the engine report its decisions to o.
func WithObserver(o Observer) Option { return func(e *Engine) { e.obs = o } }

// WithTracer makes each decision taken under a recording span (a traced
// request) a child span "rbac.Decide", with the store reads of a computed
// decision beneath it.
func WithTracer(t trace.Tracer) Option { return func(e *Engine) { e.tracer = t } }

// New returns an engine reading assignments from st and memberships from groups.
func New(st Store, groups Groups, opts ...Option) *Engine {
	e := &Engine{st: st, groups: groups, decisions: gencache.NewPartCache[Request, cachedDecision](st, maxCachedDecisions),
		grants: map[grantKey]*grant{}}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Request is one access question.
type Request struct {
	PrincipalID string
	// PrincipalTenantID is the principal's home tenant; empty means the
	// tenant that owns the scope.
	PrincipalTenantID string
	// TenantID is the tenant that owns the scope. It may be empty for a
	// scope under a subscription (it is then the subscription's tenant)
	// and must be set for the root and management groups.
	TenantID string
	// Action is the operation, e.g. Microsoft.KeyVault/vaults/read or, with
	// DataAction, Microsoft.ServiceBus/namespaces/messages/send/action.
	Action     string
	DataAction bool
	Scope      string
}

// Decision is the answer and its reason.
type Decision struct {
	Allowed bool
	Because Explanation
}

// Explanation says why a decision went the way it did.
type Explanation struct {
	Operation  string
	DataAction bool
	Scope      string // canonical
	TenantID   string // the tenant that owns the scope
	// Deny is the deny assignment that blocked the request, if one did;
	// DeniedVia the id it applied through (the principal, one of its
	// groups, or store.EveryonePrincipalID).
	Deny      *store.DenyAssignment
	DeniedVia string
	// Assignment and Role are what granted the request, if it was allowed.
	Assignment *store.RoleAssignment
	Role       *store.RoleDefinition
	// Path runs from the principal to the assignment's principal through
	// the groups that connect them: [principal] for a direct assignment,
	// [principal, group, …, group] otherwise.
	Path []string
}

// String renders the explanation for logs, errors and the CLI.
func (e Explanation) String() string {
	kind := "action"
	if e.DataAction {
		kind = "data action"
	}
	switch {
	case e.Deny != nil:
		via := e.DeniedVia
		if via == store.EveryonePrincipalID {
			via = "everyone"
		}
		return fmt.Sprintf("deny assignment %q (%s) at %s blocks %s %s for %s", e.Deny.Name, e.Deny.ID, e.Deny.Scope, kind, e.Operation, via)
	case e.Assignment != nil:
		return fmt.Sprintf("role assignment %s grants %q (%s) at %s to %s, allowing %s %s at %s",
			e.Assignment.ID, e.Role.Name, e.Role.ID, e.Assignment.Scope, strings.Join(e.Path, " → "), kind, e.Operation, e.Scope)
	default:
		return fmt.Sprintf("no assignment grants %s %s at %s", kind, e.Operation, e.Scope)
	}
}

// Decide answers req. An error means no decision could be made (a
// malformed request, an unknown scope, a store failure); callers must
// treat it as a refusal.
//
// A decision is computed once and then served from memory until a part
// of the store it read changes (its Explanation is shared: callers must
// not modify it).
// Requests differing in nothing but letter case are decided separately,
// so that the explanation names the scope as asked.
func (e *Engine) Decide(ctx context.Context, req Request) (Decision, error) {
	var span trace.Span
	if e.tracer != nil && trace.SpanFromContext(ctx).IsRecording() {
		ctx, span = e.tracer.Start(ctx, "rbac.Decide", trace.WithAttributes(
			attribute.String("tenantbridge.rbac.action", req.Action[:min(len(req.Action), 512)]), attribute.Bool("tenantbridge.rbac.data_action", req.DataAction)))
	}
	computed := false
	c, err := e.decisions.Get(req, func(deps *gencache.Deps) (cachedDecision, error) {
		computed = true
		d, err := e.decide(ctx, req, deps)
		return e.cacheable(d), err
	})
	d := c.decision(req)
	if e.obs != nil {
		e.obs.RBACDecision(d.Allowed, !computed, err)
	}
	if span != nil {
		endDecisionSpan(span, d.Allowed, !computed, err)
	}
	return d, err
}

// cachedDecision is a Decision as the decision cache keeps it (issue 16:
// a fan-out of 10,000 customers keeps some 110,000): what the request
// (the cache key) says is left out, and the rest of the explanation is
// held through a pointer that only a grant or a denial needs, so that a
// cache entry is 48 bytes instead of Decision's 128.
type cachedDecision struct {
	scope, tenantID string
	grant           *grant  // nil: refused
	denial          *denial // set when a deny assignment refused
}

// grant is what an allowing decision's explanation names; denial what a
// deny assignment's refusal names.
type (
	grant struct {
		assignment store.RoleAssignment
		role       *store.RoleDefinition
		path       []string
	}
	denial struct {
		assignment store.DenyAssignment
		via        string
	}
)

// cacheable is d, computed, as the cache keeps it. A decision allows if
// and only if an assignment granted it (decide).
func (e *Engine) cacheable(d Decision) cachedDecision {
	c := cachedDecision{scope: d.Because.Scope, tenantID: d.Because.TenantID}
	if d.Allowed {
		c.grant = e.shareGrant(&grant{assignment: *d.Because.Assignment, role: d.Because.Role, path: d.Because.Path})
	}
	if d.Because.Deny != nil {
		c.denial = &denial{assignment: *d.Because.Deny, via: d.Because.DeniedVia}
	}
	return c
}

// grantKey identifies an assignment.
type grantKey struct{ tenantID, id string }

// shareGrant returns a grant equal to g in every field that a cached
// decision already holds, else g, which later decisions will share: one
// assignment grants many decisions (a fan-out customer's administrator's
// Owner assignment, its setup's seven; issue 16). The grants are as many
// as the cache's max at most, and twice its decisions (and a few): past
// that they start over (the decisions keep theirs), so that those of
// decisions gone are not kept for long.
func (e *Engine) shareGrant(g *grant) *grant {
	k := grantKey{g.assignment.TenantID, g.assignment.ID}
	e.grantsMu.Lock()
	defer e.grantsMu.Unlock()
	if old, ok := e.grants[k]; ok && old.assignment == g.assignment && old.role == g.role && slices.Equal(old.path, g.path) {
		return old
	}
	if len(e.grants) >= maxCachedDecisions || len(e.grants) >= 2*e.decisions.Len()+8 {
		clear(e.grants)
	}
	e.grants[k] = g
	return g
}

// decision is the Decision c was made from, for req (its operation, which
// the explanation names as asked). Its pointers are into c: shared, as a
// cached decision's explanation always was.
func (c cachedDecision) decision(req Request) Decision {
	if c.scope == "" { // an error, not a decision
		return Decision{}
	}
	d := Decision{Allowed: c.grant != nil, Because: Explanation{Operation: req.Action, DataAction: req.DataAction, Scope: c.scope, TenantID: c.tenantID}}
	if g := c.grant; g != nil {
		d.Because.Assignment, d.Because.Role, d.Because.Path = &g.assignment, g.role, g.path
	}
	if n := c.denial; n != nil {
		d.Because.Deny, d.Because.DeniedVia = &n.assignment, n.via
	}
	return d
}

// endDecisionSpan records a decision's result and whether the cache
// answered it, and ends its span. The principal and scope stay out of it
// (the request's span names the caller); nothing in it is secret.
func endDecisionSpan(span trace.Span, allowed, cached bool, err error) {
	result := "denied"
	switch {
	case err != nil:
		result = "error"
		span.SetStatus(codes.Error, "no decision could be made")
	case allowed:
		result = "allowed"
	}
	span.SetAttributes(attribute.String("tenantbridge.rbac.result", result), attribute.Bool("tenantbridge.rbac.cached", cached))
	span.End()
}

// decide computes the decision from the store, naming in deps each part
// of the store it reads.
func (e *Engine) decide(ctx context.Context, req Request, deps *gencache.Deps) (Decision, error) {
	if req.PrincipalID == "" || req.Action == "" {
		return Decision{}, fmt.Errorf("%w: principal and action are required", ErrInvalidRequest)
	}
	if strings.Contains(req.Action, "*") || len(req.Action) > 512 {
		return Decision{}, fmt.Errorf("%w: the operation %.80q must be one concrete operation of at most 512 bytes", ErrInvalidRequest, req.Action)
	}
	sc, err := ParseScope(req.Scope)
	if err != nil {
		return Decision{}, err
	}
	tenantID, err := e.scopeTenant(ctx, sc, req.TenantID, deps)
	if err != nil {
		return Decision{}, err
	}
	home := req.PrincipalTenantID
	if home == "" {
		home = tenantID
	}
	// What follows reads the scope tenant's deny and role assignments and
	// role definitions, and the home tenant's group memberships (a
	// guest's groups are its home tenant's, as Groups reads them).
	deps.Part(store.TenantPart(tenantID))
	deps.Part(store.TenantPart(home))
	// The explanation names the scope in its canonical form; when the
	// request already used it, it shares the request's string (the cache
	// key's), so that a cached decision does not hold a second copy
	// (issue 16).
	scope := sc.String()
	if scope == req.Scope {
		scope = req.Scope
	}
	because := Explanation{Operation: req.Action, DataAction: req.DataAction, Scope: scope, TenantID: tenantID}

	parent, err := e.memberships(ctx, home, req.PrincipalID)
	if err != nil {
		return Decision{}, err
	}
	ids := make([]string, 0, len(parent)+1)
	ids = append(ids, req.PrincipalID)
	for g := range parent {
		if g != req.PrincipalID {
			ids = append(ids, g)
		}
	}
	slices.Sort(ids[1:])
	ancestors := sc.Ancestors()

	// Deny assignments first: they win over any grant.
	denies, err := e.st.ListDenyAssignments(ctx, store.DenyAssignmentQuery{TenantID: tenantID, Scopes: ancestors})
	if err != nil {
		return Decision{}, fmt.Errorf("rbac: deny assignments: %w", err)
	}
	for i := range denies {
		d := &denies[i]
		if via, ok := denyApplies(d, sc, parent); ok && Permits(d.Permissions, req.Action, req.DataAction) {
			deny := *d // a copy, so that the cached decision does not keep the whole list
			because.Deny, because.DeniedVia = &deny, via
			return Decision{Allowed: false, Because: because}, nil
		}
	}

	assignments, err := e.st.ListRoleAssignments(ctx, store.RoleAssignmentQuery{
		TenantID: tenantID, Scopes: ancestors, PrincipalIDs: ids, PrincipalTenantID: home,
	})
	if err != nil {
		return Decision{}, fmt.Errorf("rbac: role assignments: %w", err)
	}
	depth := make(map[string]int, len(ancestors))
	for i, a := range ancestors {
		depth[strings.ToLower(a)] = i
	}
	roles := map[string]*store.RoleDefinition{}
	var (
		best     *store.RoleAssignment
		bestRole *store.RoleDefinition
		bestPath []string
	)
	for i := range assignments {
		a := &assignments[i]
		role, err := e.role(ctx, roles, tenantID, a.RoleDefinitionID)
		if err != nil {
			return Decision{}, err
		}
		if role == nil || !Permits(role.Permissions, req.Action, req.DataAction) {
			continue
		}
		path := pathTo(parent, req.PrincipalID, a.PrincipalID)
		// Prefer the most specific scope, then the shortest group path:
		// the assignment a person would look at first.
		if best == nil || depth[strings.ToLower(a.Scope)] > depth[strings.ToLower(best.Scope)] ||
			(depth[strings.ToLower(a.Scope)] == depth[strings.ToLower(best.Scope)] && len(path) < len(bestPath)) {
			best, bestRole, bestPath = a, role, path
		}
	}
	if best == nil {
		return Decision{Allowed: false, Because: because}, nil
	}
	// The explanation holds a copy of the assignment, not a pointer into
	// the list read: a cached decision would otherwise keep every
	// assignment the query returned (issue 16).
	role := explainedRole(bestRole)
	because.Assignment, because.Role, because.Path = explainedAssignment(best, req, tenantID, role, bestPath), role, bestPath
	return Decision{Allowed: true, Because: because}, nil
}

// explainedAssignment copies a, the assignment that granted a decision,
// for the decision's explanation, which the decision cache keeps (issue
// 16: the store read each of its strings into an allocation of its own,
// some 400 bytes a decision). Where a string equals one the decision
// holds anyway, the copy shares it: the request's principal, tenants and
// scope (the cache key's; an assignment at an ancestor scope is usually a
// prefix of the requested scope), the scope's tenant, the role's id, the
// path's ids and the principal types' constants. The others (the
// assignment's id and creator) share one allocation.
func explainedAssignment(a *store.RoleAssignment, req Request, tenantID string, role *store.RoleDefinition, path []string) *store.RoleAssignment {
	c := *a
	for _, k := range [...]store.PrincipalType{store.PrincipalUser, store.PrincipalGroup, store.PrincipalServicePrincipal, store.PrincipalSystemDefined} {
		if c.PrincipalType == k {
			c.PrincipalType = k
		}
	}
	held := func(s string) (string, bool) {
		for _, h := range [...]string{req.PrincipalID, req.PrincipalTenantID, req.TenantID, tenantID, role.ID} {
			if s == h {
				return h, true
			}
		}
		for _, h := range path {
			if s == h {
				return h, true
			}
		}
		if strings.HasPrefix(req.Scope, s) {
			return req.Scope[:len(s)], true
		}
		return "", false
	}
	fields := [...]*string{&c.TenantID, &c.ID, &c.Scope, &c.RoleDefinitionID, &c.PrincipalID, &c.PrincipalTenantID, &c.CreatedBy}
	var rest [len(fields)]bool
	n := 0
	for i, f := range fields {
		if h, ok := held(*f); ok {
			*f = h
		} else {
			rest[i] = true
			n += len(*f)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for i, f := range fields {
		if rest[i] {
			b.WriteString(*f)
		}
	}
	one := b.String()
	for i, f := range fields {
		if rest[i] {
			*f, one = one[:len(*f)], one[len(*f):]
		}
	}
	return &c
}

// scopeTenant finds the tenant that owns sc. Under a subscription that
// is a read of the subscription's tenants, named in deps.
func (e *Engine) scopeTenant(ctx context.Context, sc Scope, named string, deps *gencache.Deps) (string, error) {
	sub := sc.SubscriptionID()
	if sub == "" {
		if named == "" {
			return "", fmt.Errorf("%w: %s: the tenant must be named for a scope above subscriptions", ErrUnknownScope, sc)
		}
		return named, nil
	}
	deps.Part(store.SubscriptionPart(sub))
	ts, err := e.st.TenantsBySubscription(ctx, sub)
	if err != nil {
		return "", fmt.Errorf("rbac: tenant of subscription %s: %w", sub, err)
	}
	if len(ts) != 1 {
		return "", fmt.Errorf("%w: subscription %s belongs to %d tenants", ErrUnknownScope, sub, len(ts))
	}
	if named != "" && !strings.EqualFold(named, ts[0]) {
		return "", fmt.Errorf("%w: subscription %s is not in tenant %s", ErrUnknownScope, sub, named)
	}
	if named == ts[0] {
		return named, nil // the request's string, which the cache key holds, not a copy read from the store
	}
	return ts[0], nil
}

// memberships walks the groups of principal breadth-first. The result maps
// each group reached to the member through which it was first reached, so
// that pathTo gives a shortest chain; the principal maps to itself.
func (e *Engine) memberships(ctx context.Context, tenantID, principal string) (map[string]string, error) {
	parent := map[string]string{principal: principal}
	queue := []string{principal}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		groups, err := e.groups.MemberOf(ctx, tenantID, next)
		if err != nil {
			return nil, fmt.Errorf("rbac: groups of %s: %w", next, err)
		}
		for _, g := range groups {
			if _, seen := parent[g]; seen {
				continue
			}
			if len(parent) > maxGroups {
				return nil, fmt.Errorf("rbac: %s belongs to more than %d groups", principal, maxGroups)
			}
			parent[g] = next
			queue = append(queue, g)
		}
	}
	return parent, nil
}

// pathTo returns [principal, …, target] along the parent links.
func pathTo(parent map[string]string, principal, target string) []string {
	var rev []string
	for id := target; ; id = parent[id] {
		rev = append(rev, id)
		if id == principal || len(rev) > len(parent) {
			break
		}
	}
	slices.Reverse(rev)
	return rev
}

// denyApplies reports whether d reaches the principal (whose groups are the
// keys of member) at sc, and through which principal id.
func denyApplies(d *store.DenyAssignment, sc Scope, member map[string]string) (string, bool) {
	if d.DoNotApplyToChildScopes && strings.ToLower(d.Scope) != sc.Key() {
		return "", false
	}
	for _, x := range d.ExcludePrincipals {
		if _, ok := member[x.ID]; ok {
			return "", false
		}
	}
	for _, p := range d.Principals {
		if p.ID == store.EveryonePrincipalID && p.Type == store.PrincipalSystemDefined {
			return store.EveryonePrincipalID, true
		}
		if _, ok := member[p.ID]; ok {
			return p.ID, true
		}
	}
	return "", false
}

// role resolves a role definition id: a built-in, or a custom role of the
// tenant (custom role ids are lower-case GUIDs, as assignments store them). A role that no longer exists is nil: its assignments grant nothing.
func (e *Engine) role(ctx context.Context, cache map[string]*store.RoleDefinition, tenantID, id string) (*store.RoleDefinition, error) {
	key := strings.ToLower(id)
	if r, ok := cache[key]; ok {
		return r, nil
	}
	if r, ok := builtInByID(key); ok {
		cache[key] = r
		return r, nil
	}
	d, err := e.st.GetRoleDefinition(ctx, tenantID, key)
	if errors.Is(err, store.ErrNotFound) {
		cache[key] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rbac: role definition %s: %w", id, err)
	}
	cache[key] = &d
	return &d, nil
}
