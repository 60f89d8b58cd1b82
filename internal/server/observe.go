package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

// What operators watch the server with (docs/operations.md): the
// Prometheus metrics at /metrics, one log line per request carrying the
// surface, tenant, principal and error code, and two health endpoints,
// /healthz (alive) and /readyz (able to serve).

// The surfaces a request is counted and logged under: fixed names, so
// that the metrics' surface label is bounded.
const (
	surfaceToken      = "token" // the token service: token endpoints, discovery, keys, the identity endpoint
	surfaceSignin     = "signin"
	surfaceGraph      = "graph"
	surfaceARM        = "arm"
	surfaceKeyVault   = "keyvault"
	surfaceServiceBus = "servicebus"
	surfaceOperator   = "operator"
	surfaceHealth     = "health"
	surfaceMetrics    = "metrics"
	surfaceConsole    = "console" // the web console on the listen address
	surfaceOther      = "other"   // a host or path no surface serves
)

// tagged is a surface's handler that names its surface in the request's
// note first.
type tagged struct {
	surface string
	h       http.Handler
}

func (t tagged) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpx.NoteFrom(r.Context()).SetSurface(t.surface)
	t.h.ServeHTTP(w, r)
}

// maxErrorBody is how much of an error answer's body the front door keeps
// to find its error code: every surface's error document fits.
const maxErrorBody = 4 << 10

// errorCode is the error code of an answer, as the Azure SDK would report
// it to its caller (azcore's runtime.NewResponseError, sdk/azcore
// internal/exported/response_error.go): the x-ms-error-code header; else
// the JSON body's error.code (or odata.error.code); else the XML body's
// <Code>. Entra's token errors carry the AADSTS number in error_codes
// (what MSAL reports), which comes first, and an OAuth error string
// ({"error":"invalid_request"}, the identity endpoint's) is taken as is.
// It returns "" for a success or a body with no code.
func errorCode(h http.Header, body []byte) string {
	if c := h.Get("x-ms-error-code"); c != "" {
		return c
	}
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return ""
	case body[0] == '{':
		var v struct {
			Error      json.RawMessage `json:"error"`
			OData      json.RawMessage `json:"odata.error"`
			ErrorCodes []int64         `json:"error_codes"`
		}
		if json.Unmarshal(body, &v) != nil {
			return ""
		}
		if len(v.ErrorCodes) > 0 {
			return "AADSTS" + strconv.FormatInt(v.ErrorCodes[0], 10)
		}
		for _, raw := range []json.RawMessage{v.Error, v.OData} {
			var inner struct {
				Code string `json:"code"`
			}
			var s string
			switch {
			case json.Unmarshal(raw, &inner) == nil && inner.Code != "":
				return inner.Code
			case json.Unmarshal(raw, &s) == nil && s != "":
				return s
			}
		}
	case body[0] == '<':
		if m := xmlCode.FindSubmatch(body); m != nil {
			return string(m[1])
		}
	}
	return ""
}

// xmlCode is azcore's extractErrorCodeXML expression: Service Bus REST's
// <Error><Code>401</Code>…</Error>.
var xmlCode = regexp.MustCompile(`<(?:\w+:)?[cC]ode>\s*(\w+)\s*</(?:\w+:)?[cC]ode>`)

// serveMetrics serves the Prometheus metrics on the HTTPS listener to the
// operator: the same bearer key as the operator API (DIR/operator.json),
// compared in constant time, since the metrics name every tenant's queues.
// Prometheus scrapes it with authorization.credentials_file and the CA.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	got, want := sha256.Sum256([]byte(raw)), sha256.Sum256([]byte(s.operator.Key))
	if !ok || s.operator.Key == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tenantbridge operator"`)
		httpx.WriteJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{
			"code": "Unauthorized", "message": "The operator key is missing or wrong."}})
		return
	}
	s.metrics.Handler().ServeHTTP(w, r)
}

// healthz answers 200 while the process serves HTTP: liveness, which a
// supervisor restarts the process on. It checks nothing else, so that a
// database outage does not get every node restarted.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is /readyz's answer.
type readiness struct {
	Status string            `json:"status"`           // ok, unavailable
	Reason string            `json:"reason,omitempty"` // why not ready
	Checks map[string]string `json:"checks"`
}

// readyz answers 200 when the server can serve a request end to end: the
// store answers (a read of the first-party tenant, bounded by 3 seconds)
// and a signing key and the key-encryption key are loaded. Otherwise 503
// with the reason, for a load balancer to take the node out of rotation.
// The reason names the failed check, never the error's text (it may name
// the database's address); that goes to the log.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	ready := readiness{Status: "ok", Checks: map[string]string{"store": "ok", "signingKeys": "ok"}}
	var reasons []string
	if _, err := s.store.GetTenant(ctx, directory.MicrosoftTenantID); err != nil {
		s.logger.ErrorContext(ctx, "readiness: store unavailable", "err", err)
		ready.Checks["store"] = "unreachable"
		reasons = append(reasons, "the store does not answer")
	}
	if s.keys.Current().Key == nil || len(s.kek) != 32 {
		ready.Checks["signingKeys"] = "missing"
		reasons = append(reasons, "no signing key is loaded")
	}
	w.Header().Set("Cache-Control", "no-store")
	if len(reasons) > 0 {
		ready.Status, ready.Reason = "unavailable", strings.Join(reasons, "; ")
		httpx.WriteJSON(w, http.StatusServiceUnavailable, ready)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ready)
}

// metricsServer is the plain-HTTP server of Config.MetricsListen: the
// metrics without authorization, and the health endpoints, for a
// Prometheus and probes on a network the operator trusts.
func (s *Server) metricsServer(ctx context.Context) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{
			"code": "NotFound", "message": "This address serves GET /metrics, /healthz and /readyz only."}})
	})
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readHeaderTimeout,
		WriteTimeout:      time.Minute,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// serveMetricsListener serves ln with metricsServer until ctx ends.
func (s *Server) serveMetricsListener(ctx context.Context, ln net.Listener) error {
	hs := s.metricsServer(ctx)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
