package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// EdgeKind is the kind of trust an edge stands for.
type EdgeKind string

// The kinds of trust across a tenant boundary that the graph shows.
const (
	// EdgeServicePrincipal: another tenant's application has a service
	// principal here (admin consent or Graph), so it gets tokens here.
	EdgeServicePrincipal EdgeKind = "servicePrincipal"
	// EdgeAppRole: that service principal holds an application
	// permission (an app role assignment) here.
	EdgeAppRole EdgeKind = "appRoleAssignment"
	// EdgeGrant: delegated permissions consented to that service
	// principal (an oauth2PermissionGrant), for every user or one.
	EdgeGrant EdgeKind = "oauth2PermissionGrant"
	// EdgeRole: an Azure role assignment here held by that service
	// principal, directly or through a group of this tenant.
	EdgeRole EdgeKind = "roleAssignment"
	// EdgeDelegation: a role assignment here naming a principal of
	// another tenant: a managed application's publisher authorization
	// (store.RoleAssignment.IsDelegation), or a stray one that lets no
	// one in.
	EdgeDelegation EdgeKind = "delegation"
	// EdgeFederated: a federated identity credential of an application or
	// user-assigned identity here trusts tokens of another issuer.
	EdgeFederated EdgeKind = "federatedCredential"
	// EdgeSAS: a Service Bus shared access rule here; whoever holds its
	// key can use it, and the directory cannot know who that is.
	EdgeSAS EdgeKind = "sasRule"
)

// Principal is who holds a trust: a principal of another tenant, an
// external issuer's subject, or an unknown key holder.
type Principal struct {
	// TenantID is the principal's home tenant; "" for an external
	// issuer or an unknown holder (Cluster says which).
	TenantID string
	ID       string // object id (or appId of an application), issuer subject
	Kind     string // application, servicePrincipal, group, user, subject, keyHolder
	Name     string
	// Cluster names the cluster the principal is drawn in when it has no
	// tenant here: an external issuer's URL, or "unknown holders".
	Cluster string
}

// Key is the principal's identity in the graph.
func (p Principal) Key() string { return p.TenantID + "|" + p.Cluster + "|" + p.Kind + "|" + p.ID }

// Edge is one trust from a principal of another tenant into a tenant:
// who, through what object of the tenant, can do what, where, and why.
type Edge struct {
	Kind EdgeKind
	// TenantID is the tenant trusted into (the one that owns the grant
	// and alone may revoke it); ObjectID the object that carries it there
	// (service principal, assignment, grant, credential's owner, rule).
	TenantID string
	ObjectID string
	// CredentialID is a federated credential's id (EdgeFederated).
	CredentialID string
	From         Principal
	// Via names the object of TenantID the trust goes through.
	Via   string
	What  string
	Where string
	// Why is the explanation: for Azure roles the one `tenantbridge role
	// explain` gives (rbac.Explanation).
	Why string
	// Blocked says why the grant lets no one in (a stray assignment, a
	// deny assignment, a disabled service principal); "" when it works.
	Blocked string
}

// Ref is the edge's reference in a revocation form: kind, tenant, object
// and credential, which the console looks up again before acting.
func (e Edge) Ref() string {
	return strings.Join([]string{string(e.Kind), e.TenantID, e.ObjectID, e.CredentialID}, "|")
}

// ID is a short stable identifier for HTML ids.
func (e Edge) ID() string {
	sum := sha256.Sum256([]byte(e.Ref()))
	return "e" + hex.EncodeToString(sum[:6])
}

// Revocable reports whether the console can revoke the edge.
func (e Edge) Revocable() bool { return e.Kind != EdgeSAS }

// Bounds on one graph's computation, so that a huge tenant costs a bounded
// amount of work: past them the graph says it is truncated.
const (
	maxObjects      = 5000 // per kind and tenant
	maxTenants      = 2000 // scanned for the reverse view
	maxGroupsOfSP   = 200
	maxGroupPathLen = 8
)

// ErrTruncated is returned with a partial graph when a bound was reached.
var ErrTruncated = errors.New("console: the graph was truncated at a bound")

// Graph computes the trust graph: who of other tenants can do what in a
// tenant (Inbound), and what a tenant's principals can do in others
// (Outbound). It reads the directory, the store and the RBAC engine; it
// writes nothing.
type Graph struct {
	Dir  *directory.Service
	St   store.Store
	RBAC *rbac.Engine
	// IsLoginHost reports whether a host name (lower case, no port) is one
	// this server issues tokens as: a federated credential whose issuer
	// is https://{such host}/{tenant id}[/v2.0] trusts that tenant. Nil
	// means Entra's own names (login.microsoftonline.com,
	// login.windows.net, sts.windows.net).
	IsLoginHost func(host string) bool
}

// Inbound lists every trust into tenantID held by a principal of another
// tenant (or by an unknown holder), ordered for display. The error is
// ErrTruncated when a bound cut the list short.
func (g *Graph) Inbound(ctx context.Context, tenantID string) ([]Edge, error) {
	b := &builder{g: g, ctx: ctx, tenant: tenantID, names: map[string]string{}}
	for _, step := range []func() error{b.servicePrincipals, b.delegations, b.federated, b.sasRules} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(b.edges, func(x, y Edge) int {
		return strings.Compare(x.From.TenantID+x.From.Cluster+x.From.Name+string(x.Kind)+x.Where+x.ObjectID,
			y.From.TenantID+y.From.Cluster+y.From.Name+string(y.Kind)+y.Where+y.ObjectID)
	})
	if b.truncated {
		return b.edges, ErrTruncated
	}
	return b.edges, nil
}

// Outbound lists every trust that principals of tenantID hold in other
// tenants: the Inbound edges of each other tenant whose principal is
// tenantID's.
func (g *Graph) Outbound(ctx context.Context, tenantID string) ([]Edge, error) {
	tenants, err := g.Dir.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	var out []Edge
	truncated := false
	for i, t := range tenants {
		if i >= maxTenants {
			truncated = true
			break
		}
		if t.ID == tenantID || t.ID == directory.MicrosoftTenantID {
			continue
		}
		in, err := g.Inbound(ctx, t.ID)
		if errors.Is(err, ErrTruncated) {
			truncated = true
		} else if err != nil {
			return nil, err
		}
		for _, e := range in {
			if e.From.TenantID == tenantID {
				out = append(out, e)
			}
		}
	}
	if truncated {
		return out, ErrTruncated
	}
	return out, nil
}

// builder computes one tenant's inbound edges.
type builder struct {
	g         *Graph
	ctx       context.Context
	tenant    string
	edges     []Edge
	names     map[string]string // tenant|id -> display name, memo
	truncated bool
}

func (b *builder) add(e Edge) {
	e.TenantID = b.tenant
	b.edges = append(b.edges, e)
}

func (b *builder) bounded(n int) int {
	if n > maxObjects {
		b.truncated = true
		return maxObjects
	}
	return n
}

// servicePrincipals finds the service principals of other tenants'
// applications here, and everything they hold: app role assignments,
// delegated grants, Azure role assignments (direct or through groups).
func (b *builder) servicePrincipals() error {
	sps, err := b.g.Dir.ListServicePrincipals(b.ctx, b.tenant, directory.Query{Limit: maxObjects + 1})
	if err != nil {
		return fmt.Errorf("console: service principals: %w", err)
	}
	sps = sps[:b.bounded(len(sps))]
	for _, sp := range sps {
		home := sp.AppOwnerOrganizationID
		if home == "" || strings.EqualFold(home, b.tenant) || home == directory.MicrosoftTenantID ||
			sp.ServicePrincipalType == directory.SPTypeManagedIdentity {
			continue
		}
		from := Principal{TenantID: home, ID: sp.AppID, Kind: "application", Name: b.appName(sp)}
		via := "service principal " + sp.DisplayName + " (" + sp.ID + ")"
		blocked := ""
		if !sp.AccountEnabled {
			blocked = "the service principal is disabled: no token is issued for it"
		}
		b.add(Edge{Kind: EdgeServicePrincipal, ObjectID: sp.ID, From: from, Via: via,
			What:  "get tokens as " + sp.DisplayName,
			Where: "tenant " + b.tenantName(b.tenant),
			Why:   "application " + sp.AppID + " of tenant " + b.tenantName(home) + " has service principal " + sp.ID + " here (consent or Graph)", Blocked: blocked})
		if err := b.appRoles(sp, from, via, blocked); err != nil {
			return err
		}
		if err := b.grants(sp, from, via, blocked); err != nil {
			return err
		}
		if err := b.roles(sp, from, via, blocked); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) appName(sp *directory.ServicePrincipal) string {
	if sp.AppDisplayName != "" {
		return sp.AppDisplayName
	}
	return sp.DisplayName
}

func (b *builder) appRoles(sp *directory.ServicePrincipal, from Principal, via, blocked string) error {
	as, err := b.g.Dir.AppRoleAssignmentsOf(b.ctx, b.tenant, sp.ID)
	if err != nil {
		return fmt.Errorf("console: app role assignments: %w", err)
	}
	for _, a := range as[:b.bounded(len(as))] {
		res, err := b.g.Dir.GetServicePrincipal(b.ctx, b.tenant, a.ResourceID)
		if err != nil {
			continue // the resource went; the assignment grants nothing
		}
		role := "default access"
		if r, ok := res.AppRole(a.AppRoleID); ok {
			role = r.Value
		}
		b.add(Edge{Kind: EdgeAppRole, ObjectID: a.ID, From: from, Via: via,
			What:  "application permission " + role,
			Where: res.DisplayName,
			Why:   "app role assignment " + a.ID + " gives " + sp.DisplayName + " the role " + a.AppRoleID + " of " + res.DisplayName, Blocked: blocked})
	}
	return nil
}

func (b *builder) grants(sp *directory.ServicePrincipal, from Principal, via, blocked string) error {
	gs, err := b.g.Dir.ListDelegatedGrants(b.ctx, b.tenant, directory.GrantFilter{ClientID: sp.ID})
	if err != nil {
		return fmt.Errorf("console: delegated grants: %w", err)
	}
	for _, gr := range gs[:b.bounded(len(gs))] {
		res := gr.ResourceID
		if r, err := b.g.Dir.GetServicePrincipal(b.ctx, b.tenant, gr.ResourceID); err == nil {
			res = r.DisplayName
		}
		who := "every user"
		if gr.ConsentType != "AllPrincipals" {
			who = "user " + b.objectName(b.tenant, gr.PrincipalID)
		}
		b.add(Edge{Kind: EdgeGrant, ObjectID: gr.ID, From: from, Via: via,
			What:  "delegated " + gr.Scope + " on behalf of " + who,
			Where: res,
			Why:   "oauth2PermissionGrant " + gr.ID + " (" + gr.ConsentType + ") consents " + gr.Scope + " to " + sp.DisplayName, Blocked: blocked})
	}
	return nil
}

// roles finds the Azure role assignments here of a foreign application's
// service principal, directly or through this tenant's groups.
func (b *builder) roles(sp *directory.ServicePrincipal, from Principal, via, blocked string) error {
	if b.g.St == nil {
		return nil
	}
	path, err := b.groupPaths(b.tenant, sp.ID)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(path))
	for id := range path {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	as, err := b.g.St.ListRoleAssignments(b.ctx, store.RoleAssignmentQuery{TenantID: b.tenant, PrincipalIDs: ids,
		PrincipalTenantID: b.tenant, Limit: maxObjects + 1})
	if err != nil {
		return fmt.Errorf("console: role assignments: %w", err)
	}
	for _, a := range as[:b.bounded(len(as))] {
		names := make([]string, 0, len(path[a.PrincipalID]))
		for _, id := range path[a.PrincipalID] {
			names = append(names, b.objectName(b.tenant, id))
		}
		b.addRole(EdgeRole, a, from, via, names, blocked)
	}
	return nil
}

// groupPaths maps the principal and each group of tenantID it belongs to,
// transitively, to the path from the principal to it (rbac's Path).
func (b *builder) groupPaths(tenantID, id string) (map[string][]string, error) {
	out := map[string][]string{strings.ToLower(id): {id}}
	queue := []string{strings.ToLower(id)}
	for len(queue) > 0 && len(out) <= maxGroupsOfSP {
		cur := queue[0]
		queue = queue[1:]
		if len(out[cur]) >= maxGroupPathLen {
			continue
		}
		parents, err := b.g.Dir.MemberOf(b.ctx, tenantID, cur)
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			return nil, fmt.Errorf("console: groups: %w", err)
		}
		for _, p := range parents {
			p = strings.ToLower(p)
			if _, seen := out[p]; seen {
				continue
			}
			out[p] = append(slices.Clone(out[cur]), p)
			queue = append(queue, p)
		}
	}
	return out, nil
}

// addRole adds an Azure role assignment's edge, explained as `role
// explain` explains it; when the role names a concrete operation, the
// RBAC engine is asked for it, so a deny assignment that blocks the
// grant shows.
func (b *builder) addRole(kind EdgeKind, a store.RoleAssignment, from Principal, via string, path []string, blocked string) {
	role, ok := rbac.BuiltInRole(a.RoleDefinitionID)
	if !ok {
		r, err := b.g.St.GetRoleDefinition(b.ctx, b.tenant, a.RoleDefinitionID)
		if err != nil {
			role = store.RoleDefinition{ID: a.RoleDefinitionID, Name: a.RoleDefinitionID}
		} else {
			role = r
		}
	}
	op, data := summary(role)
	because := rbac.Explanation{Operation: op, DataAction: data, Scope: a.Scope, TenantID: b.tenant,
		Assignment: &a, Role: &role, Path: path}
	why := because.String()
	if concrete := concreteOperation(role); concrete != "" && b.g.RBAC != nil && blocked == "" {
		principal, home := a.PrincipalID, a.PrincipalTenantID
		if kind == EdgeRole && len(path) > 0 {
			principal, home = path[0], b.tenant // the service principal itself; the engine finds its groups
		}
		d, err := b.g.RBAC.Decide(b.ctx, rbac.Request{PrincipalID: strings.ToLower(principal), PrincipalTenantID: home,
			TenantID: b.tenant, Action: concrete, DataAction: isData(role, concrete), Scope: a.Scope})
		if err == nil && !d.Allowed && d.Because.Deny != nil {
			blocked = d.Because.String()
		}
	}
	what := role.Name
	if op != "" {
		what += ": " + op
	}
	b.add(Edge{Kind: kind, ObjectID: a.ID, From: from, Via: via, What: what, Where: a.Scope, Why: why, Blocked: blocked})
}

// summary is what a role allows, in short: its data actions, else its
// actions (patterns as the role states them).
func summary(role store.RoleDefinition) (string, bool) {
	var acts, data []string
	for _, p := range role.Permissions {
		acts = append(acts, p.Actions...)
		data = append(data, p.DataActions...)
	}
	clip := func(s []string) string {
		if len(s) > 4 {
			return strings.Join(s[:4], ", ") + fmt.Sprintf(" and %d more", len(s)-4)
		}
		return strings.Join(s, ", ")
	}
	if len(data) > 0 {
		return clip(data), true
	}
	return clip(acts), false
}

// concreteOperation is the first operation of the role without a
// wildcard (data actions first), which the engine can decide; "" if none.
func concreteOperation(role store.RoleDefinition) string {
	for _, data := range []bool{true, false} {
		for _, p := range role.Permissions {
			list := p.Actions
			if data {
				list = p.DataActions
			}
			for _, op := range list {
				if !strings.Contains(op, "*") {
					return op
				}
			}
		}
	}
	return ""
}

func isData(role store.RoleDefinition, op string) bool {
	for _, p := range role.Permissions {
		if slices.Contains(p.DataActions, op) {
			return true
		}
	}
	return false
}

// delegations finds role assignments here naming a principal of another
// tenant: what a managed application's publisher was delegated.
func (b *builder) delegations() error {
	if b.g.St == nil {
		return nil
	}
	as, err := b.g.St.ListRoleAssignments(b.ctx, store.RoleAssignmentQuery{TenantID: b.tenant, Limit: maxObjects + 1})
	if err != nil {
		return fmt.Errorf("console: role assignments: %w", err)
	}
	for _, a := range as[:b.bounded(len(as))] {
		home := a.PrincipalTenantID
		if home == "" || strings.EqualFold(home, b.tenant) {
			continue
		}
		kind := strings.ToLower(string(a.PrincipalType))
		if a.PrincipalType == store.PrincipalServicePrincipal {
			kind = "servicePrincipal"
		}
		from := Principal{TenantID: home, ID: a.PrincipalID, Kind: kind, Name: b.objectName(home, a.PrincipalID)}
		blocked := ""
		via := "delegation by " + strings.TrimPrefix(a.CreatedBy, store.DelegationCreator)
		if !a.IsDelegation() {
			blocked = "not a delegation made by the platform: an assignment naming another tenant's principal lets no one in"
			via = "role assignment " + a.ID
		}
		b.addRole(EdgeDelegation, a, from, via, []string{from.Name}, blocked)
	}
	return nil
}

// federated finds federated credentials of this tenant's applications and
// user-assigned identities: each trusts an issuer's subject to act as
// that application or identity here.
func (b *builder) federated() error {
	apps, err := b.g.Dir.ListApplications(b.ctx, b.tenant, directory.Query{Limit: maxObjects + 1})
	if err != nil {
		return fmt.Errorf("console: applications: %w", err)
	}
	for _, app := range apps[:b.bounded(len(apps))] {
		for _, f := range app.FederatedCredentials {
			b.addFederated(f, app.ID, "application "+app.DisplayName)
		}
	}
	ids, err := b.g.Dir.ListManagedIdentities(b.ctx, b.tenant)
	if err != nil {
		return fmt.Errorf("console: managed identities: %w", err)
	}
	for _, mi := range ids[:b.bounded(len(ids))] {
		for _, f := range mi.FederatedCredentials {
			b.addFederated(f, mi.ID, "user-assigned identity "+mi.DisplayName)
		}
	}
	return nil
}

func (b *builder) addFederated(f directory.FederatedIdentityCredential, owner, via string) {
	from := Principal{ID: f.Subject, Kind: "subject", Name: f.Subject, Cluster: f.Issuer}
	if tid := b.issuerTenant(f.Issuer); tid != "" {
		if strings.EqualFold(tid, b.tenant) {
			return // this tenant's own issuer: not across a boundary
		}
		from = Principal{TenantID: tid, ID: f.Subject, Kind: "servicePrincipal", Name: b.objectName(tid, f.Subject)}
	}
	b.add(Edge{Kind: EdgeFederated, ObjectID: owner, CredentialID: f.ID, From: from, Via: via,
		What:  "get tokens as " + strings.TrimPrefix(strings.TrimPrefix(via, "application "), "user-assigned identity "),
		Where: "tenant " + b.tenantName(b.tenant),
		Why:   "federated credential " + f.Name + " trusts issuer " + f.Issuer + ", subject " + f.Subject + ", audience " + strings.Join(f.Audiences, " ")})
}

// issuerTenant returns the tenant of this server whose issuer the URL is
// (https://login.microsoftonline.com/{tid}/v2.0, https://sts.windows.net/{tid}/,
// a custom domain's login host or the listen address: Graph.IsLoginHost),
// or "". An issuer on any other host is external, whatever its path says.
func (b *builder) issuerTenant(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	isLogin := b.g.IsLoginHost
	if isLogin == nil {
		isLogin = func(h string) bool {
			return h == "login.microsoftonline.com" || h == "login.windows.net" || h == "sts.windows.net"
		}
	}
	if !isLogin(host) {
		return ""
	}
	seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if seg == "" {
		return ""
	}
	t, err := b.g.Dir.Tenant(b.ctx, seg)
	if err != nil || !strings.EqualFold(t.ID, seg) {
		return ""
	}
	return t.ID
}

// sasRules lists the Service Bus shared access rules of this tenant's
// namespaces and queues: their keys are bearer secrets, so the holder is
// unknown, and each rule is shown as trust to whoever holds it.
func (b *builder) sasRules() error {
	if b.g.St == nil {
		return nil
	}
	t, err := b.g.Dir.Tenant(b.ctx, b.tenant)
	if err != nil {
		return fmt.Errorf("console: tenant: %w", err)
	}
	if t.SubscriptionID == "" {
		return nil
	}
	for _, typ := range []string{servicebus.NamespaceRuleType, servicebus.QueueRuleType} {
		rules, err := b.g.St.ListResources(b.ctx, store.ResourceQuery{SubscriptionID: t.SubscriptionID, Type: typ})
		if err != nil {
			return fmt.Errorf("console: SAS rules: %w", err)
		}
		for _, r := range rules[:b.bounded(len(rules))] {
			if !strings.EqualFold(r.TenantID, b.tenant) {
				continue
			}
			var p servicebus.RuleProperties
			_ = json.Unmarshal(r.Properties, &p)
			where, _, _ := strings.Cut(r.ID, "/authorizationRules/")
			b.add(Edge{Kind: EdgeSAS, ObjectID: r.ID,
				From: Principal{ID: r.ID, Kind: "keyHolder", Name: "holder of " + r.Name, Cluster: "unknown holders"},
				Via:  "shared access rule " + r.Name, What: strings.Join(p.Rights, ", "), Where: where,
				Why: "whoever holds a key of rule " + r.Name + " may " + strings.Join(p.Rights, ", ") +
					"; keys are bearer secrets, so the holder cannot be known"})
		}
	}
	return nil
}

// objectName is a principal's display name in its tenant, or its id.
func (b *builder) objectName(tenantID, id string) string {
	k := tenantID + "|" + id
	if n, ok := b.names[k]; ok {
		return n
	}
	n := id
	if sp, err := b.g.Dir.GetServicePrincipal(b.ctx, tenantID, id); err == nil {
		n = sp.DisplayName
	} else if g, err := b.g.Dir.GetGroup(b.ctx, tenantID, id); err == nil {
		n = "group " + g.DisplayName
	} else if u, err := b.g.Dir.GetUser(b.ctx, tenantID, id); err == nil {
		n = u.UserPrincipalName
	}
	b.names[k] = n
	return n
}

// tenantName is a tenant's name, or its id.
func (b *builder) tenantName(id string) string {
	if t, err := b.g.Dir.Tenant(b.ctx, id); err == nil {
		return t.Name
	}
	return id
}
