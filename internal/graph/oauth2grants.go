package graph

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// Delegated permission grants (oauth2PermissionGrants): which scopes a
// client service principal may use on a resource service principal, for
// one user (consentType Principal) or for every user of the tenant
// (AllPrincipals). The rules (the client, resource and principal exist in
// the tenant, every scope is a delegated scope of the resource, one grant
// per client, resource and principal) are the directory's; this file
// speaks Graph's wire for them.

var (
	grantListQuery = querySpec{collection: true, resource: "OAuth2PermissionGrant", selectable: oauth2PermissionGrantProperties}
	grantGetQuery  = querySpec{resource: "OAuth2PermissionGrant", selectable: oauth2PermissionGrantProperties}
)

// grantFilterProperties are the properties Graph lets $filter test on a
// grant (eq only).
var grantFilterProperties = []string{"clientId", "consentType", "principalId", "resourceId"}

// parseGrantQuery reads a grant collection's options. $filter is read here
// rather than by parseQuery, because grants filter on their own
// properties and accept clauses joined by "and". none reports a filter
// that can match nothing.
func parseGrantQuery(rawQuery string) (opts queryOptions, f directory.GrantFilter, none bool, err error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return opts, f, false, badRequest("The query string is malformed.")
	}
	fv, hasFilter := values["$filter"]
	delete(values, "$filter")
	if opts, err = parseQuery(values.Encode(), grantListQuery); err != nil {
		return opts, f, false, err
	}
	if !hasFilter {
		return opts, f, false, nil
	}
	if len(fv) != 1 {
		return opts, f, false, badRequest("Query option '$filter' was specified more than once.")
	}
	v := fv[0]
	if len(v) > maxQueryOption || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return opts, f, false, badRequest("Query option '$filter' is not valid.")
	}
	opts.rawFilter = v
	f, none, err = parseGrantFilter(v)
	return opts, f, none, err
}

// parseGrantFilter reads clauses of the form PROPERTY eq 'literal', joined
// by "and", each property at most once.
func parseGrantFilter(s string) (f directory.GrantFilter, none bool, err error) {
	invalid := func(msg string) error {
		return unsupportedQuery("Unsupported or invalid query filter clause specified: %s.", msg)
	}
	seen := map[string]bool{}
	rest := strings.TrimSpace(s)
	for {
		prop, after := cutIdentifier(rest)
		if prop == "" {
			return f, false, invalid("expected a property name")
		}
		i := slices.IndexFunc(grantFilterProperties, func(p string) bool { return strings.EqualFold(p, prop) })
		if i < 0 {
			return f, false, unsupportedQuery("Unsupported or invalid query filter clause specified for property '%s' of resource 'OAuth2PermissionGrant'.", safeText(prop))
		}
		prop = grantFilterProperties[i]
		if seen[prop] {
			return f, false, invalid("property '" + prop + "' is tested more than once")
		}
		seen[prop] = true
		op, after := cutIdentifier(strings.TrimLeft(after, " "))
		if !strings.EqualFold(op, "eq") {
			return f, false, invalid("only the eq operator is supported")
		}
		value, after, ok := parseStringLiteral(strings.TrimLeft(after, " "))
		if !ok {
			return f, false, invalid("expected a string literal in single quotes")
		}
		if value == "" {
			none = true // every one of these properties is non-empty on a match
		}
		switch prop {
		case "clientId":
			f.ClientID = normalizeID(value)
		case "resourceId":
			f.ResourceID = normalizeID(value)
		case "principalId":
			f.PrincipalID = normalizeID(value)
		case "consentType":
			switch {
			case strings.EqualFold(value, directory.ConsentAllPrincipals):
				f.ConsentType = directory.ConsentAllPrincipals
			case strings.EqualFold(value, directory.ConsentPrincipal):
				f.ConsentType = directory.ConsentPrincipal
			default:
				none = true
			}
		}
		after = strings.TrimLeft(after, " ")
		if after == "" {
			return f, none, nil
		}
		kw, next := cutIdentifier(after)
		if !strings.EqualFold(kw, "and") || !strings.HasPrefix(next, " ") {
			return f, false, invalid("clauses may be joined by 'and' only")
		}
		rest = strings.TrimLeft(next, " ")
	}
}

// writeGrants answers a grant collection GET: the grants that match f
// and the caller's filter, a page at a time.
func (h *Handler) writeGrants(rq *request, set string, opts queryOptions, f directory.GrantFilter) error {
	gs, err := h.dir.ListDelegatedGrants(rq.ctx, rq.tenant(), f)
	if err != nil {
		return err
	}
	var p page
	gs, p.more = pageOf(gs, func(g *directory.OAuth2PermissionGrant) string { return g.ID }, opts)
	for _, g := range gs {
		if err := p.add(g.ID, grantToView(g)); err != nil {
			return err
		}
	}
	return h.writeCollection(rq, set, opts, p)
}

// listGrants handles GET /oauth2PermissionGrants.
func (h *Handler) listGrants(rq *request) error {
	opts, f, none, err := parseGrantQuery(rq.r.URL.RawQuery)
	if err != nil {
		return err
	}
	if none {
		return h.writeCollection(rq, "oauth2PermissionGrants", opts, page{})
	}
	return h.writeGrants(rq, "oauth2PermissionGrants", opts, f)
}

// listServicePrincipalGrants handles GET
// /servicePrincipals/{id}/oauth2PermissionGrants: the grants the service
// principal is the client of.
func (h *Handler) listServicePrincipalGrants(rq *request) error {
	return h.listGrantsOf(rq, "servicePrincipals", h.servicePrincipalObject,
		func(f *directory.GrantFilter) *string { return &f.ClientID })
}

// listUserGrants handles GET /users/{id}/oauth2PermissionGrants: the
// grants made for the user alone.
func (h *Handler) listUserGrants(rq *request) error {
	return h.listGrantsOf(rq, "users", func(rq *request, dir *directory.Service) (string, error) {
		u, err := h.loadUser(rq, dir)
		if err != nil {
			return "", err
		}
		return u.ID, nil
	}, func(f *directory.GrantFilter) *string { return &f.PrincipalID })
}

// listGrantsOf lists the grants of the object the path names in set (load
// finds its id): those whose field (of the filter) is that id.
func (h *Handler) listGrantsOf(rq *request, set string, load func(*request, *directory.Service) (string, error),
	field func(*directory.GrantFilter) *string) error {
	opts, f, none, err := parseGrantQuery(rq.r.URL.RawQuery)
	if err != nil {
		return err
	}
	id, err := load(rq, h.dir)
	if err != nil {
		return err
	}
	set += "('" + id + "')/oauth2PermissionGrants"
	if v := field(&f); none || (*v != "" && *v != id) {
		return h.writeCollection(rq, set, opts, page{})
	}
	*field(&f) = id
	return h.writeGrants(rq, set, opts, f)
}

// loadGrant finds the grant the path names in the caller's tenant.
func (h *Handler) loadGrant(rq *request, dir *directory.Service) (*directory.OAuth2PermissionGrant, error) {
	id := rq.pathID("id")
	if rq.path.byAppID || !validID(id) {
		return nil, notFound(id)
	}
	g, err := dir.GetDelegatedGrant(rq.ctx, rq.tenant(), strings.ToLower(id))
	if errors.Is(err, directory.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	rq.target = g.ID
	return g, nil
}

func grantDetail(g *directory.OAuth2PermissionGrant) string {
	d := "client=" + g.ClientID + " resource=" + g.ResourceID + " consentType=" + g.ConsentType
	if g.PrincipalID != "" {
		d += " principal=" + g.PrincipalID
	}
	return d + " scope=" + strings.ReplaceAll(g.Scope, " ", ",")
}

// getGrant handles GET /oauth2PermissionGrants/{id}.
func (h *Handler) getGrant(rq *request) error {
	return getEntity(h, rq, grantGetQuery, "oauth2PermissionGrants", h.loadGrant, grantToView)
}

// createGrant handles POST /oauth2PermissionGrants. A second grant for the
// same client, resource and principal is Graph's 409.
func (h *Handler) createGrant(rq *request) error {
	var in oauth2PermissionGrantInput
	if err := readInput(rq, &in, oauth2PermissionGrantReadOnly); err != nil {
		return err
	}
	for _, req := range []struct {
		name  string
		value *string
	}{{"clientId", in.ClientID}, {"consentType", in.ConsentType}, {"resourceId", in.ResourceID}} {
		if req.value == nil || *req.value == "" {
			return badRequest("Missing property: %s.", req.name)
		}
	}
	if *in.ConsentType == directory.ConsentPrincipal && deref(in.PrincipalID) == "" {
		return badRequest("Missing property: principalId.")
	}
	g := directory.OAuth2PermissionGrant{ClientID: normalizeID(*in.ClientID), ConsentType: *in.ConsentType,
		PrincipalID: normalizeID(deref(in.PrincipalID)), ResourceID: normalizeID(*in.ResourceID), Scope: deref(in.Scope)}
	rq.detail = grantDetail(&g)
	var created *directory.OAuth2PermissionGrant
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		c, err := tx.CreateDelegatedGrant(rq.ctx, rq.tenant(), g)
		if err != nil {
			return "", err
		}
		created = c
		rq.detail = grantDetail(c)
		return c.ID, nil
	})
	if errors.Is(err, directory.ErrConflict) {
		msg, _ := directory.ConflictMessage(err)
		return duplicateKey("%s", msg)
	}
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusCreated, "oauth2PermissionGrants", nil, grantToView(created))
}

// updateGrant handles PATCH /oauth2PermissionGrants/{id}: only scope
// changes; the other properties are fixed at creation.
func (h *Handler) updateGrant(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) == nil {
		for _, name := range oauth2PermissionGrantFixed {
			if _, ok := top[name]; ok {
				return badRequest("Property cannot be updated: %s", name)
			}
		}
	}
	var in oauth2PermissionGrantInput
	if err := decodeBody(body, &in, nil); err != nil {
		return err
	}
	return h.changeGrant(rq, func(tx *directory.Service, g *directory.OAuth2PermissionGrant) error {
		if in.Scope != nil {
			var err error
			if g, err = tx.UpdateDelegatedGrantScope(rq.ctx, rq.tenant(), g.ID, *in.Scope); err != nil {
				return err
			}
		}
		rq.detail = grantDetail(g)
		return nil
	})
}

// deleteGrant handles DELETE /oauth2PermissionGrants/{id}: the client can
// no longer get tokens with the grant's scopes.
func (h *Handler) deleteGrant(rq *request) error {
	return h.changeGrant(rq, func(tx *directory.Service, g *directory.OAuth2PermissionGrant) error {
		rq.detail = grantDetail(g)
		return tx.DeleteDelegatedGrant(rq.ctx, rq.tenant(), g.ID)
	})
}

// changeGrant is changeEntity on the grant the path names.
func (h *Handler) changeGrant(rq *request, fn func(tx *directory.Service, g *directory.OAuth2PermissionGrant) error) error {
	return changeEntity(h, rq, h.loadGrant, func(g *directory.OAuth2PermissionGrant) string { return g.ID }, fn)
}
