package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// requested returns what the flow's client asks for: v2 (and device) from
// the scope parameter, v1 from what the app declares for the resource
// (plus the OpenID scopes asked for), admin consent everything declared
// or the scope parameter with application permissions.
func (h *Handler) requested(ctx context.Context, f *flow, app *directory.Application) (directory.Permissions, error) {
	switch {
	case f.Kind == kindAdminConsent && f.Req.Version == 1:
		return h.dir.RequestedPermissions(ctx, app)
	case f.Kind == kindAdminConsent:
		return h.dir.ParseScopeParam(ctx, f.TenantID, app, f.Req.Scope, true)
	case f.Req.Version == 1:
		var p directory.Permissions
		oidc := ""
		for _, s := range strings.Fields(f.Req.Scope) {
			if directory.IsOIDCScope(s) {
				oidc += " " + s
			}
		}
		if strings.TrimSpace(oidc) != "" {
			op, err := h.dir.ParseScopeParam(ctx, f.TenantID, app, oidc, false)
			if err != nil {
				return p, err
			}
			p = op
		}
		if f.Req.Resource == "" {
			return p, nil
		}
		resApp, err := h.dir.ResolveResource(ctx, f.TenantID, app, f.Req.Resource)
		if err != nil {
			return p, err
		}
		declared, err := h.dir.RequestedPermissions(ctx, app)
		if err != nil {
			return p, err
		}
		if p.Delegated == nil {
			p.Delegated = map[string][]string{}
		}
		for _, v := range declared.Delegated[resApp] {
			if !containsFold(p.Delegated[resApp], v) {
				p.Delegated[resApp] = append(p.Delegated[resApp], v)
			}
		}
		return p, nil
	default:
		return h.dir.ParseScopeParam(ctx, f.TenantID, app, f.Req.Scope, false)
	}
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
}

// missing returns the delegated scopes of p the user has not consented to
// (for themselves or through an admin), after checking that each exists.
func (h *Handler) missing(ctx context.Context, tenantID string, app *directory.Application, userID string, p directory.Permissions) (directory.Permissions, error) {
	out := directory.Permissions{Delegated: map[string][]string{}}
	client, err := h.dir.ServicePrincipalByAppID(ctx, tenantID, app.AppID)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return out, err
	}
	for resAppID, values := range p.Delegated {
		res, err := h.dir.ApplicationByAppID(ctx, resAppID)
		if err != nil {
			return out, err
		}
		for _, v := range values {
			if _, ok := scopeDef(res, v); !ok {
				return out, &directory.ConsentError{Code: directory.CodeScopeNotFound, Msg: fmt.Sprintf(
					"The application '%s' asked for scope '%s' that doesn't exist on the resource '%s'. Contact the app vendor.", app.AppID, v, res.AppID)}
			}
		}
		var consented []string
		if client != nil {
			if resSP, err := h.dir.ServicePrincipalByAppID(ctx, tenantID, resAppID); err == nil {
				if consented, err = h.dir.ConsentedScopes(ctx, tenantID, client.ID, userID, resSP.ID); err != nil {
					return out, err
				}
			} else if !errors.Is(err, directory.ErrNotFound) {
				return out, err
			}
		}
		for _, v := range values {
			if !containsFold(consented, v) {
				out.Delegated[resAppID] = append(out.Delegated[resAppID], v)
			}
		}
	}
	return out, nil
}

func scopeDef(res *directory.Application, v string) (directory.PermissionScope, bool) {
	for _, s := range res.OAuth2PermissionScopes {
		if s.IsEnabled && strings.EqualFold(s.Value, v) {
			return s, true
		}
	}
	return directory.PermissionScope{}, false
}

// needsAdmin reports whether any delegated scope of p is of type Admin.
func (h *Handler) needsAdmin(ctx context.Context, p directory.Permissions) bool {
	for resAppID, values := range p.Delegated {
		res, err := h.dir.ApplicationByAppID(ctx, resAppID)
		if err != nil {
			return true
		}
		for _, v := range values {
			if s, ok := scopeDef(res, v); !ok || s.Type != "User" {
				return true
			}
		}
	}
	for _, values := range p.AppRoles {
		if len(values) > 0 {
			return true
		}
	}
	return false
}

// views describes each permission of p for the consent page.
func (h *Handler) views(ctx context.Context, p directory.Permissions, admin bool) []permissionView {
	var out []permissionView
	for _, resAppID := range sortedMapKeys(p.Delegated) {
		res, err := h.dir.ApplicationByAppID(ctx, resAppID)
		if err != nil {
			continue
		}
		for _, v := range p.Delegated[resAppID] {
			s, ok := scopeDef(res, v)
			if !ok {
				continue
			}
			name, desc := s.UserConsentDisplayName, s.UserConsentDescription
			if admin || name == "" {
				name, desc = s.AdminConsentDisplayName, s.AdminConsentDescription
			}
			if name == "" {
				name = s.Value
			}
			out = append(out, permissionView{Name: name, Description: desc + " (" + res.DisplayName + ")", Value: s.Value, AdminOnly: s.Type != "User"})
		}
	}
	for _, resAppID := range sortedMapKeys(p.AppRoles) {
		res, err := h.dir.ApplicationByAppID(ctx, resAppID)
		if err != nil {
			continue
		}
		for _, v := range p.AppRoles[resAppID] {
			for _, r := range res.AppRoles {
				if strings.EqualFold(r.Value, v) {
					name := r.DisplayName
					if name == "" {
						name = r.Value
					}
					out = append(out, permissionView{Name: name, Description: r.Description + " (" + res.DisplayName + ")", Value: r.Value, AdminOnly: true, AppOnly: true})
				}
			}
		}
	}
	return out
}

func sortedMapKeys(m map[string][]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// consentErr maps a directory refusal to the error the client gets.
func consentErr(err error) (*authError, bool) {
	var ce *directory.ConsentError
	if !errors.As(err, &ce) {
		return nil, false
	}
	oauth := "invalid_request"
	switch ce.Code {
	case directory.CodeClientNotFound:
		oauth = "unauthorized_client"
	case directory.CodeScopeNotFound:
		oauth = "invalid_client"
	case directory.CodeInvalidScope:
		oauth = "invalid_scope"
	case directory.CodeResourceNotFound:
		oauth = "invalid_resource"
	case directory.CodeAdminConsentNeeded, directory.CodeConsentRequired:
		oauth = "access_denied"
	}
	return &authError{status: http.StatusBadRequest, oauth: oauth, code: ce.Code, msg: ce.Msg}, true
}

// failErr ends the flow for err: a consent refusal goes to the client (or
// page), anything else is a server error.
func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, f *flow, err error) {
	if ae, ok := consentErr(err); ok {
		h.fail(w, r, f, ae)
		return
	}
	h.serverError(w, r, err)
}

// consentContext is what deciding on consent needs.
type consentContext struct {
	app       *directory.Application
	publisher string
	domain    string
	asked     directory.Permissions // what the page shows and Accept grants
	admin     bool
	graphOK   bool
	policy    directory.SignInPolicy
}

func (h *Handler) consentContext(ctx context.Context, f *flow, user *directory.User) (*consentContext, bool, error) {
	app, err := h.dir.ClientApplication(ctx, f.TenantID, f.Req.ClientID)
	if err != nil {
		return nil, false, err
	}
	c := &consentContext{app: app}
	if t, err := h.dir.Store().GetTenant(ctx, app.TenantID); err == nil {
		c.publisher, c.domain = t.Name, t.Domain
	}
	if app.PublisherDomain != "" {
		c.domain = app.PublisherDomain
	}
	req, err := h.requested(ctx, f, app)
	if err != nil {
		return nil, false, err
	}
	roles, err := h.dir.DirectoryRolesOf(ctx, f.TenantID, user.ID)
	if err != nil {
		return nil, false, err
	}
	c.admin, c.graphOK = directory.CanConsentForOrganization(roles), directory.CanConsentToGraphAppRoles(roles)
	if c.policy, err = h.dir.SignInPolicy(ctx, f.TenantID); err != nil {
		return nil, false, err
	}
	if f.Kind == kindAdminConsent {
		c.asked = req
		return c, true, nil
	}
	miss, err := h.missing(ctx, f.TenantID, app, user.ID, req)
	if err != nil {
		return nil, false, err
	}
	if miss.Empty() && !f.ForceConsent {
		return c, false, nil
	}
	c.asked = miss
	if f.ForceConsent {
		c.asked = req
	}
	return c, true, nil
}

// showConsent renders the consent page, or the page that says an admin
// must approve.
func (h *Handler) showConsent(w http.ResponseWriter, r *http.Request, f *flow, user *directory.User, c *consentContext, fresh *userauth.Session) {
	ctx := r.Context()
	if f.Kind != kindAdminConsent && !c.admin && (h.needsAdmin(ctx, c.asked) || !c.policy.UserConsentAllowed) {
		h.record(ctx, user.ID, f.TenantID, f.TenantID, "consent.needadmin", c.app.AppID, fmt.Sprintf("AADSTS%d", codeAdminConsentRequired), "")
		h.page(w, r, f, fresh, http.StatusForbidden, "needadmin", pageData{Title: "Need admin approval", AppName: c.app.DisplayName,
			Code:    codeAdminConsentRequired,
			Message: fmt.Sprintf("%s needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.", c.app.DisplayName)})
		return
	}
	tname := ""
	if t, err := h.dir.Store().GetTenant(ctx, f.TenantID); err == nil {
		tname = t.Name
	}
	h.page(w, r, f, fresh, http.StatusOK, "consent", pageData{Title: "Permissions requested", AppName: c.app.DisplayName,
		PublisherName: c.publisher, PublisherDomain: c.domain, TenantName: tname,
		Permissions: h.views(ctx, c.asked, c.admin || f.Kind == kindAdminConsent), OfferOrg: c.admin && f.Kind != kindAdminConsent,
		OrgChecked: f.Req.Prompt == "admin_consent", AdminConsent: f.Kind == kindAdminConsent})
}

// authorizeSignedIn continues an authorize request once the user is signed
// in: consent if needed, then the code.
func (h *Handler) authorizeSignedIn(w http.ResponseWriter, r *http.Request, f *flow, user *directory.User, fresh *userauth.Session) {
	c, need, err := h.consentContext(r.Context(), f, user)
	if err != nil {
		h.failErr(w, r, f, err)
		return
	}
	if !need {
		h.issueCode(w, r, f, user)
		return
	}
	if f.Req.Prompt == "none" {
		h.fail(w, r, f, &authError{status: http.StatusBadRequest, oauth: "consent_required", code: codeConsentRequired,
			msg: fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", c.app.AppID, c.app.DisplayName)})
		return
	}
	h.showConsent(w, r, f, user, c, fresh)
}

// consentDecision handles Accept or Cancel on the consent page.
func (h *Handler) consentDecision(w http.ResponseWriter, r *http.Request, f *flow, user *directory.User, accept, org bool) {
	ctx := r.Context()
	if !accept {
		h.record(ctx, user.ID, f.TenantID, f.TenantID, "consent.decline", f.Req.ClientID, fmt.Sprintf("AADSTS%d", codeDeclined), "")
		if f.Kind == kindDevice {
			h.deviceDecision(w, r, f, user, false)
			return
		}
		h.fail(w, r, f, declined())
		return
	}
	c, need, err := h.consentContext(ctx, f, user)
	if err != nil {
		h.failErr(w, r, f, err)
		return
	}
	if need {
		req := directory.ConsentRequest{TenantID: f.TenantID, ClientAppID: c.app.AppID, Delegated: c.asked.Delegated,
			UserID: user.ID, ConsentedBy: user.ID, AllPrincipals: org && c.admin}
		if f.Kind == kindAdminConsent {
			req.AllPrincipals, req.AppRoles = true, c.asked.AppRoles
		}
		if _, err := h.dir.GrantConsent(ctx, req); err != nil {
			var ce *directory.ConsentError
			if errors.As(err, &ce) && ce.Code == directory.CodeAdminConsentNeeded && f.Kind != kindAdminConsent {
				h.page(w, r, f, nil, http.StatusForbidden, "needadmin", pageData{Title: "Need admin approval", AppName: c.app.DisplayName,
					Code: ce.Code, Message: ce.Msg})
				return
			}
			if errors.As(err, &ce) && f.Kind == kindAdminConsent {
				h.fail(w, r, f, &authError{status: http.StatusForbidden, oauth: "access_denied", code: ce.Code, msg: ce.Msg})
				return
			}
			h.failErr(w, r, f, err)
			return
		}
	}
	switch f.Kind {
	case kindAdminConsent:
		h.adminConsentDone(w, r, f, user)
	case kindDevice:
		h.deviceDecision(w, r, f, user, true)
	default:
		h.issueCode(w, r, f, user)
	}
}

// issueCode ends an authorize request with an authorization code.
func (h *Handler) issueCode(w http.ResponseWriter, r *http.Request, f *flow, user *directory.User) {
	c := userauth.Code{TenantID: f.TenantID, ClientID: f.Req.ClientID, RedirectURI: f.Req.RedirectURI, SPA: f.SPA, UserID: user.ID,
		Scopes: strings.Fields(f.Req.Scope), Version: f.Req.Version, Nonce: f.Req.Nonce,
		CodeChallenge: f.Req.CodeChallenge, CodeChallengeMethod: f.Req.CodeChallengeMethod,
		AuthTime: f.AuthTime, AMR: f.AMR, Expires: h.now().Add(userauth.CodeLifetime)}
	if f.Req.Version == 1 {
		c.Resource = f.Req.Resource
	}
	code, err := userauth.SealCode(h.kek, c)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.record(r.Context(), user.ID, f.TenantID, f.TenantID, "signin.code", f.Req.ClientID, audit.Success,
		"amr "+strings.Join(f.AMR, " ")+"; response_mode "+f.Req.ResponseMode)
	h.respond(w, r, f, url.Values{"code": {code}})
}
