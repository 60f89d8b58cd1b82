package signin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// adminConsent serves GET /{tenant}/adminconsent (v1: what the app
// declares) and /{tenant}/v2.0/adminconsent (the scope parameter; its
// "/.default" includes application permissions). An administrator of the
// tenant signs in and accepts; the response is
// redirect_uri?admin_consent=True&tenant={tid}&state=... (v2 adds scope).
func (h *Handler) adminConsent(w http.ResponseWriter, r *http.Request, tenant string, version int) {
	if len(r.URL.RawQuery) > maxForm {
		h.errorPage(w, r, http.StatusBadRequest, codeInvalidRequest, "The request is not valid.")
		return
	}
	q := r.URL.Query()
	for _, k := range []string{"client_id", "redirect_uri", "state", "scope"} {
		if len(q[k]) > 1 || len(q.Get(k)) > maxParam {
			h.errorPage(w, r, http.StatusBadRequest, codeInvalidRequest, fmt.Sprintf("The value of the parameter '%s' is not valid.", k))
			return
		}
	}
	clientID := strings.TrimSpace(q.Get("client_id"))
	if clientID == "" {
		ae := missingParam("client_id")
		h.errorPage(w, r, ae.status, ae.code, ae.msg)
		return
	}
	f := &flow{Kind: kindAdminConsent, Tenant: tenant, Req: authRequest{Version: version, ClientID: clientID,
		RedirectURI: q.Get("redirect_uri"), State: q.Get("state"), Scope: q.Get("scope"), ResponseMode: "query"}}
	if !h.resolveTenantPath(w, r, f) {
		return
	}
	app, ok := h.clientApp(w, r, f, clientID)
	if !ok {
		return
	}
	uri, _, aerr := checkRedirect(app, f.Req.RedirectURI)
	if aerr != nil {
		h.errorPage(w, r, aerr.status, aerr.code, aerr.msg)
		return
	}
	f.Req.RedirectURI, f.Verified = uri, true
	if version == 2 && strings.TrimSpace(f.Req.Scope) == "" {
		h.fail(w, r, f, missingParam("scope"))
		return
	}
	h.proceed(w, r, f, nil)
}

// adminConsentSignedIn shows the admin the consent page, or refuses a
// user who may not consent for the organization.
func (h *Handler) adminConsentSignedIn(w http.ResponseWriter, r *http.Request, f *flow, user *directory.User, fresh *userauth.Session) {
	c, _, err := h.consentContext(r.Context(), f, user)
	if err != nil {
		h.failErr(w, r, f, err)
		return
	}
	if !c.admin {
		h.record(r.Context(), user.ID, f.TenantID, f.TenantID, "consent.admin", c.app.AppID, fmt.Sprintf("AADSTS%d", codeAdminConsentRequired), "not an administrator")
		h.fail(w, r, f, &authError{status: http.StatusForbidden, oauth: "access_denied", code: codeAdminConsentRequired,
			msg: fmt.Sprintf("%s needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.", c.app.DisplayName)})
		return
	}
	h.showConsent(w, r, f, user, c, fresh)
}

// adminConsentDone redirects to the client after a granted admin consent.
func (h *Handler) adminConsentDone(w http.ResponseWriter, r *http.Request, f *flow, _ *directory.User) {
	params := url.Values{"admin_consent": {"True"}, "tenant": {f.TenantID}}
	if f.Req.Version == 2 {
		params.Set("scope", f.Req.Scope)
	}
	h.respond(w, r, f, params)
}
