package vault

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// kvError is Key Vault's error body.
type kvError struct {
	Error kvErrorBody `json:"error"`
}

type kvErrorBody struct {
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	InnerError *innerCode `json:"innererror,omitempty"`
}

type innerCode struct {
	Code string `json:"code"`
}

// writeError answers with Key Vault's error format; the code also goes in
// x-ms-error-code, which azcore reads when the body is unreadable.
func writeError(w http.ResponseWriter, status int, code, message, inner string) {
	body := kvError{Error: kvErrorBody{Code: code, Message: message}}
	if inner != "" {
		body.Error.InnerError = &innerCode{Code: inner}
	}
	w.Header().Set("x-ms-error-code", code)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"InternalError","message":"encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// attributes is SecretAttributes on the wire: integer Unix seconds.
type attributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         *int64 `json:"created,omitempty"`
	Updated         *int64 `json:"updated,omitempty"`
	RecoverableDays *int32 `json:"recoverableDays,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
}

// secretBundle is SecretBundle, SecretItem (no value, id without version)
// and their deleted forms.
type secretBundle struct {
	Value       *string           `json:"value,omitempty"`
	ID          string            `json:"id"`
	ContentType string            `json:"contentType,omitempty"`
	Attributes  attributes        `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
	deletedState
}

// deletedState is the deleted state of a secret or key on the wire (the
// members of DeletedSecretBundle, DeletedKeyBundle and their items), last
// in each.
type deletedState struct {
	RecoveryID         string `json:"recoveryId,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
}

// deletedStateOf renders d; nil (not deleted) renders nothing.
func deletedStateOf(d *store.SecretDeletion) deletedState {
	if d == nil {
		return deletedState{}
	}
	return deletedState{RecoveryID: d.RecoveryID, DeletedDate: unix(d.DeletedDate), ScheduledPurgeDate: unix(d.ScheduledPurgeDate)}
}

// listResult is a page of a list of secrets or keys (SecretListResult,
// KeyListResult and the deleted ones).
type listResult[I any] struct {
	Value    []I     `json:"value"`
	NextLink *string `json:"nextLink"`
}

// setParams is SecretSetParameters and SecretUpdateParameters. The
// read-only attributes a client may echo back (created, updated,
// recoverableDays, recoveryLevel) are accepted and ignored; tag values
// may be null (azsecrets' map[string]*string).
type setParams struct {
	Value       *string            `json:"value"`
	ContentType *string            `json:"contentType"`
	Attributes  *attributes        `json:"attributes"`
	Tags        map[string]*string `json:"tags"`
}

type blobParams struct {
	Value string `json:"value"`
}

func unix(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

func fromUnix(p *int64) time.Time {
	if p == nil {
		return time.Time{}
	}
	return time.Unix(*p, 0).UTC()
}

// bundle renders a secret. withVersion false gives a list item's id.
func (s *Service) bundle(base string, v store.Vault, sec store.Secret, value *string, withVersion bool) secretBundle {
	id := base + "/secrets/" + sec.Name
	if withVersion {
		id += "/" + sec.Version
	}
	enabled := sec.Enabled
	days := int32(v.SoftDeleteRetentionDays)
	b := secretBundle{
		Value:       value,
		ID:          id,
		ContentType: sec.ContentType,
		Attributes: attributes{
			Enabled: &enabled, NotBefore: unix(sec.NotBefore), Expires: unix(sec.Expires),
			Created: unix(sec.Created), Updated: unix(sec.Updated),
			RecoverableDays: &days, RecoveryLevel: recoveryLevel(v),
		},
		Tags:         sec.Tags,
		deletedState: deletedStateOf(sec.Deleted),
	}
	return b
}

func recoveryLevel(v store.Vault) string {
	if v.EnablePurgeProtection {
		return "Recoverable"
	}
	return "Recoverable+Purgeable"
}
