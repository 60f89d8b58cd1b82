package signin

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// deviceAuth serves GET and POST /common/oauth2/deviceauth: the page where
// a user enters the code a device shows, then signs in and approves.
func (h *Handler) deviceAuth(w http.ResponseWriter, r *http.Request) {
	if h.devices == nil {
		http.NotFound(w, r)
		return
	}
	const action = "/common/oauth2/deviceauth"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		code := r.URL.Query().Get("otc")
		if len(code) > 64 {
			code = ""
		}
		csrf := h.csrfFor(r, nil)
		h.render(w, http.StatusOK, "device", pageData{Title: "Enter code", Action: action, CSRF: csrf.token, UserCode: code}, csrf)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, r, http.StatusBadRequest, codeInvalidRequest, "The request is not valid.")
			return
		}
		csrf := h.csrfFor(r, nil)
		if !h.checkCSRF(r) {
			h.record(r.Context(), "anonymous", "", "", "signin.csrf", "deviceauth", "AADSTS90023", "form without a valid CSRF token")
			h.errorPage(w, r, http.StatusForbidden, codeInvalidRequest, "The form could not be verified (missing or wrong anti-forgery token). Reload the page and try again.")
			return
		}
		userCode := strings.ToUpper(strings.TrimSpace(r.PostForm.Get("otc")))
		var clientID, scope, tenant string
		var err error = fmt.Errorf("empty code")
		if userCode != "" && len(userCode) <= 64 {
			clientID, scope, tenant, err = h.devices.Lookup(userCode)
		}
		if err != nil {
			h.record(r.Context(), "anonymous", "", "", "signin.device", "deviceauth", "AADSTS70000", "unknown or expired user code")
			h.render(w, http.StatusOK, "device", pageData{Title: "Enter code", Action: action, CSRF: csrf.token,
				Error: "That code didn't work. Check the code and try again."}, csrf)
			return
		}
		if tenant == "" {
			tenant = "organizations"
		}
		f := &flow{Kind: kindDevice, Tenant: tenant, UserCode: userCode, Req: authRequest{Version: 2, ClientID: clientID, Scope: scope}}
		if !h.resolveTenantPath(w, r, f) {
			return
		}
		if _, ok := h.clientApp(w, r, f, clientID); !ok {
			return
		}
		h.proceed(w, r, f, nil)
	default:
		w.Header().Set("Allow", "GET, POST")
		h.errorPage(w, r, http.StatusMethodNotAllowed, codeInvalidRequest, "The request method is not supported by this endpoint.")
	}
}

// deviceSignedIn asks the signed-in user to consent if needed, or to
// confirm that they are signing in to the app on the device.
func (h *Handler) deviceSignedIn(w http.ResponseWriter, r *http.Request, f *flow, user *directory.User, fresh *userauth.Session) {
	c, need, err := h.consentContext(r.Context(), f, user)
	if err != nil {
		h.failErr(w, r, f, err)
		return
	}
	if need {
		h.showConsent(w, r, f, user, c, fresh)
		return
	}
	h.page(w, r, f, fresh, http.StatusOK, "deviceconfirm", pageData{Title: "Continue signing in", AppName: c.app.DisplayName})
}

// deviceDecision records the user's answer for the device.
func (h *Handler) deviceDecision(w http.ResponseWriter, r *http.Request, f *flow, user *directory.User, approve bool) {
	if approve {
		// Consent may still be missing if the page was skipped.
		if _, need, err := h.consentContext(r.Context(), f, user); err != nil || need {
			if err != nil {
				h.failErr(w, r, f, err)
				return
			}
			h.proceed(w, r, f, nil)
			return
		}
	}
	if err := h.devices.Decide(f.UserCode, approve, user.ID, f.TenantID, f.AuthTime, f.AMR); err != nil {
		h.record(r.Context(), user.ID, f.TenantID, f.TenantID, "signin.device", f.Req.ClientID, "AADSTS70000", "device code no longer pending")
		h.render(w, http.StatusOK, "message", pageData{Title: "Sign in failed", Message: "That code has expired or was already used. Start over on your device."}, csrfState{})
		return
	}
	result, title, msg := audit.Success, "You have signed in", "You have signed in to the application on your device. You may now close this window."
	if !approve {
		result, title, msg = fmt.Sprintf("AADSTS%d", codeDeclined), "Sign in canceled", "You have declined to sign in to the application on your device. You may now close this window."
	}
	h.record(r.Context(), user.ID, f.TenantID, f.TenantID, "signin.device", f.Req.ClientID, result, "")
	h.render(w, http.StatusOK, "message", pageData{Title: title, Message: msg}, csrfState{})
}
