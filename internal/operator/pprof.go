package operator

import (
	"bytes"
	"net/http"
	"net/http/pprof"
	rpprof "runtime/pprof"
	"strconv"
	"strings"
)

// maxProfileSeconds bounds the seconds parameter of a CPU profile, an
// execution trace or a delta profile: each holds a request (and, for the
// CPU profile and the trace, the process's only profiler) that long.
const maxProfileSeconds = 300

// The profiler's endpoints are net/http/pprof's handlers behind the
// operator key, with the API's own error shape: pprof answers its errors
// (an unknown profile, a bad parameter, a profiler already running) in
// text/plain, with status 500 for the last; the operator API answers
// every error as {"error":{"code","message"}} and never a 500 for a
// request it could have refused.

// cpuProfile and trace serve /debug/pprof/profile and /debug/pprof/trace.
func (a *API) cpuProfile(w http.ResponseWriter, r *http.Request) {
	a.profile(w, r, http.HandlerFunc(pprof.Profile), false)
}

func (a *API) trace(w http.ResponseWriter, r *http.Request) {
	a.profile(w, r, http.HandlerFunc(pprof.Trace), false)
}

// namedProfile serves /debug/pprof/{name}: heap, goroutine, allocs, block,
// mutex, threadcreate, or any profile the process registered.
func (a *API) namedProfile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if rpprof.Lookup(name) == nil {
		writeError(w, http.StatusNotFound, "NotFound", "There is no profile named "+quotePath(name)+"; the profiles are "+profileNames()+".")
		return
	}
	a.profile(w, r, pprof.Handler(name), true)
}

func profileNames() string {
	var names []string
	for _, p := range rpprof.Profiles() {
		names = append(names, p.Name())
	}
	return strings.Join(append(names, "profile", "trace"), ", ")
}

// profile checks the parameters pprof would take silently (a malformed
// seconds becomes 30, a huge one holds the request for hours), then runs h
// with its errors translated.
func (a *API) profile(w http.ResponseWriter, r *http.Request, h http.Handler, named bool) {
	q := r.URL.Query()
	if v := q.Get("seconds"); q.Has("seconds") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxProfileSeconds {
			writeError(w, http.StatusBadRequest, "InvalidParameter", "seconds must be a whole number from 1 to "+strconv.Itoa(maxProfileSeconds)+".")
			return
		}
	}
	if v := q.Get("debug"); named && q.Has("debug") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 2 {
			writeError(w, http.StatusBadRequest, "InvalidParameter", "debug must be 0, 1 or 2.")
			return
		}
	}
	pw := &pprofWriter{ResponseWriter: w}
	h.ServeHTTP(pw, r)
	if pw.status == 0 {
		return
	}
	// pprof refused; it wrote nothing yet but its headers.
	for _, k := range []string{"X-Go-Pprof", "Content-Type", "Content-Disposition"} {
		w.Header().Del(k)
	}
	msg := strings.TrimSpace(pw.msg.String())
	status, code := pw.status, "InvalidParameter"
	switch {
	case status == http.StatusNotFound:
		code = "NotFound"
	case status >= 500 && strings.HasPrefix(msg, "Could not enable"):
		// Another profile or trace is running: the process has one
		// profiler of each kind.
		status, code = http.StatusConflict, "ProfilerBusy"
	case status >= 500:
		code = "InternalError"
	}
	writeError(w, status, code, "The profiler refused: "+msg+".")
}

// pprofWriter holds back an error pprof writes (it marks them with the
// X-Go-Pprof header), so that profile can answer it in the API's shape;
// a profile itself passes through.
type pprofWriter struct {
	http.ResponseWriter
	status int // the error status pprof chose; 0 while it writes a profile
	msg    bytes.Buffer
}

func (p *pprofWriter) WriteHeader(code int) {
	if code >= 400 && p.Header().Get("X-Go-Pprof") != "" {
		p.status = code
		return
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *pprofWriter) Write(b []byte) (int, error) {
	if p.status != 0 {
		if p.msg.Len() < 512 {
			p.msg.Write(b[:min(len(b), 512)])
		}
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}
