package server_test

// Isolation, proved (issue 4): random worlds of tenants, applications,
// foreign service principals, groups, role and deny assignments, and
// thousands of (principal, action, resource) decisions made through the
// real HTTP surfaces (login, Resource Manager, Key Vault), each checked
// against a small model written here, independently of package rbac.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// ---- the model's vocabulary, written from Azure's documentation ----

// The three operations the test performs, as Azure names them.
const (
	isoOpRGRead    = "Microsoft.Resources/subscriptions/resourceGroups/read"
	isoOpRGWrite   = "Microsoft.Resources/subscriptions/resourceGroups/write"
	isoOpGetSecret = "Microsoft.KeyVault/vaults/secrets/getSecret/action" // a data action
)

// isoRole is what a built-in role grants of the three operations. The
// table is derived by hand from the roles' published definitions:
//
//	Reader                     Actions */read                      → RG read
//	Contributor                Actions * minus Authorization/*     → RG read, RG write
//	Owner                      Actions *                           → RG read, RG write
//	Key Vault Secrets User     DataActions secrets/getSecret,...   → getSecret
//	Key Vault Secrets Officer  Actions incl. resourceGroups/read,
//	                           DataActions secrets/*               → RG read, getSecret
//
// No control-plane role carries data actions, as in Azure.
type isoRole struct {
	id, name string
	grants   map[string]bool
}

var isoRoles = []isoRole{
	{"acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", map[string]bool{isoOpRGRead: true}},
	{"b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", map[string]bool{isoOpRGRead: true, isoOpRGWrite: true}},
	{"8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", map[string]bool{isoOpRGRead: true, isoOpRGWrite: true}},
	{"4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User", map[string]bool{isoOpGetSecret: true}},
	{"b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer", map[string]bool{isoOpRGRead: true, isoOpGetSecret: true}},
}

const (
	isoOwner   = 2 // index in isoRoles
	isoOfficer = 4
)

// ---- the world ----

type isoApp struct {
	label         string
	home          int // tenant index
	appID, secret string
	multi, admin  bool
	sp            map[int]string // tenant index → service principal object id there
}

type isoVault struct {
	name, rg, id, secret, value string
}

type isoTenant struct {
	tc     tenantCreated
	rgs    []string
	vaults []isoVault
	// adminARM is the tenant admin's Resource Manager token, which sets
	// the world up and asks explain.
	adminARM string
}

func (t *isoTenant) sub() string { return "/subscriptions/" + t.tc.SubscriptionID }

type isoAssign struct {
	tenant    int
	scope     string
	role      int // index in isoRoles
	principal string
	label     string // the principal, for people
	id        string
	viaStore  bool
}

type isoDeny struct {
	tenant     int
	id, name   string
	scope      string
	op         string
	everyone   bool
	principals []string
	exclude    []string
	label      string
}

type isoWorld struct {
	tenants []*isoTenant
	apps    []*isoApp
	labels  map[string]string // object id → label
	// memberOf[tenant][object] are the groups object is a direct member of.
	memberOf map[int]map[string][]string
	assigns  []isoAssign
	denies   []isoDeny
}

// scopeCovers reports whether an assignment at scope applies at target:
// the same scope or an ancestor, on whole segments, case-insensitively.
func isoScopeCovers(scope, target string) bool {
	s, t := strings.ToLower(strings.TrimSuffix(scope, "/")), strings.ToLower(target)
	return s == t || strings.HasPrefix(t, s+"/")
}

// identities are the object id and every group it belongs to,
// transitively, in tenant, with the chain that reaches each.
func (w *isoWorld) identities(tenant int, oid string) map[string][]string {
	out := map[string][]string{oid: {oid}}
	queue := []string{oid}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, g := range w.memberOf[tenant][x] {
			if _, ok := out[g]; !ok {
				out[g] = append(slices.Clone(out[x]), g)
				queue = append(queue, g)
			}
		}
	}
	return out
}

func (w *isoWorld) label(id string) string {
	if l, ok := w.labels[id]; ok {
		return l
	}
	return id
}

func (w *isoWorld) path(p []string) string {
	var out []string
	for _, id := range p {
		out = append(out, w.label(id))
	}
	return strings.Join(out, " → ")
}

// predict is the model: may app, holding a token of tokenTenant, perform
// op at scope in targetTenant? It says why.
func (w *isoWorld) predict(app *isoApp, tokenTenant, targetTenant int, op, scope string) (bool, string) {
	if tokenTenant != targetTenant {
		return false, fmt.Sprintf("token of tenant %d used against tenant %d: refused before any role is looked at", tokenTenant, targetTenant)
	}
	oid := app.sp[tokenTenant]
	ids := w.identities(targetTenant, oid)
	for _, d := range w.denies {
		if d.tenant != targetTenant || d.op != op || !isoScopeCovers(d.scope, scope) {
			continue
		}
		excluded := false
		for _, x := range d.exclude {
			if _, ok := ids[x]; ok {
				excluded = true
			}
		}
		if excluded {
			continue
		}
		if d.everyone {
			return false, fmt.Sprintf("deny %s (%s) at %s applies to everyone", d.name, d.label, d.scope)
		}
		for _, p := range d.principals {
			if chain, ok := ids[p]; ok {
				return false, fmt.Sprintf("deny %s (%s) at %s applies via %s", d.name, d.label, d.scope, w.path(chain))
			}
		}
	}
	var grants []string
	for _, a := range w.assigns {
		if a.tenant != targetTenant || !isoScopeCovers(a.scope, scope) || !isoRoles[a.role].grants[op] {
			continue
		}
		if chain, ok := ids[a.principal]; ok {
			grants = append(grants, fmt.Sprintf("%s at %s via %s", isoRoles[a.role].name, a.scope, w.path(chain)))
		}
	}
	if len(grants) > 0 {
		return true, "granted by " + strings.Join(grants, "; ")
	}
	var held []string
	for _, a := range w.assigns {
		if a.tenant != targetTenant {
			continue
		}
		if chain, ok := ids[a.principal]; ok {
			held = append(held, fmt.Sprintf("%s at %s via %s", isoRoles[a.role].name, a.scope, w.path(chain)))
		}
	}
	return false, fmt.Sprintf("no assignment grants %s (the principal holds: [%s])", op, strings.Join(held, "; "))
}

// ---- HTTP ----

type isoHTTP struct {
	t *testing.T
	c *http.Client
}

func (h isoHTTP) do(method, u, bearer, body string) (int, []byte) {
	h.t.Helper()
	u = testenv.WithARMVersion(u)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// token asks login.microsoftonline.com for a client-credentials token.
func (h isoHTTP) token(tenantID, clientID, secret, resource string) (string, int, []byte) {
	h.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {resource + "/.default"}}
	req, _ := http.NewRequest("POST", "https://login.microsoftonline.com/"+tenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(b, &tr)
	return tr.AccessToken, resp.StatusCode, b
}

const (
	isoARM      = "https://management.azure.com"
	isoARMVer   = "?" + testenv.AnyARMVersion
	isoVaultVer = "?api-version=7.4"
)

func isoAssignmentURL(scope, id string) string {
	return isoARM + scope + "/providers/Microsoft.Authorization/roleAssignments/" + id + isoARMVer
}

// ---- decisions ----

type isoTarget struct {
	tenant  int
	op      string
	scope   string
	method  string
	url     string
	body    string
	exists  bool
	want    string // the secret value a successful get returns
	label   string
	isVault bool
}

type isoCase struct {
	app    *isoApp
	tokenT int
	tgt    *isoTarget
	status int
	body   []byte
}

func TestIsolationProved(t *testing.T) {
	seed := uint64(20261122)
	if s := os.Getenv("TENANTBRIDGE_ISOLATION_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TENANTBRIDGE_ISOLATION_SEED: %v", err)
		}
		seed = v
	}
	rounds := 8
	if testing.Short() {
		rounds = 2
	}
	t.Logf("seed %d (rerun with TENANTBRIDGE_ISOLATION_SEED=%d), %d rounds", seed, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	began := time.Now()

	r := start(t, server.Config{})
	ctx := context.Background()
	h := isoHTTP{t: t, c: r.client()}
	t.Cleanup(h.c.CloseIdleConnections) // runs before the server stops
	dir := r.srv.Directory()
	st := r.srv.Store()
	w := &isoWorld{labels: map[string]string{}, memberOf: map[int]map[string][]string{}}
	const nTenants = 3

	// Tenants, resource groups (through ARM), vaults and one secret each
	// (through the Key Vault data plane).
	for ti := range nTenants {
		tc := r.createTenant(t, fmt.Sprintf("iso%d", ti))
		ten := &isoTenant{tc: tc}
		w.tenants = append(w.tenants, ten)
		admin := &isoApp{label: fmt.Sprintf("t%d.admin", ti), home: ti, appID: tc.Admin.ClientID, secret: tc.Admin.ClientSecret,
			admin: true, sp: map[int]string{ti: tc.Admin.ServicePrincipalID}}
		w.apps = append(w.apps, admin)
		w.labels[tc.Admin.ServicePrincipalID] = admin.label
		// The admin owns the subscription from the start.
		w.assigns = append(w.assigns, isoAssign{tenant: ti, scope: ten.sub(), role: isoOwner, principal: tc.Admin.ServicePrincipalID, label: admin.label})
		tok, status, body := h.token(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret, isoARM)
		if tok == "" {
			t.Fatalf("admin ARM token: %d %s", status, body)
		}
		ten.adminARM = tok
		vtok, status, body := h.token(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret, vault.Resource)
		if vtok == "" {
			t.Fatalf("admin vault token: %d %s", status, body)
		}
		for gi := range 2 {
			rg := fmt.Sprintf("rg%d", gi)
			if status, body := h.do("PUT", isoARM+ten.sub()+"/resourceGroups/"+rg+isoARMVer, tok, `{"location":"westeurope"}`); status != http.StatusCreated {
				t.Fatalf("create %s: %d %s", rg, status, body)
			}
			ten.rgs = append(ten.rgs, rg)
			v, err := r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: tc.TenantID, Name: fmt.Sprintf("iso-t%d-kv%d", ti, gi), ResourceGroup: rg})
			if err != nil {
				t.Fatal(err)
			}
			iv := isoVault{name: v.Name, rg: rg, id: v.ResourceID, secret: fmt.Sprintf("s%d", gi), value: fmt.Sprintf("value-%d-%d-%d", seed, ti, gi)}
			// The admin writes the secret under a temporary Secrets Officer grant.
			tmp := store.RoleAssignment{TenantID: tc.TenantID, ID: uuid.NewString(), Scope: v.ResourceID, RoleDefinitionID: isoRoles[isoOfficer].id,
				PrincipalID: tc.Admin.ServicePrincipalID, PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()}
			if err := st.CreateRoleAssignment(ctx, tmp); err != nil {
				t.Fatal(err)
			}
			if status, body := h.do("PUT", "https://"+v.Name+".vault.azure.net/secrets/"+iv.secret+isoVaultVer, vtok, `{"value":"`+iv.value+`"}`); status != http.StatusOK {
				t.Fatalf("set secret: %d %s", status, body)
			}
			if err := st.DeleteRoleAssignment(ctx, tc.TenantID, tmp.ID); err != nil {
				t.Fatal(err)
			}
			ten.vaults = append(ten.vaults, iv)
		}
	}

	// Applications: in each tenant a single-tenant and a multi-tenant one,
	// each with a client secret and its service principal at home.
	for ti, ten := range w.tenants {
		for _, multi := range []bool{false, true} {
			kind, aud := "local", directory.AudienceMyOrg
			if multi {
				kind, aud = "multi", directory.AudienceMultipleOrgs
			}
			app, err := dir.CreateApplication(ctx, ten.tc.TenantID, directory.Application{DisplayName: fmt.Sprintf("iso-%d-%s", ti, kind), SignInAudience: aud})
			if err != nil {
				t.Fatal(err)
			}
			cred, err := dir.AddApplicationPassword(ctx, ten.tc.TenantID, app.ID, "test", time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			sp, err := dir.CreateServicePrincipal(ctx, ten.tc.TenantID, app.AppID)
			if err != nil {
				t.Fatal(err)
			}
			a := &isoApp{label: fmt.Sprintf("t%d.%s", ti, kind), home: ti, appID: app.AppID, secret: cred.SecretText, multi: multi, sp: map[int]string{ti: sp.ID}}
			if a.secret == "" {
				t.Fatalf("no secret text returned for %s", a.label)
			}
			w.apps = append(w.apps, a)
			w.labels[sp.ID] = a.label
		}
	}
	// Foreign service principals: every tenant consents to the next
	// tenant's multi-tenant app, and at random to the other one; at least
	// one pair stays unprovisioned.
	var provisions [][2]int // (tenant, home of the app)
	for ti := range nTenants {
		provisions = append(provisions, [2]int{ti, (ti + 1) % nTenants})
		if rng.IntN(2) == 0 && len(provisions) < 2*nTenants-1 {
			provisions = append(provisions, [2]int{ti, (ti + 2) % nTenants})
		}
	}
	for _, p := range provisions {
		for _, a := range w.apps {
			if a.multi && a.home == p[1] {
				sp, err := dir.CreateServicePrincipal(ctx, w.tenants[p[0]].tc.TenantID, a.appID)
				if err != nil {
					t.Fatal(err)
				}
				a.sp[p[0]] = sp.ID
				w.labels[sp.ID] = fmt.Sprintf("%s@t%d", a.label, p[0])
			}
		}
	}
	for ti, ten := range w.tenants {
		w.labels[ten.tc.TenantID] = fmt.Sprintf("tenant %d", ti)
	}

	// Tokens: every principal asks every tenant, for both resources. It
	// gets one exactly where its service principal is; elsewhere the
	// answer is AADSTS700016.
	type tokKey struct {
		app    *isoApp
		tenant int
	}
	armTok, kvTok := map[tokKey]string{}, map[tokKey]string{}
	tokenChecks, tokenRefusals := 0, 0
	for _, a := range w.apps {
		for ti, ten := range w.tenants {
			for _, res := range []string{isoARM, vault.Resource} {
				tok, status, body := h.token(ten.tc.TenantID, a.appID, a.secret, res)
				tokenChecks++
				_, has := a.sp[ti]
				switch {
				case has && tok == "":
					t.Errorf("%s in tenant %d (%s): no token: %d %s", a.label, ti, res, status, body)
				case !has && (tok != "" || status < 400 || !strings.Contains(string(body), "AADSTS700016")):
					t.Errorf("%s in tenant %d without a service principal there: want AADSTS700016, got %d %s", a.label, ti, status, body)
				case !has:
					tokenRefusals++
				case res == isoARM:
					armTok[tokKey{a, ti}] = tok
				default:
					kvTok[tokKey{a, ti}] = tok
				}
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Role assignments cross no tenant line through ARM either: another
	// tenant's admin is refused at the door, and a principal of another
	// tenant cannot be named.
	for ti, ten := range w.tenants {
		other := w.tenants[(ti+1)%nTenants]
		body := fmt.Sprintf(`{"properties":{"roleDefinitionId":"%s/providers/Microsoft.Authorization/roleDefinitions/%s","principalId":"%s"}}`,
			ten.sub(), isoRoles[isoOwner].id, other.tc.Admin.ServicePrincipalID)
		if status, b := h.do("PUT", isoAssignmentURL(ten.sub(), uuid.NewString()), other.adminARM, body); status != http.StatusUnauthorized || !strings.Contains(string(b), "InvalidAuthenticationTokenTenant") {
			t.Errorf("tenant %d admin assigning a role in tenant %d: %d %s", (ti+1)%nTenants, ti, status, b)
		}
		if status, b := h.do("PUT", isoAssignmentURL(ten.sub(), uuid.NewString()), ten.adminARM, body); status != http.StatusBadRequest || !strings.Contains(string(b), "PrincipalNotFound") {
			t.Errorf("tenant %d admin naming tenant %d's principal: %d %s", ti, (ti+1)%nTenants, status, b)
		}
	}

	// Targets: per tenant, each group read (and a group that does not
	// exist), each group written, each secret read (and one that does not
	// exist in each vault).
	var targets []*isoTarget
	for ti, ten := range w.tenants {
		for _, rg := range append(slices.Clone(ten.rgs), "ghost") {
			scope := ten.sub() + "/resourceGroups/" + rg
			targets = append(targets, &isoTarget{tenant: ti, op: isoOpRGRead, scope: scope, method: "GET", url: isoARM + scope + isoARMVer,
				exists: rg != "ghost", label: fmt.Sprintf("GET t%d/%s", ti, rg)})
			if rg != "ghost" {
				targets = append(targets, &isoTarget{tenant: ti, op: isoOpRGWrite, scope: scope, method: "PUT", url: isoARM + scope + isoARMVer,
					body: `{"location":"westeurope","tags":{"touched":"yes"}}`, exists: true, label: fmt.Sprintf("PUT t%d/%s", ti, rg)})
			}
		}
		for _, v := range ten.vaults {
			for _, name := range []string{v.secret, "missing"} {
				targets = append(targets, &isoTarget{tenant: ti, op: isoOpGetSecret, scope: v.id + "/secrets/" + name, method: "GET",
					url: "https://" + v.name + ".vault.azure.net/secrets/" + name + isoVaultVer, exists: name == v.secret, want: v.value,
					label: fmt.Sprintf("getSecret %s/%s", v.name, name), isVault: true})
			}
		}
	}

	var (
		decisions, allowed, refused, byDeny, crossTenant, crossSucceeded, mismatches, explained int
	)
	bootstrap := slices.Clone(w.assigns)
	for round := range rounds {
		w.assigns = slices.Clone(bootstrap)
		w.denies = nil
		w.memberOf = map[int]map[string][]string{}

		// Groups, nested, with random members (foreign service principals included).
		for ti, ten := range w.tenants {
			w.memberOf[ti] = map[string][]string{}
			var members []string
			for _, a := range w.apps {
				if oid, ok := a.sp[ti]; ok && !a.admin {
					members = append(members, oid)
				}
			}
			var groups []string
			for gi := range 1 + rng.IntN(2) {
				g, err := dir.CreateGroup(ctx, ten.tc.TenantID, directory.Group{DisplayName: fmt.Sprintf("iso-r%d-g%d", round, gi)})
				if err != nil {
					t.Fatal(err)
				}
				w.labels[g.ID] = fmt.Sprintf("t%d.group%d.r%d", ti, gi, round)
				if gi > 0 { // nested: group1 ∈ group0
					if err := dir.AddMember(ctx, ten.tc.TenantID, groups[0], g.ID); err != nil {
						t.Fatal(err)
					}
					w.memberOf[ti][g.ID] = append(w.memberOf[ti][g.ID], groups[0])
				}
				groups = append(groups, g.ID)
				for _, m := range members {
					if rng.IntN(3) == 0 {
						if err := dir.AddMember(ctx, ten.tc.TenantID, g.ID, m); err != nil {
							t.Fatal(err)
						}
						w.memberOf[ti][m] = append(w.memberOf[ti][m], g.ID)
					}
				}
			}
			principals := append(slices.Clone(members), groups...)

			// Scopes: the subscription, each group, each vault, each secret.
			scopes := []string{ten.sub()}
			for _, rg := range ten.rgs {
				scopes = append(scopes, ten.sub()+"/resourceGroups/"+rg)
			}
			for _, v := range ten.vaults {
				scopes = append(scopes, v.id, v.id+"/secrets/"+v.secret)
			}

			// Role assignments through ARM, by the tenant's admin.
			seen := map[string]bool{}
			for range 5 + rng.IntN(6) {
				a := isoAssign{tenant: ti, scope: scopes[rng.IntN(len(scopes))], role: rng.IntN(len(isoRoles)), principal: principals[rng.IntN(len(principals))], id: uuid.NewString()}
				key := fmt.Sprint(a.scope, a.role, a.principal)
				if seen[key] {
					continue
				}
				seen[key] = true
				a.label = w.label(a.principal)
				body := fmt.Sprintf(`{"properties":{"roleDefinitionId":"%s/providers/Microsoft.Authorization/roleDefinitions/%s","principalId":"%s"}}`,
					ten.sub(), isoRoles[a.role].id, a.principal)
				if status, b := h.do("PUT", isoAssignmentURL(a.scope, a.id), ten.adminARM, body); status != http.StatusCreated {
					t.Fatalf("assign %s at %s to %s: %d %s", isoRoles[a.role].name, a.scope, a.label, status, b)
				}
				w.assigns = append(w.assigns, a)
			}

			// A stray assignment in this tenant naming another tenant's
			// principal object (as a bug or a hostile import might leave
			// one): it must grant nothing to anyone.
			oi := (ti + 1 + rng.IntN(nTenants-1)) % nTenants
			var foreign []*isoApp
			for _, a := range w.apps {
				if _, ok := a.sp[oi]; ok {
					foreign = append(foreign, a)
				}
			}
			fa := foreign[rng.IntN(len(foreign))]
			stray := isoAssign{tenant: ti, scope: ten.sub(), role: []int{isoOwner, isoOfficer}[rng.IntN(2)], principal: fa.sp[oi],
				label: w.label(fa.sp[oi]) + " (tenant " + strconv.Itoa(oi) + "'s object)", id: uuid.NewString(), viaStore: true}
			err := st.CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: ten.tc.TenantID, ID: stray.id, Scope: stray.scope,
				RoleDefinitionID: isoRoles[stray.role].id, PrincipalID: stray.principal, PrincipalType: store.PrincipalServicePrincipal,
				PrincipalTenantID: w.tenants[oi].tc.TenantID, CreatedOn: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			w.assigns = append(w.assigns, stray)

			// Deny assignments (the platform's): in two tenants of three on average.
			if rng.IntN(3) < 2 || (ti == nTenants-1 && len(w.denies) == 0) {
				d := isoDeny{tenant: ti, id: uuid.NewString(), name: fmt.Sprintf("iso-deny-r%d-t%d", round, ti)}
				p := principals[rng.IntN(len(principals))]
				ptype := store.PrincipalServicePrincipal
				if slices.Contains(groups, p) {
					ptype = store.PrincipalGroup
				}
				var perm store.Permission
				sd := store.DenyAssignment{TenantID: ten.tc.TenantID, ID: d.id, Name: d.name, IsSystemProtected: true, CreatedOn: time.Now(), CreatedBy: "platform"}
				switch rng.IntN(3) {
				case 0: // getSecret denied to one principal at a group or a vault
					d.op, d.scope = isoOpGetSecret, scopes[1+rng.IntN(len(scopes)-1)]
					d.principals = []string{p}
					d.label = "getSecret for " + w.label(p)
					perm.DataActions = []string{isoOpGetSecret}
					sd.Principals = []store.DenyPrincipal{{ID: p, Type: ptype}}
				case 1: // getSecret denied to everyone but one, anywhere
					d.op, d.scope = isoOpGetSecret, scopes[rng.IntN(len(scopes))]
					d.everyone, d.exclude = true, []string{p}
					d.label = "getSecret for everyone except " + w.label(p)
					perm.DataActions = []string{isoOpGetSecret}
					sd.Principals = []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}}
					sd.ExcludePrincipals = []store.DenyPrincipal{{ID: p, Type: ptype}}
				default: // group writes denied to one principal at the subscription or a group
					d.op, d.scope = isoOpRGWrite, scopes[rng.IntN(1+len(ten.rgs))]
					d.principals = []string{p}
					d.label = "resource group write for " + w.label(p)
					perm.Actions = []string{isoOpRGWrite}
					sd.Principals = []store.DenyPrincipal{{ID: p, Type: ptype}}
				}
				sd.Scope, sd.Permissions = d.scope, []store.Permission{perm}
				if err := st.CreateDenyAssignment(ctx, sd); err != nil {
					t.Fatal(err)
				}
				w.denies = append(w.denies, d)
			}
		}

		// Every principal, with its token of every tenant it has one in,
		// against every target of every tenant.
		var cases []*isoCase
		for _, a := range w.apps {
			for ti := range w.tenants {
				if _, ok := a.sp[ti]; !ok {
					continue
				}
				for _, tg := range targets {
					cases = append(cases, &isoCase{app: a, tokenT: ti, tgt: tg})
				}
			}
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, c := range cases {
			tok := armTok[tokKey{c.app, c.tokenT}]
			if c.tgt.isVault {
				tok = kvTok[tokKey{c.app, c.tokenT}]
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				req, _ := http.NewRequest(c.tgt.method, testenv.WithARMVersion(c.tgt.url), strings.NewReader(c.tgt.body))
				req.Header.Set("Authorization", "Bearer "+tok)
				if c.tgt.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := h.c.Do(req)
				if err != nil {
					c.status, c.body = -1, []byte(err.Error())
					return
				}
				c.body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				c.status = resp.StatusCode
			}()
		}
		wg.Wait()

		for _, c := range cases {
			decisions++
			cross := c.tokenT != c.tgt.tenant
			want, why := w.predict(c.app, c.tokenT, c.tgt.tenant, c.tgt.op, c.tgt.scope)
			var ok bool
			switch {
			case cross:
				crossTenant++
				if c.status >= 200 && c.status < 300 {
					crossSucceeded++
				}
				marker := "InvalidAuthenticationTokenTenant"
				if c.tgt.isVault {
					marker = "AKV10032"
				}
				ok = c.status == http.StatusUnauthorized && strings.Contains(string(c.body), marker)
			case want:
				allowed++
				switch {
				case !c.tgt.exists:
					ok = c.status == http.StatusNotFound
				case c.tgt.isVault:
					var sec struct{ Value string }
					_ = json.Unmarshal(c.body, &sec)
					ok = c.status == http.StatusOK && sec.Value == c.tgt.want
				default:
					ok = c.status == http.StatusOK
				}
			default:
				refused++
				if strings.HasPrefix(why, "deny ") {
					byDeny++
				}
				ok = c.status == http.StatusForbidden
			}
			if ok {
				continue
			}
			mismatches++
			if mismatches > 20 {
				continue
			}
			ex := "(explain not asked)"
			if explained < 10 {
				explained++
				tgtTen := w.tenants[c.tgt.tenant]
				q := url.Values{"principalId": {c.app.sp[c.tokenT]}, "action": {c.tgt.op}, "scope": {c.tgt.scope},
					"dataAction": {strconv.FormatBool(c.tgt.op == isoOpGetSecret)}, "api-version": {"2022-04-01"}}
				status, b := h.do("GET", isoARM+"/providers/TenantBridge.Authorization/explain?"+q.Encode(), tgtTen.adminARM, "")
				ex = fmt.Sprintf("%d %s", status, b)
			}
			body := string(c.body)
			if len(body) > 600 {
				body = body[:600] + "…"
			}
			t.Errorf("round %d: %s with its tenant-%d token: %s %s\n  model: allowed=%v cross-tenant=%v: %s\n  server: %d %s\n  explain: %s",
				round, c.app.label, c.tokenT, c.tgt.label, c.tgt.scope, want, cross, why, c.status, body, ex)
		}

		// Tear the round down: its assignments through ARM, the stray ones
		// and the denies through the store.
		for _, a := range w.assigns[len(bootstrap):] {
			ten := w.tenants[a.tenant]
			if a.viaStore {
				if err := st.DeleteRoleAssignment(ctx, ten.tc.TenantID, a.id); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if status, b := h.do("DELETE", isoAssignmentURL(a.scope, a.id), ten.adminARM, ""); status != http.StatusOK {
				t.Fatalf("delete assignment %s: %d %s", a.id, status, b)
			}
		}
		for _, d := range w.denies {
			if err := st.DeleteDenyAssignment(ctx, w.tenants[d.tenant].tc.TenantID, d.id); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("round %d: %d assignments, %d denies, %d decisions", round, len(w.assigns), len(w.denies), len(cases))
	}

	t.Logf("token requests checked: %d (%d refused with AADSTS700016)", tokenChecks, tokenRefusals)
	t.Logf("decisions checked: %d — allowed %d, refused by RBAC %d (%d by a deny assignment), cross-tenant %d (all must be 401); mismatches %d; %v",
		decisions, allowed, refused, byDeny, crossTenant, mismatches, time.Since(began).Round(time.Millisecond))
	if crossSucceeded > 0 {
		t.Fatalf("ISOLATION BROKEN: %d requests with one tenant's token succeeded against another tenant's data", crossSucceeded)
	}
	if allowed == 0 || refused == 0 || crossTenant == 0 || (!testing.Short() && byDeny == 0) {
		t.Fatalf("degenerate world: allowed %d, refused %d (%d by a deny), cross-tenant %d", allowed, refused, byDeny, crossTenant)
	}
}
