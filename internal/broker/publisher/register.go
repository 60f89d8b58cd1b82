package publisher

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// The registration endpoint (seed 000): besides the lifecycle
// notification, the cloud calls the definition's registration endpoint
// when an installation succeeds (at least once, possibly repeated):
//
//	POST {--notification-path}/register
//	Authorization: Bootstrap SECRET
//	Content-Type: application/json
//	{"applicationId", "applicationDefinitionId" | "plan", "customerTenantId",
//	 "managedResourceGroupId", "identityPrincipalId", "eventTime"}
//
// SECRET is Config.BootstrapSecret (kept in the publisher's vault). The
// endpoint fails closed: with no bootstrap secret configured it answers
// 503 RegistrationNotConfigured to every call (nothing is accepted; the
// caller may retry once the broker is configured, and the notification
// path registers meanwhile). A missing or wrong secret is 401 (compared
// in constant time, of SHA-256 digests so that not even the length
// leaks). A malformed body (unknown fields included) is 400. Then the call
// runs the same idempotent, resumable Register as the Succeeded
// notification, so whichever arrives first registers and the other finds
// it done: 200 {"outcome", "clientId", "tenantId", "credentialMode"} (never
// a secret), 503 on a transient failure so that the caller retries, 410
// when the installation was deleted after the call's eventTime (a late
// repeat never revives it), and 200 {"outcome": "ignored"} when the
// definition has no usable registration section.

// RegistrationRequest is the body of a registration call.
type RegistrationRequest struct {
	ApplicationID           string `json:"applicationId"`
	ApplicationDefinitionID string `json:"applicationDefinitionId,omitempty"`
	Plan                    *Plan  `json:"plan,omitempty"`
	CustomerTenantID        string `json:"customerTenantId,omitempty"`
	ManagedResourceGroupID  string `json:"managedResourceGroupId,omitempty"`
	IdentityPrincipalID     string `json:"identityPrincipalId,omitempty"`
	EventTime               string `json:"eventTime,omitempty"`
}

// RegistrationResponse is the answer to a registration call.
type RegistrationResponse struct {
	Outcome        Outcome `json:"outcome"`
	ClientID       string  `json:"clientId,omitempty"`
	TenantID       string  `json:"tenantId,omitempty"`
	CredentialMode string  `json:"credentialMode,omitempty"`
}

// BootstrapScheme is the Authorization scheme of the registration call.
const BootstrapScheme = "Bootstrap"

// isResourceID reports whether id (normalized) is
// /subscriptions/S/resourcegroups/G/providers/PROVIDER/TYPE/NAME.
func isResourceID(id, provider, typ string) bool {
	segs := strings.Split(strings.TrimPrefix(NormalizeID(id), "/"), "/")
	return len(segs) == 8 && segs[0] == "subscriptions" && segs[2] == "resourcegroups" && segs[4] == "providers" &&
		segs[5] == provider && segs[6] == typ && segs[1] != "" && segs[3] != "" && segs[7] != ""
}

// plainID: a tenant or object id, short and printable.
func plainID(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// ParseRegistration parses a registration call's body strictly: one JSON
// object of the documented fields, a Microsoft.Solutions/applications id,
// a definition (applicationDefinitionId, a
// Microsoft.Solutions/applicationDefinitions id, or a plan naming its
// product), and an RFC 3339 eventTime when present (else the zero time).
func ParseRegistration(body []byte) (*RegistrationRequest, time.Time, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var r RegistrationRequest
	if err := dec.Decode(&r); err != nil {
		return nil, time.Time{}, fmt.Errorf("the body is not a registration request: %w", err)
	}
	if dec.More() {
		return nil, time.Time{}, errors.New("the body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, time.Time{}, errors.New("the body holds more than one JSON value")
	}
	if !isResourceID(r.ApplicationID, "microsoft.solutions", "applications") {
		return nil, time.Time{}, fmt.Errorf("applicationId %q is not a managed application's resource id", r.ApplicationID)
	}
	if !strings.HasPrefix(r.ApplicationID, "/") {
		r.ApplicationID = "/" + r.ApplicationID
	}
	switch {
	case r.ApplicationDefinitionID != "":
		if !isResourceID(r.ApplicationDefinitionID, "microsoft.solutions", "applicationdefinitions") {
			return nil, time.Time{}, fmt.Errorf("applicationDefinitionId %q is not an application definition's resource id", r.ApplicationDefinitionID)
		}
	case r.Plan != nil:
		if r.Plan.Product == "" || len(r.Plan.Product) > 256 {
			return nil, time.Time{}, errors.New("plan.product is missing")
		}
	default:
		return nil, time.Time{}, errors.New("neither applicationDefinitionId nor plan names the definition")
	}
	if !plainID(r.CustomerTenantID) || !plainID(r.IdentityPrincipalID) {
		return nil, time.Time{}, errors.New("customerTenantId or identityPrincipalId is not an id")
	}
	if r.ManagedResourceGroupID != "" && len(r.ManagedResourceGroupID) > 1024 {
		return nil, time.Time{}, errors.New("managedResourceGroupId is too long")
	}
	var at time.Time
	if r.EventTime != "" {
		t, err := time.Parse(time.RFC3339Nano, r.EventTime)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("eventTime %q is not an RFC 3339 time", r.EventTime)
		}
		at = t
	}
	return &r, at, nil
}

// ErrDeleted: the registration call is older than the installation's
// deletion.
var ErrDeleted = errors.New("the installation was deleted after this registration call")

// RegisterCall applies one registration call: Register, unless the
// installation was deleted at or after at (a late repeat of the call must
// not revive it: ErrDeleted). ErrNoRegistration is OutcomeIgnored.
func (b *Broker) RegisterCall(ctx context.Context, r *RegistrationRequest, at time.Time) (*Installation, Outcome, error) {
	key := NormalizeID(r.ApplicationID)
	defer b.lock(key)()
	in, err := b.cfg.State.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	if in != nil && in.Status == "deleted" && (at.IsZero() || !at.After(in.LastEventTime)) {
		return nil, OutcomeStale, ErrDeleted
	}
	ref := Ref{ApplicationID: r.ApplicationID, DefinitionID: r.ApplicationDefinitionID,
		CustomerTenantID: r.CustomerTenantID, IdentityObjectID: r.IdentityPrincipalID, ManagedResourceGroupID: r.ManagedResourceGroupID}
	if r.Plan != nil && ref.DefinitionID == "" {
		ref.Product = r.Plan.Product
	}
	in, err = b.register(ctx, key, ref)
	if errors.Is(err, ErrNoRegistration) {
		b.log.Info("no registration for the application", "application", r.ApplicationID, "reason", err.Error())
		return nil, OutcomeIgnored, nil
	}
	if err != nil {
		return nil, "", err
	}
	return in, OutcomeRegistered, nil
}

// bootstrapOK checks the Authorization header in constant time.
func (b *Broker) bootstrapOK(r *http.Request) bool {
	hs := r.Header.Values("Authorization")
	if len(hs) != 1 {
		return false
	}
	scheme, secret, ok := strings.Cut(strings.TrimSpace(hs[0]), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, BootstrapScheme) || secret == "" {
		return false
	}
	got, want := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(b.cfg.BootstrapSecret))
	return hmac.Equal(got[:], want[:])
}

// serveRegister serves POST …/register (see above).
func (b *Broker) serveRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "POST only")
		return
	}
	if b.cfg.BootstrapSecret == "" {
		b.log.Warn("registration call refused: no bootstrap secret is configured", "remote", r.RemoteAddr)
		writeJSON(w, http.StatusServiceUnavailable, "RegistrationNotConfigured", "the registration endpoint has no bootstrap secret configured")
		return
	}
	if !b.bootstrapOK(r) {
		b.log.Warn("registration call refused: bad bootstrap secret", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", BootstrapScheme)
		writeJSON(w, http.StatusUnauthorized, "Unauthorized", "the bootstrap secret is missing or wrong")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNotification))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, "RequestTooLarge", "the body is too large or unreadable")
		return
	}
	req, at, err := ParseRegistration(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	in, out, err := b.RegisterCall(r.Context(), req, at)
	switch {
	case errors.Is(err, ErrDeleted):
		writeJSON(w, http.StatusGone, "Deleted", err.Error())
		return
	case err != nil:
		b.log.Error("registration call failed; answering 503 so that it is retried", "application", req.ApplicationID, "error", err.Error())
		writeJSON(w, http.StatusServiceUnavailable, "TransientFailure", err.Error())
		return
	}
	resp := RegistrationResponse{Outcome: out}
	if in != nil {
		resp.ClientID, resp.TenantID, resp.CredentialMode = in.ClientID, b.cfg.TenantID, in.CredentialMode
	}
	b.log.Info("registration call", "application", req.ApplicationID, "outcome", string(out))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}
