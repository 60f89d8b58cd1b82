package operator

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Rotation's publish-ahead: the default gives clients that cache the JWKS
// document a day to learn a key before it signs; the cap keeps a typo
// ("2400h") from parking a key for months.
const (
	DefaultPublishAhead = 24 * time.Hour
	MaxPublishAhead     = 30 * 24 * time.Hour
)

// KeyView is a token-signing key as the operator API shows it.
type KeyView struct {
	KeyID     string       `json:"kid"`
	State     pki.KeyState `json:"state"` // pending, active or retired
	Activates time.Time    `json:"activates"`
	// Retires is when the next newer key activates and this one stops
	// signing; absent for the newest key.
	Retires time.Time `json:"retires,omitzero"`
	// RemovableAfter is when the server may stop publishing the key: every
	// token it signed has expired by then. Absent while nothing retires it.
	RemovableAfter time.Time `json:"removableAfter,omitzero"`
}

func (a *API) keyView(s pki.KeyStatus) KeyView {
	return KeyView{KeyID: s.KeyID, State: s.State, Activates: s.Activates.UTC(), Retires: s.Retires.UTC(),
		RemovableAfter: s.RemovableAfter(a.maxLifetime).UTC()}
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	status := a.keys.Status(a.now())
	out := make([]KeyView, len(status))
	for i, s := range status {
		out[i] = a.keyView(s)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"value": out})
}

// rotateKeys makes a new signing key, published at once and signing from
// publishAhead on. The body, {"publishAhead":"24h"}, is optional.
func (a *API) rotateKeys(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PublishAhead *string `json:"publishAhead"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<10+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", "reading body: "+err.Error())
		return
	}
	if len(body) > 1<<10 {
		writeError(w, http.StatusRequestEntityTooLarge, "InvalidRequestContent", httpx.ErrBodyTooLarge.Error())
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := httpx.DecodeJSON(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequestContent", err.Error())
			return
		}
	}
	ahead := DefaultPublishAhead
	if req.PublishAhead != nil {
		d, err := time.ParseDuration(strings.TrimSpace(*req.PublishAhead))
		if err != nil || d < 0 || d > MaxPublishAhead {
			writeError(w, http.StatusBadRequest, "InvalidParameter",
				fmt.Sprintf("publishAhead must be a duration from 0s to %s, e.g. \"24h\" or \"0s\".", fmtDuration(MaxPublishAhead)))
			return
		}
		ahead = d
	}
	if ahead < a.minAhead {
		writeError(w, http.StatusBadRequest, "InvalidParameter",
			fmt.Sprintf("publishAhead must be at least %s on this server: it is a node of a fleet, and every node must publish a new key before any node signs with it.", a.minAhead))
		return
	}
	now := a.now()
	// Activation times are whole seconds (a certificate's NotBefore), and
	// of two keys activating in the same second it would be left to chance
	// which signs. So a new key never shares its second with another: at
	// worst, "0s" activates within a second.
	taken := map[int64]bool{}
	for _, k := range a.keys.Published() {
		taken[k.Activates.Unix()] = true
	}
	for at := activation(now, ahead); taken[at.Unix()]; at = activation(now, ahead) {
		ahead = at.Add(time.Second).Sub(now)
	}
	k, err := a.keys.Rotate(now, ahead)
	if err != nil {
		a.logger.ErrorContext(r.Context(), "signing key rotation failed", "err", err)
		_ = a.audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: "keys.rotate", Result: "InternalError"})
		writeError(w, http.StatusInternalServerError, "InternalError", "The signing key could not be rotated; see the server log.")
		return
	}
	if err := a.audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: "keys.rotate", Target: k.KeyID, Result: audit.Success,
		Detail: "activates " + k.Activates.UTC().Format(time.RFC3339)}); err != nil {
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The signing key was rotated but the audit record could not be written.")
		return
	}
	a.logger.InfoContext(r.Context(), "signing key rotated", "kid", k.KeyID, "activates", k.Activates)
	v := KeyView{KeyID: k.KeyID, Activates: k.Activates.UTC(), State: pki.KeyPending}
	for _, s := range a.keys.Status(a.now()) {
		if s.KeyID == k.KeyID {
			v = a.keyView(s)
		}
	}
	httpx.WriteJSON(w, http.StatusCreated, v)
}

// activation is when pki.KeySet.Rotate(now, ahead) makes a key activate:
// a positive ahead rounded up to the next whole second, 0 truncated.
func activation(now time.Time, ahead time.Duration) time.Time {
	t := now.Add(ahead)
	if ahead > 0 {
		if tt := t.Truncate(time.Second); !tt.Equal(t) {
			t = tt.Add(time.Second)
		}
	}
	return t.Truncate(time.Second)
}

// fmtDuration prints whole hours as "720h", not "720h0m0s".
func fmtDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
