package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errExhausted is what a body source returns when it has no more bodies
// (the presigned assertions ran out).
var errExhausted = errors.New("no more request bodies")

// bodySource makes the request bodies of one worker: next returns the body
// of its next request. A source may reuse the returned slice once next is
// called again.
type bodySource func() (next func() ([]byte, error))

// staticBody is a source whose every request has the same body.
func staticBody(body []byte) bodySource {
	return func() func() ([]byte, error) {
		return func() ([]byte, error) { return body, nil }
	}
}

// signedBodies signs a fresh assertion for every request, in the worker,
// before its latency is measured.
func signedBodies(prefix []byte, s *signer) bodySource {
	return func() func() ([]byte, error) {
		buf := make([]byte, 0, len(prefix)+2048)
		return func() ([]byte, error) {
			return s.sign(append(buf[:0], prefix...))
		}
	}
}

// presignedBodies hands out bodies made in advance, each once, to all workers.
type presignedBodies struct {
	bodies [][]byte
	next   atomic.Int64
}

func (p *presignedBodies) source() bodySource {
	return func() func() ([]byte, error) {
		return func() ([]byte, error) {
			i := p.next.Add(1) - 1
			if i >= int64(len(p.bodies)) {
				return nil, errExhausted
			}
			return p.bodies[i], nil
		}
	}
}

// target is the token endpoint under load, reached over one shared
// transport.
type target struct {
	client *http.Client
	url    string
	dials  *atomic.Int64 // connections opened by the transport
	proto  atomic.Pointer[string]
}

// maxResponse bounds how much of a response is kept; the rest is drained.
const maxResponse = 1 << 20

var accessTokenField = []byte(`"access_token"`)

// post sends one token request and reports how it went: failure is "" for a
// token, else the key it is counted under.
func (t *target) post(ctx context.Context, body []byte, buf *bytes.Buffer) (failure string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return "client: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	resp, failure := t.exchange(req, buf)
	switch {
	case failure != "":
		return failure
	case resp.StatusCode != http.StatusOK:
		return responseFailure(resp.StatusCode, buf.Bytes())
	case !bytes.Contains(buf.Bytes(), accessTokenField):
		return "HTTP 200 without access_token"
	}
	return ""
}

// exchange sends req over the load transport, noting the protocol of the
// first response, and reads the response's body (up to maxResponse) into
// buf; failure is a transport failure.
func (t *target) exchange(req *http.Request, buf *bytes.Buffer) (resp *http.Response, failure string) {
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, transportFailure(err)
	}
	if t.proto.Load() == nil {
		p := resp.Proto
		t.proto.CompareAndSwap(nil, &p)
	}
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, transportFailure(err)
	}
	return resp, ""
}

var aadstsCode = regexp.MustCompile(`AADSTS\d+`)

// responseFailure names a refusal by its AADSTS code (or OAuth error) and status.
func responseFailure(status int, body []byte) string {
	if m := aadstsCode.Find(body); m != nil {
		return fmt.Sprintf("%s (HTTP %d)", m, status)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" && len(e.Error) <= 64 {
		return fmt.Sprintf("%s (HTTP %d)", e.Error, status)
	}
	return fmt.Sprintf("HTTP %d", status)
}

// transportFailure names a failure to get a response, in few enough
// distinct words to count by.
func transportFailure(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "transport: connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "transport: connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "transport: connection closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "transport: timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 100 {
		msg = msg[:100] + "..."
	}
	return "transport: " + msg
}

// phase is what one timed run of the workers saw.
type phase struct {
	elapsed     time.Duration
	samples     []time.Duration // latencies of the tokens, unsorted
	failed      int
	errors      map[string]int
	exhausted   bool // the body source ran out before the deadline
	interrupted bool // ctx ended before the deadline
	dials       int64
}

// worker is one goroutine's share of a phase; its buffers are allocated
// once, before the clock starts.
type worker struct {
	samples []time.Duration
	failed  int
	errors  map[string]int
	body    bytes.Buffer
}

// run has n workers send requests back to back for d, each starting a
// request only before the deadline; requests in flight at the deadline
// finish and count. capHint is how many samples each worker preallocates.
// The phase ends early when ctx does (requests cut short by it do not
// count) or when the source runs out.
func (t *target) run(ctx context.Context, n int, d time.Duration, src bodySource, capHint int) phase {
	return t.runWith(ctx, n, d, src, capHint, t.post)
}

// runWith is run with send making each request.
func (t *target) runWith(ctx context.Context, n int, d time.Duration, src bodySource, capHint int,
	send func(ctx context.Context, body []byte, buf *bytes.Buffer) (failure string)) phase {
	workers := make([]*worker, n)
	nexts := make([]func() ([]byte, error), n)
	for i := range workers {
		workers[i] = &worker{samples: make([]time.Duration, 0, capHint)}
		workers[i].body.Grow(8 << 10)
		nexts[i] = src()
	}
	var exhausted atomic.Bool
	dials0 := t.dials.Load()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i, w := range workers {
		next := nexts[i]
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				body, err := next()
				if errors.Is(err, errExhausted) {
					exhausted.Store(true)
					return
				}
				if err != nil {
					w.fail("client: " + err.Error())
					return
				}
				t0 := time.Now()
				failure := send(ctx, body, &w.body)
				lat := time.Since(t0)
				if ctx.Err() != nil {
					return // cut short: neither a token nor a refusal
				}
				if failure != "" {
					w.fail(failure)
					continue
				}
				w.samples = append(w.samples, lat)
			}
		})
	}
	wg.Wait()
	p := phase{elapsed: time.Since(start), exhausted: exhausted.Load(), interrupted: ctx.Err() != nil, dials: t.dials.Load() - dials0}
	total := 0
	for _, w := range workers {
		total += len(w.samples)
	}
	p.samples = make([]time.Duration, 0, total)
	for _, w := range workers {
		p.samples = append(p.samples, w.samples...)
		countFailures(&p.failed, &p.errors, w)
	}
	return p
}

// countFailures adds w's failures to a phase's.
func countFailures(failed *int, errs *map[string]int, w *worker) {
	*failed += w.failed
	for k, v := range w.errors {
		if *errs == nil {
			*errs = map[string]int{}
		}
		(*errs)[k] += v
	}
}

func (w *worker) fail(key string) {
	if w.errors == nil {
		w.errors = map[string]int{}
	}
	w.errors[key]++
	w.failed++
}

// Latency summarises the latencies of the successful requests of a run,
// from every sample (nearest-rank percentiles, not estimates).
type Latency struct {
	P50, P90, P99, Max, Mean time.Duration
}

// summarize computes a Latency; it sorts samples in place.
func summarize(samples []time.Duration) Latency {
	n := len(samples)
	if n == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p/100*float64(n))) - 1
		return samples[max(0, min(i, n-1))]
	}
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	return Latency{P50: rank(50), P90: rank(90), P99: rank(99), Max: samples[n-1], Mean: sum / time.Duration(n)}
}
