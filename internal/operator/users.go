package operator

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Enrolling a user's authenticator (TOTP) is the operator's: Microsoft
// Graph has no call that creates a software OATH method — its
// softwareOathAuthenticationMethod resource offers list, get and delete
// only (https://learn.microsoft.com/graph/api/resources/softwareoathauthenticationmethod);
// in Entra the user registers it at the security-info page. tenantbridge
// has no such page, so the operator enrols one here and hands the secret
// to the person, once.

var userNotFound = notFound{"UserNotFound", "User"}

// AuthenticatorView is a new authenticator: the otpauth:// URI an
// authenticator app takes (as text or a QR code) and its base32 secret.
// It appears only in the answer that creates it; the secret is stored
// sealed and never shown again.
type AuthenticatorView struct {
	UserID            string `json:"userId"`
	UserPrincipalName string `json:"userPrincipalName"`
	OtpauthURI        string `json:"otpauthUri"`
	Secret            string `json:"secret"`
}

// userOf finds a user of the tenant by object id or, when ref has an @,
// by user principal name.
func (a *API) userOf(r *http.Request, tenantID, ref string) (*directory.User, error) {
	ref = strings.TrimSpace(ref)
	switch {
	case ref == "":
		return nil, directory.ErrNotFound
	case strings.Contains(ref, "@"):
		return a.dir.UserByName(r.Context(), tenantID, ref)
	default:
		return a.dir.GetUser(r.Context(), tenantID, strings.ToLower(ref))
	}
}

// enrollAuthenticator answers POST
// /_operator/v1/tenants/{tenant}/users/{ref}/authenticator {"replace":bool}.
// A user who has an authenticator keeps it unless replace is true: a new
// secret stops the old app's codes at once, which must never happen by
// accident.
func (a *API) enrollAuthenticator(w http.ResponseWriter, r *http.Request) {
	const action = "user.enrollAuthenticator"
	t, ok := a.tenantOf(w, r, action)
	if !ok {
		return
	}
	var req struct {
		Replace bool `json:"replace"`
	}
	if err := httpx.ReadJSON(r, 1<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", err.Error())
		return
	}
	ref := r.PathValue("ref")
	u, err := a.userOf(r, t.ID, ref)
	if err != nil {
		a.failIn(w, r, action, t.ID, ref, err, userNotFound)
		return
	}
	uri, secret, err := a.dir.EnrollAuthenticator(r.Context(), t.ID, u.ID, req.Replace)
	if errors.Is(err, directory.ErrConflict) {
		_ = a.record(r.Context(), action, t.ID, u.ID, "Conflict")
		writeError(w, http.StatusConflict, "Conflict", "User "+quotePath(u.UserPrincipalName)+
			" already has an authenticator; enrolling a new one (replace) stops the old one's codes.")
		return
	}
	if err != nil {
		a.failIn(w, r, action, t.ID, ref, err, userNotFound)
		return
	}
	detail := ""
	if req.Replace {
		detail = "replace"
	}
	if err := a.audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: action, TargetTenant: t.ID, Target: u.ID,
		Result: audit.Success, Detail: detail}); err != nil {
		// The secret changed: say so, and show nothing that is not recorded.
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The authenticator was enrolled but the audit record could not be written; enrol it again with replace.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, AuthenticatorView{UserID: u.ID, UserPrincipalName: u.UserPrincipalName, OtpauthURI: uri, Secret: secret})
}
