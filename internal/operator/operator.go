// Package operator is the operator's API: creating, listing and deleting
// tenants, reading the audit log, rotating the token-signing keys, and
// managing the managed identities and workloads of a tenant (tenantbridge's
// own control plane for them; ARM's Microsoft.ManagedIdentity surface is a
// separate, Azure-shaped door to the same directory objects), and enrolling
// users' authenticators (which Graph cannot do). The operator
// runs the cloud itself and stands above its tenants, so this API is not part
// of any Azure surface; it answers only on the bare listen address, under
// /_operator/v1/, to the bearer key in DIR/operator.json.
package operator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Credential is the content of DIR/operator.json: what the CLI needs to act
// as the operator.
type Credential struct {
	URL    string `json:"url"`    // the bare listen address, e.g. https://127.0.0.1:8443
	CAFile string `json:"caFile"` // the CA certificate clients must trust
	Key    string `json:"key"`    // the operator's bearer key
	// ProxyURL is the HTTPS proxy (http://ADDR) whose tunnels end in this
	// server, when it runs one (serve --proxy-listen); empty otherwise.
	ProxyURL string `json:"proxyUrl,omitempty"`
}

// FileName is the operator credential's file name in the data directory.
const FileName = "operator.json"

// LoadOrCreateCredential reads DIR/operator.json, creating it (0600) with a
// fresh 256-bit key on first start. url, caFile and proxyURL are refreshed on
// every start so that the file always says how to reach this server; an
// empty proxyURL removes a proxy an earlier start recorded.
func LoadOrCreateCredential(dir, url, caFile, proxyURL string) (Credential, error) {
	path := filepath.Join(dir, FileName)
	var c Credential
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &c); err != nil || len(c.Key) < 32 {
			return c, fmt.Errorf("operator credential %s is malformed; remove it to create a new one", path)
		}
	case errors.Is(err, os.ErrNotExist):
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return c, err
		}
		c.Key = "tbop_" + base64.RawURLEncoding.EncodeToString(key)
	default:
		return c, err
	}
	if c.URL == url && c.CAFile == caFile && c.ProxyURL == proxyURL && err == nil {
		return c, nil
	}
	c.URL, c.CAFile, c.ProxyURL = url, caFile, proxyURL
	out, _ := json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o600); err != nil {
		return c, err
	}
	return c, os.Rename(tmp, path)
}

// Config holds the operator API's dependencies.
type Config struct {
	Directory *directory.Service
	Audit     *audit.Log
	// Key is the operator's bearer key (Credential.Key). Empty refuses
	// every request.
	Key string
	// Keys are the server's token-signing keys, rotated in process.
	Keys *pki.KeySet
	// MaxTokenLifetime is the longest lifetime of any token the server
	// signs: how long a retired key must stay published.
	MaxTokenLifetime time.Duration
	// MinPublishAhead is the shortest publishAhead a rotation may ask
	// for: in a fleet, long enough that every node publishes a new key
	// before any node signs with it. Zero: none.
	MinPublishAhead time.Duration
	Logger          *slog.Logger     // default: discard
	Now             func() time.Time // default: time.Now
	// Marketplace publishes managed application offers (*arm.Handler);
	// without it the marketplace endpoints answer 501.
	Marketplace Marketplace
}

// API serves the operator endpoints.
type API struct {
	dir         *directory.Service
	audit       *audit.Log
	keyHash     [32]byte
	hasKey      bool
	keys        *pki.KeySet
	maxLifetime time.Duration
	minAhead    time.Duration
	logger      *slog.Logger
	now         func() time.Time
	mux         *http.ServeMux
	marketplace Marketplace
}

// New returns the operator API. Directory, Audit and Keys are required: an
// operator API that cannot act or record must not start, so a missing one
// panics at wiring time.
func New(cfg Config) *API {
	if cfg.Directory == nil || cfg.Audit == nil || cfg.Keys == nil {
		panic("operator: Config needs Directory, Audit and Keys")
	}
	a := &API{dir: cfg.Directory, audit: cfg.Audit, keyHash: sha256.Sum256([]byte(cfg.Key)), hasKey: cfg.Key != "",
		keys: cfg.Keys, maxLifetime: cfg.MaxTokenLifetime, minAhead: cfg.MinPublishAhead, logger: cfg.Logger, now: cfg.Now, mux: http.NewServeMux(),
		marketplace: cfg.Marketplace}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	m := a.mux
	m.HandleFunc("POST /_operator/v1/tenants", a.createTenant)
	m.HandleFunc("GET /_operator/v1/tenants", a.listTenants)
	m.HandleFunc("GET /_operator/v1/tenants/{tenant}", a.showTenant)
	m.HandleFunc("DELETE /_operator/v1/tenants/{tenant}", a.deleteTenant)
	m.HandleFunc("GET /_operator/v1/audit", a.listAudit)
	m.HandleFunc("GET /_operator/v1/stats", a.stats)
	// Go's profiler, behind the operator key: how an operator finds out
	// where a loaded server spends its time (pprof.go).
	m.HandleFunc("GET /_operator/v1/debug/pprof/profile", a.cpuProfile)
	m.HandleFunc("GET /_operator/v1/debug/pprof/trace", a.trace)
	m.HandleFunc("GET /_operator/v1/debug/pprof/{name}", a.namedProfile) // heap, goroutine, allocs, …

	m.HandleFunc("GET /_operator/v1/keys", a.listKeys)
	m.HandleFunc("POST /_operator/v1/keys/rotate", a.rotateKeys)

	m.HandleFunc("POST /_operator/v1/tenants/{tenant}/identities", a.createIdentity)
	m.HandleFunc("GET /_operator/v1/tenants/{tenant}/identities", a.listIdentities)
	m.HandleFunc("GET /_operator/v1/tenants/{tenant}/identities/{ref}", a.showIdentity)
	m.HandleFunc("DELETE /_operator/v1/tenants/{tenant}/identities/{ref}", a.deleteIdentity)

	m.HandleFunc("POST /_operator/v1/tenants/{tenant}/workloads", a.createWorkload)
	m.HandleFunc("GET /_operator/v1/tenants/{tenant}/workloads", a.listWorkloads)
	m.HandleFunc("GET /_operator/v1/tenants/{tenant}/workloads/{ref}", a.showWorkload)
	m.HandleFunc("DELETE /_operator/v1/tenants/{tenant}/workloads/{ref}", a.deleteWorkload)
	m.HandleFunc("POST /_operator/v1/tenants/{tenant}/workloads/{ref}/rotateHeader", a.rotateWorkloadHeader)

	m.HandleFunc("POST /_operator/v1/tenants/{tenant}/users/{ref}/authenticator", a.enrollAuthenticator)

	a.marketplaceRoutes(m) // marketplace.go

	// Anything else gets the API's own error shape, not the mux's text.
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "There is no operator endpoint "+r.Method+" "+quotePath(r.URL.Path)+".")
	})
	return a
}

// quotePath keeps a hostile path from shaping an error message.
func quotePath(p string) string {
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return "'" + strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '\'' {
			return '?'
		}
		return r
	}, p) + "'"
}

// ServeHTTP checks the operator key, in constant time, before anything else.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	got := sha256.Sum256([]byte(raw))
	if !ok || !a.hasKey || subtle.ConstantTimeCompare(got[:], a.keyHash[:]) != 1 {
		writeError(w, http.StatusUnauthorized, "Unauthorized", "The operator key is missing or wrong.")
		return
	}
	a.mux.ServeHTTP(w, r)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	httpx.WriteJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// TenantView is a tenant as the operator API shows it.
type TenantView struct {
	TenantID       string     `json:"tenantId"`
	Name           string     `json:"name"`
	Domain         string     `json:"domain"`
	SubscriptionID string     `json:"subscriptionId"`
	Created        time.Time  `json:"created"`
	Admin          *AdminView `json:"admin,omitempty"`
}

// AdminView is a new tenant's bootstrap administrator, with its secret (shown once).
type AdminView struct {
	ClientID           string    `json:"clientId"`
	ClientSecret       string    `json:"clientSecret"`
	ObjectID           string    `json:"objectId"`
	ServicePrincipalID string    `json:"servicePrincipalId"`
	SecretExpires      time.Time `json:"secretExpires"`
}

// AuditView is an audit record as the operator API shows it. It has the
// store record's fields, so a conversion is all it takes; the store's type
// stays free of wire names.
type AuditView struct {
	Seq          int64     `json:"seq"`
	Time         time.Time `json:"time"`
	Actor        string    `json:"actor"`
	ActorTenant  string    `json:"actorTenant"`
	TargetTenant string    `json:"targetTenant"`
	Action       string    `json:"action"`
	Target       string    `json:"target"`
	Result       string    `json:"result"`
	ClientAddr   string    `json:"clientAddr,omitempty"`
	RequestID    string    `json:"requestId,omitempty"`
	Detail       string    `json:"detail,omitempty"`
}

func viewOf(t store.Tenant) TenantView {
	return TenantView{TenantID: t.ID, Name: t.Name, Domain: t.Domain, SubscriptionID: t.SubscriptionID, Created: t.Created}
}

func (a *API) record(ctx context.Context, action, tenantID, target, result string) error {
	return a.audit.Record(ctx, store.AuditRecord{Actor: "operator", Action: action, TargetTenant: tenantID, Target: target, Result: result})
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if err := httpx.ReadJSON(r, 4<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", err.Error())
		return
	}
	b, err := a.dir.CreateTenant(r.Context(), req.Name)
	if err != nil {
		a.fail(w, r, "tenant.create", req.Name, err)
		return
	}
	if err := a.record(r.Context(), "tenant.create", b.Tenant.ID, b.Tenant.ID, audit.Success); err != nil {
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The tenant was created but the audit record could not be written.")
		return
	}
	v := viewOf(b.Tenant)
	v.Admin = &AdminView{ClientID: b.Admin.AppID, ClientSecret: b.AdminSecret.SecretText, ObjectID: b.Admin.ID,
		ServicePrincipalID: b.AdminSP.ID, SecretExpires: b.AdminSecret.EndDateTime}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, v)
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request) {
	ts, err := a.dir.ListTenants(r.Context())
	if err != nil {
		a.fail(w, r, "", "", err)
		return
	}
	out := make([]TenantView, len(ts))
	for i, t := range ts {
		out[i] = viewOf(t)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (a *API) showTenant(w http.ResponseWriter, r *http.Request) {
	t, err := a.dir.Tenant(r.Context(), r.PathValue("tenant"))
	if err != nil || t.ID == directory.MicrosoftTenantID {
		a.fail(w, r, "", r.PathValue("tenant"), cmpErr(err, directory.ErrNotFound))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, viewOf(t))
}

func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

func (a *API) deleteTenant(w http.ResponseWriter, r *http.Request) {
	t, err := a.dir.DeleteTenant(r.Context(), r.PathValue("tenant"))
	if err != nil {
		a.fail(w, r, "tenant.delete", r.PathValue("tenant"), err)
		return
	}
	if err := a.record(r.Context(), "tenant.delete", t.ID, t.ID, audit.Success); err != nil {
		writeError(w, http.StatusInternalServerError, "AuditFailed", "The tenant was deleted but the audit record could not be written.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	q := store.AuditQuery{Limit: 1000}
	if ref := r.URL.Query().Get("tenant"); ref != "" {
		t, err := a.dir.Tenant(r.Context(), ref)
		if err != nil {
			a.fail(w, r, "", ref, err)
			return
		}
		q.TenantID = t.ID
	}
	if ref := r.URL.Query().Get("byTenant"); ref != "" {
		if q.TenantID == "" {
			writeError(w, http.StatusBadRequest, "InvalidParameter", "byTenant needs tenant: the tenant the actions were taken in")
			return
		}
		t, err := a.dir.Tenant(r.Context(), ref)
		if err != nil {
			a.fail(w, r, "", ref, err)
			return
		}
		q.ByTenantID = t.ID
	}
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "InvalidParameter", "after must be a non-negative integer")
			return
		}
		q.AfterSeq = n
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "InvalidParameter", "limit must be between 1 and 10000")
			return
		}
		q.Limit = n
	}
	recs, err := a.audit.List(r.Context(), q)
	if err != nil {
		a.fail(w, r, "", "", err)
		return
	}
	out := make([]AuditView, len(recs))
	for i, rec := range recs {
		out[i] = AuditView(rec)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"value": out})
}

// fail maps an error to the operator API's error shape, and audits a
// refused change. A not-found error is about the tenant target names.
func (a *API) fail(w http.ResponseWriter, r *http.Request, action, target string, err error) {
	a.failIn(w, r, action, "", target, err, notFound{"TenantNotFound", "Tenant"})
}

// notFound is what a missing object is called in an error: its code and
// the noun the message names it by.
type notFound struct{ code, noun string }

// failIn is fail for an object (target) of the tenant tenantID, where a
// not-found error is about that object.
func (a *API) failIn(w http.ResponseWriter, r *http.Request, action, tenantID, target string, err error, nf notFound) {
	status, code, msg := http.StatusInternalServerError, "InternalError", "The request failed; see the server log."
	if m, ok := directory.IsInvalid(err); ok {
		status, code, msg = http.StatusBadRequest, "InvalidParameter", m
	} else if errors.Is(err, directory.ErrConflict) {
		status, code, msg = http.StatusConflict, "Conflict", strings.TrimSuffix(err.Error(), ": "+directory.ErrConflict.Error())
	} else if errors.Is(err, directory.ErrNotFound) {
		status, code, msg = http.StatusNotFound, nf.code, fmt.Sprintf("%s %s was not found.", nf.noun, quotePath(target))
	} else {
		a.logger.ErrorContext(r.Context(), "operator request failed", "err", err)
	}
	if action != "" {
		_ = a.record(r.Context(), action, tenantID, target, code)
	}
	writeError(w, status, code, msg)
}
