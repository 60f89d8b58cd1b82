package publisher

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Notification is a managed application lifecycle notification.
type Notification struct {
	EventType               string          `json:"eventType"`
	ApplicationID           string          `json:"applicationId"`
	EventTime               string          `json:"eventTime"`
	ProvisioningState       string          `json:"provisioningState"`
	ApplicationDefinitionID string          `json:"applicationDefinitionId,omitempty"`
	Plan                    *Plan           `json:"plan,omitempty"`
	BillingDetails          json.RawMessage `json:"billingDetails,omitempty"`
	Error                   json.RawMessage `json:"error,omitempty"`
}

// Plan is a marketplace installation's plan.
type Plan struct {
	Name      string `json:"name"`
	Publisher string `json:"publisher"`
	Product   string `json:"product"`
	Version   string `json:"version"`
	// PromotionCode is in Azure's schema of a plan.
	PromotionCode string `json:"promotionCode,omitempty"`
}

// maxNotification bounds a notification's body.
const maxNotification = 64 << 10

// ParseNotification parses a notification strictly: one JSON object of
// the documented fields, eventType PUT, PATCH or DELETE, a resource id of
// Microsoft.Solutions/applications, an RFC 3339 eventTime and a
// provisioningState.
func ParseNotification(body []byte) (*Notification, time.Time, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var n Notification
	if err := dec.Decode(&n); err != nil {
		return nil, time.Time{}, fmt.Errorf("the body is not a notification: %w", err)
	}
	if dec.More() {
		return nil, time.Time{}, errors.New("the body holds more than one JSON value")
	}
	switch n.EventType {
	case "PUT", "PATCH", "DELETE":
	default:
		return nil, time.Time{}, fmt.Errorf("eventType %q is not PUT, PATCH or DELETE", n.EventType)
	}
	id := NormalizeID(n.ApplicationID)
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	if len(segs) != 8 || segs[0] != "subscriptions" || segs[2] != "resourcegroups" || segs[4] != "providers" ||
		segs[5] != "microsoft.solutions" || segs[6] != "applications" || segs[1] == "" || segs[3] == "" || segs[7] == "" {
		return nil, time.Time{}, fmt.Errorf("applicationId %q is not a managed application's resource id", n.ApplicationID)
	}
	if !strings.HasPrefix(n.ApplicationID, "/") {
		n.ApplicationID = "/" + n.ApplicationID
	}
	t, err := time.Parse(time.RFC3339Nano, n.EventTime)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("eventTime %q is not an RFC 3339 time", n.EventTime)
	}
	if n.ProvisioningState == "" || len(n.ProvisioningState) > 64 {
		return nil, time.Time{}, errors.New("provisioningState is missing")
	}
	return &n, t, nil
}

// Outcome says what Handle did with a notification.
type Outcome string

// Outcomes of Handle.
const (
	OutcomeRegistered   Outcome = "registered"
	OutcomeDeprovisoned Outcome = "deprovisioned"
	OutcomeRecorded     Outcome = "recorded" // nothing to do for this state
	OutcomeStale        Outcome = "stale"    // older than the last applied, or a replay
	OutcomeIgnored      Outcome = "ignored"  // no registration section in the definition
)

// Handle applies one notification. An error is transient: the sender
// should retry (the handler answers 5xx).
func (b *Broker) Handle(ctx context.Context, n *Notification, at time.Time) (Outcome, error) {
	key := NormalizeID(n.ApplicationID)
	defer b.lock(key)()
	in, err := b.cfg.State.Get(ctx, key)
	if err != nil {
		return "", err
	}
	if in != nil && !at.After(in.LastEventTime) {
		return OutcomeStale, nil
	}
	out := OutcomeRecorded
	switch {
	case n.ProvisioningState == "Succeeded" && (n.EventType == "PUT" || n.EventType == "PATCH"):
		ref := Ref{ApplicationID: n.ApplicationID, DefinitionID: n.ApplicationDefinitionID}
		if n.Plan != nil {
			ref.Product = n.Plan.Product
		}
		if _, err := b.register(ctx, key, ref); errors.Is(err, ErrNoRegistration) {
			b.log.Info("no registration for the application", "application", n.ApplicationID, "reason", err.Error())
			out = OutcomeIgnored
		} else if errors.Is(err, errAwaitCall) {
			b.log.Info("the registration call will finish the registration", "application", n.ApplicationID)
		} else if err != nil {
			return "", err
		} else {
			out = OutcomeRegistered
		}
	case n.EventType == "DELETE" && n.ProvisioningState == "Deleted":
		if err := b.deprovision(ctx, key); err != nil {
			return "", err
		}
		out = OutcomeDeprovisoned
	case n.EventType == "DELETE" && n.ProvisioningState == "Deleting":
		// The vault may still be there: take the secrets out now.
		if in != nil && in.Status == "registered" {
			b.removeVaultSecrets(ctx, in)
		}
	}
	// Record the event time last: a failed attempt is applied again.
	in, err = b.cfg.State.Get(ctx, key)
	if err != nil {
		return "", err
	}
	if in == nil {
		in = &Installation{Key: key, ApplicationID: n.ApplicationID, DefinitionID: n.ApplicationDefinitionID, Status: "seen"}
	}
	in.LastEventTime = at
	if err := b.save(ctx, in); err != nil {
		return "", err
	}
	b.log.Info("managed application notification", "eventType", n.EventType, "provisioningState", n.ProvisioningState,
		"application", n.ApplicationID, "eventTime", n.EventTime, "outcome", string(out))
	return out, nil
}

// Handler serves the notification endpoint: POST …/resource?sig=SECRET
// (the cloud appends /resource to the registered endpoint). The sig is
// compared in constant time; a missing one is 401, a wrong one 403.
// A malformed body is 400; a transient failure is 503, so that the sender
// retries; otherwise 200. It also serves the registration endpoint,
// POST …/register (see RegistrationRequest), and, with an issuer, the
// issuer's discovery document, JWKS and exchange under the issuer URL's
// path (issuer.go, exchange.go): serve it over HTTPS at that URL.
func (b *Broker) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.serveIssuer(w, r) {
			return
		}
		if strings.HasSuffix(r.URL.Path, "/register") {
			b.serveRegister(w, r)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/resource") {
			writeJSON(w, http.StatusNotFound, "NotFound", "not a notification endpoint")
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "POST only")
			return
		}
		sigs := r.URL.Query()["sig"]
		switch {
		case len(sigs) == 0 || sigs[0] == "":
			writeJSON(w, http.StatusUnauthorized, "Unauthorized", "the sig parameter is missing")
			return
		case b.cfg.NotificationSecret == "" || len(sigs) != 1 ||
			subtle.ConstantTimeCompare([]byte(sigs[0]), []byte(b.cfg.NotificationSecret)) != 1:
			b.log.Warn("notification refused: bad sig", "remote", r.RemoteAddr)
			writeJSON(w, http.StatusForbidden, "Forbidden", "the sig parameter is wrong")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNotification))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, "RequestTooLarge", "the body is too large or unreadable")
			return
		}
		n, at, err := ParseNotification(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		out, err := b.Handle(r.Context(), n, at)
		if err != nil {
			b.log.Error("notification failed; answering 503 so that it is retried", "application", n.ApplicationID,
				"eventType", n.EventType, "provisioningState", n.ProvisioningState, "error", err.Error())
			writeJSON(w, http.StatusServiceUnavailable, "TransientFailure", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"outcome": string(out)})
	})
}

func writeJSON(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
