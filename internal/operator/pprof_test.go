package operator_test

import (
	"bytes"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
)

// The profiler's refusals are the operator API's JSON errors, never
// pprof's text/plain, and never a 500: an unknown profile is 404, a bad
// or unbounded parameter 400, a profiler already running 409.
func TestProfilerErrorsAreJSON(t *testing.T) {
	a := start(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/debug/pprof/nosuch", 404, "NotFound"},
		{"GET", "/debug/pprof/%ff%fe", 404, "NotFound"},
		{"GET", "/debug/pprof/", 404, "NotFound"},
		{"POST", "/debug/pprof/heap", 404, "NotFound"},
		{"GET", "/debug/pprof/heap?debug=x", 400, "InvalidParameter"},
		{"GET", "/debug/pprof/heap?debug=7", 400, "InvalidParameter"},
		{"GET", "/debug/pprof/heap?seconds=0", 400, "InvalidParameter"},
		{"GET", "/debug/pprof/heap?seconds=1&debug=1", 400, "InvalidParameter"}, // refused by pprof itself
		{"GET", "/debug/pprof/profile?seconds=abc", 400, "InvalidParameter"},
		{"GET", "/debug/pprof/profile?seconds=100000", 400, "InvalidParameter"},
		{"GET", "/debug/pprof/trace?seconds=-1", 400, "InvalidParameter"},
	} {
		r := a.do(tc.method, tc.path, "")
		if r.status != tc.status || r.errorCode() != tc.code {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, r.status, r.raw, tc.status, tc.code)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || r.header.Get("X-Go-Pprof") != "" {
			t.Errorf("%s %s: Content-Type %q, X-Go-Pprof %q", tc.method, tc.path, ct, r.header.Get("X-Go-Pprof"))
		}
	}

	// The process has one CPU profiler; while something holds it, a CPU
	// profile is refused with 409 (pprof says 500).
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("the CPU profiler is already in use: %v", err)
	}
	r := a.do("GET", "/debug/pprof/profile?seconds=1", "")
	pprof.StopCPUProfile()
	if r.status != http.StatusConflict || r.errorCode() != "ProfilerBusy" {
		t.Errorf("CPU profile while the profiler is busy: %d %s, want 409 ProfilerBusy", r.status, r.raw)
	}
}
