package server

import (
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/observe"
)

// router sends a request to the surface that owns its host name. Azure's
// surfaces are told apart by host, not path, and so are ours: a client that
// reaches us as graph.microsoft.com gets Graph, exactly as it would in Azure.
type router struct {
	byHost map[string]http.Handler // exact host names
	// byParent serves one label under these names: {vault}.vault.azure.net,
	// {namespace}.servicebus.windows.net. The surface decides whether the
	// label names something that exists.
	byParent  map[string]http.Handler
	bareHosts map[string]bool // the listen address's names: token service and operator API
	bare      http.Handler
}

// serves reports whether host (lower-case, no port) is one of the Azure
// names the router sends to a surface; the listen address's own names are
// not among them. Each new surface adds its names here by adding them to
// byHost, and the proxy follows.
func (rt *router) serves(host string) bool {
	_, ok := rt.handler(host)
	return ok
}

// handler finds the surface for a host name.
func (rt *router) handler(host string) (http.Handler, bool) {
	if h, ok := rt.byHost[host]; ok {
		return h, true
	}
	if label, parent, ok := strings.Cut(host, "."); ok && label != "" {
		h, ok := rt.byParent[parent]
		return h, ok
	}
	return nil, false
}

// hosts lists, sorted, the names serves accepts, a name with a label of
// the surface's choosing as "*.parent".
func (rt *router) hosts() []string {
	out := slices.Collect(maps.Keys(rt.byHost))
	for p := range rt.byParent {
		out = append(out, "*."+p)
	}
	slices.Sort(out)
	return out
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := hostOnly(r.Host)
	if h, ok := rt.handler(host); ok {
		h.ServeHTTP(w, r)
		return
	}
	if rt.bareHosts[host] {
		rt.bare.ServeHTTP(w, r)
		return
	}
	httpx.WriteJSON(w, http.StatusMisdirectedRequest, map[string]any{"error": map[string]string{
		"code":    "MisdirectedRequest",
		"message": "tenantbridge does not serve the host " + quoteHost(host) + ".",
	}})
}

// hostOnly returns the lower-cased host name of a Host header, without port,
// brackets or trailing dot.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	return strings.ToLower(h)
}

// quoteHost keeps a hostile Host header from shaping the error message.
func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100]
	}
	return "'" + strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '\'' {
			return '?'
		}
		return r
	}, h) + "'"
}

// statusRecorder remembers the status a handler wrote, for the access log.
// When the request's body timed out (body.expired), whatever the handler
// tries to answer is replaced by the front door's 408: the handler saw a
// read error, not a client's mistake, and must not turn it into a 400 or
// a 500 of its own.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	body    *timedBody    // nil when the request has no body deadline
	timeout time.Duration // the body deadline, for the 408's message
	cut     bool          // the 408 was sent: drop what the handler writes
	// errBody is the start of an error answer's body (status 400 and
	// up), where its error code is found (errorCode); errCode is the
	// code of an answer the front door wrote itself.
	errBody []byte
	errCode string
}

// code is the answer's error code, "" for a success.
func (s *statusRecorder) code() string {
	if s.errCode != "" || s.status < 400 {
		return s.errCode
	}
	return errorCode(s.Header(), s.errBody)
}

// takeOver sends the 408 instead of the handler's answer, if the body timed
// out and nothing was sent yet; it reports whether the handler's output
// must be dropped.
func (s *statusRecorder) takeOver() bool {
	if s.cut {
		return true
	}
	if s.status != 0 || s.body == nil || !s.body.expired.Load() {
		return false
	}
	s.cut, s.status, s.errCode = true, http.StatusRequestTimeout, "RequestTimeout"
	writeBodyTimeout(s.ResponseWriter, s.timeout)
	return true
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.takeOver() {
		return
	}
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.takeOver() {
		return len(b), nil
	}
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if s.status >= 400 && len(s.errBody) < maxErrorBody {
		s.errBody = append(s.errBody, b[:min(len(b), maxErrorBody-len(s.errBody))]...)
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets long-polling handlers push their response out.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// middleware gives each request an id, its client address and public base
// URL, a body limit and a body deadline (see timedBody), panic containment,
// one access-log line, its count in the metrics and, with tracing on, its
// server span (the parent of its RBAC decisions' and store calls' spans). The log line has the
// path but never the query string, which may carry a signature; it names
// the surface, the tenant and principal (object id) the caller's
// credential named, and the answer's error code, which the surfaces
// report through the request's httpx.Note and the answer's own body.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := uuid.NewString()
		client, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			client = r.RemoteAddr
		}
		info := httpx.Info{RequestID: id, ClientAddr: client, BaseURL: "https://" + strings.ToLower(r.Host)}
		note := &httpx.Note{}
		ctx, span := s.tracing.StartRequest(httpx.WithNote(httpx.WithInfo(r.Context(), info), note), r) // nil span: tracing off
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w, timeout: s.bodyTimeout}
		if b := limitBody(w, r, s.bodyTimeout); b != nil {
			rec.body, r.Body = b, b
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		rec.Header().Set("x-ms-request-id", id)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logger.ErrorContext(r.Context(), "handler panic", "request_id", id, "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 && !rec.takeOver() {
					httpx.WriteJSON(rec, http.StatusInternalServerError, map[string]any{"error": map[string]string{
						"code": "InternalServerError", "message": "The server failed to process the request; request id " + id + "."}})
				}
			}
			took, status, code := time.Since(start), rec.status, rec.code()
			if status == 0 {
				status = http.StatusOK // what net/http sends for a handler that wrote nothing
			}
			surface, tenant, principal := note.Read()
			if surface == "" {
				surface = surfaceOther
			}
			if s.metrics != nil { // nil only in tests that build a bare front door
				s.metrics.Request(surface, status, code, took)
			}
			observe.EndRequest(span, observe.RequestOutcome{Method: r.Method, Surface: surface, TenantID: tenant, Principal: principal,
				RequestID: id, ErrorCode: code, Status: status, Client: client})
			s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("host", hostOnly(r.Host)),
				slog.String("path", r.URL.Path), slog.Int("status", status), slog.String("surface", surface),
				slog.String("tenant", tenant), slog.String("principal", principal), slog.String("error_code", code),
				slog.String("client", client), slog.Duration("duration", took), observe.TraceAttr(span))
		}()
		next.ServeHTTP(rec, r)
		rec.takeOver() // a handler that answered nothing after the body timed out
	})
}
