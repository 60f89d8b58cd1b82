// Package outbox delivers the messages of the store's durable outbox
// (store.Outbox): HTTP POSTs to endpoints outside tenantbridge, such as a
// managed application's lifecycle notifications to its publisher.
//
// A message is written in the same transaction as the change it reports;
// a Deliverer sends it afterwards. Delivery is at least once: an attempt
// whose 2xx could not be recorded (the process died, the database was
// unreachable) is repeated once the store's claim on the message runs
// out, so receivers must be idempotent (the lifecycle notification carries
// eventTime for exactly that). It is never concurrent: the store hands a
// message to one deliverer at a time, across processes, and one Key's
// messages one after another in order.
//
// Retries: a 2xx delivers the message; a status of 500 or more, 429 or a
// transport error (refused connection, timeout, TLS failure) retries it
// with exponential backoff, or after the endpoint's Retry-After, until
// its deadline (Deadline, or Created + MaxAge, 10 hours by default), when
// it fails; any other status (a 4xx: the endpoint refused it) fails it at
// once. Every attempt is recorded in the delivery log with its status,
// error and duration; errors never carry a URL's query string, which may
// hold a signature.
//
// Credentials: a message with an AuthRef (store.OutboxMessage) carries a
// reference, never a secret. Before each attempt the deliverer resolves it
// with Config.Authorize into the request's Authorization header. A failure
// to resolve is transient (the secret's vault may be briefly unreachable,
// or the secret not yet set): the attempt is recorded as failed without a
// status and retried with backoff until the deadline, like an unreachable
// endpoint; neither the log nor the delivery log ever holds the resolved
// value. A message with an AuthRef and no Config.Authorize fails at once:
// nothing could ever resolve it.
package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Defaults of Config.
const (
	DefaultMaxAge      = 10 * time.Hour
	DefaultConcurrency = 8
	// AttemptTimeout bounds one attempt, well inside the store's claim
	// on the message (two minutes; see store.Outbox.DueOutbox).
	AttemptTimeout = 30 * time.Second
	// MaxRetryAfter caps the wait an endpoint may ask for in Retry-After.
	MaxRetryAfter = time.Hour

	firstBackoff = 5 * time.Second
	maxBackoff   = 15 * time.Minute
	// recordTimeout bounds recording an attempt, which goes on after Run's
	// context is cancelled so that a delivery made is not made again.
	recordTimeout = 10 * time.Second
	// maxResponse is how much of a response body is read (to reuse the
	// connection) before it is dropped.
	maxResponse = 64 << 10
	// maxError bounds an error kept in the delivery log.
	maxError = 1024
)

// Config is what a Deliverer needs.
type Config struct {
	Store store.Store // required
	// Client sends the POSTs. Nil: a client that does not follow
	// redirects (a 3xx fails the message, like a 4xx).
	Client *http.Client
	Logger *slog.Logger // nil: discard
	// Now is the clock; nil: time.Now. Tests that move it call Notify
	// afterwards, because the Deliverer's timers run on real time.
	Now func() time.Time
	// MaxAge is how long after Created a message without a Deadline is
	// tried; 0: DefaultMaxAge.
	MaxAge time.Duration
	// Backoff is the wait after the attempt-th failed attempt (1, 2, ...);
	// nil: exponential from 5 s, doubling, at most 15 min, ±20 % jitter.
	Backoff func(attempt int) time.Duration
	// Concurrency is how many messages are in flight at once; 0:
	// DefaultConcurrency.
	Concurrency int
	// Authorize resolves a message's AuthRef into the value of its
	// Authorization header, at send time (the message stores only the
	// reference). An error is a transient failure: the attempt is retried
	// with backoff until the deadline; the error text goes into the
	// delivery log, so it must not carry the secret. Nil: a message with
	// an AuthRef fails at once (messages without one are unaffected).
	Authorize func(ctx context.Context, ref string) (string, error)
	// Observer, if set, is told the outcome of every attempt, for the
	// operator's metrics.
	Observer Observer
	// LookEvery, if positive, bounds how long Run sleeps without looking
	// at the store: what other processes sharing it enqueued, or claimed
	// and then died holding (their claim runs out), is taken up within
	// it. Zero: Run sleeps until Notify or the next due message it knows
	// of, which is right for a store no other process writes.
	LookEvery time.Duration
}

// Observer counts delivery attempts by the state they left the message
// in: delivered, pending (to be retried) or failed.
type Observer interface {
	OutboxAttempt(state store.OutboxState)
}

// Deliverer sends the outbox's messages. Create it with New and start it
// with Run; call Notify after committing a new message.
type Deliverer struct {
	st      store.Store
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	maxAge  time.Duration
	backoff func(int) time.Duration
	slots   int
	authz   func(context.Context, string) (string, error)
	obs     Observer // nil: none
	every   time.Duration

	wake chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // message ids being attempted here
}

// New returns a Deliverer over cfg.Store.
func New(cfg Config) (*Deliverer, error) {
	if cfg.Store == nil {
		return nil, errors.New("outbox: a store is required")
	}
	d := &Deliverer{st: cfg.Store, client: cfg.Client, log: cfg.Logger, now: cfg.Now, maxAge: cfg.MaxAge,
		backoff: cfg.Backoff, slots: cfg.Concurrency, authz: cfg.Authorize, obs: cfg.Observer, every: cfg.LookEvery, wake: make(chan struct{}, 1), inflight: map[string]bool{}}
	if d.client == nil {
		d.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.maxAge <= 0 {
		d.maxAge = DefaultMaxAge
	}
	if d.backoff == nil {
		d.backoff = Backoff
	}
	if d.slots <= 0 {
		d.slots = DefaultConcurrency
	}
	return d, nil
}

// Backoff is the default backoff: 5 s after the first failed attempt,
// doubling after each, at most 15 minutes, each varied by up to ±20 % so
// that the messages of one endpoint that failed together do not all come
// back together.
func Backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 20 {
		d = min(firstBackoff<<(attempt-1), maxBackoff)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Notify wakes Run to look for due messages at once. The enqueuer calls
// it after committing a message; it never blocks.
func (d *Deliverer) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers messages until ctx is done, then waits for the attempts in
// flight and returns ctx's error. It sleeps until Notify or the next
// message's NextAttempt, never polling on a fixed timer. Messages left
// pending by an earlier Run, in this process or another, are continued.
func (d *Deliverer) Run(ctx context.Context) error {
	var (
		wg       sync.WaitGroup
		timer    = time.NewTimer(0)
		failures int
	)
	defer wg.Wait()
	defer timer.Stop()
	<-timer.C
	for {
		wait, err := d.dispatch(ctx, &wg)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			wait = min(time.Second<<min(failures-1, 5), 30*time.Second)
			d.log.ErrorContext(ctx, "outbox: reading due messages failed", "err", err, "retry_in", wait)
		} else {
			failures = 0
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// dispatch starts attempts of the due messages that free slots allow and
// returns how long to sleep before looking again: negative for until
// woken (by Notify or a finished attempt).
func (d *Deliverer) dispatch(ctx context.Context, wg *sync.WaitGroup) (time.Duration, error) {
	for {
		d.mu.Lock()
		free := d.slots - len(d.inflight)
		d.mu.Unlock()
		if free <= 0 {
			return -1, nil // a finished attempt wakes Run
		}
		ms, err := d.st.DueOutbox(ctx, d.now(), free)
		if err != nil {
			return 0, err
		}
		started := 0
		for _, m := range ms {
			d.mu.Lock()
			busy := d.inflight[m.ID]
			if !busy {
				d.inflight[m.ID] = true
			}
			d.mu.Unlock()
			if busy {
				continue // its claim ran out under a moved test clock; it is being tried
			}
			started++
			wg.Go(func() {
				defer func() {
					d.mu.Lock()
					delete(d.inflight, m.ID)
					d.mu.Unlock()
					d.Notify()
				}()
				d.deliver(ctx, m)
			})
		}
		if len(ms) < free || started == 0 {
			break
		}
	}
	next, ok, err := d.st.NextOutboxDue(ctx)
	if err != nil {
		return 0, err
	}
	wait := time.Duration(-1)
	if ok {
		wait = max(next.Sub(d.now()), 0)
	}
	if d.every > 0 && (wait < 0 || wait > d.every) {
		wait = d.every
	}
	return wait, nil
}

// deliver makes one attempt at m and records it.
func (d *Deliverer) deliver(ctx context.Context, m store.OutboxMessage) {
	deadline := m.Deadline
	if deadline.IsZero() {
		deadline = m.Created.Add(d.maxAge)
	}
	start := d.now()
	log := d.log.With("message", m.ID, "tenant", m.TenantID, "topic", m.Topic, "endpoint", redactURL(m.URL))
	if start.After(deadline) {
		log.WarnContext(ctx, "outbox: message expired undelivered", "attempts", m.Attempts, "last_status", m.LastStatus, "last_error", m.LastError)
		d.record(ctx, log, store.OutboxAttempt{MessageID: m.ID, At: start, Error: "deadline passed before the attempt"}, store.OutboxFailed, time.Time{})
		return
	}
	status, retryAfter, err := d.post(ctx, m)
	end := d.now()
	a := store.OutboxAttempt{MessageID: m.ID, At: start, Status: status, Duration: max(end.Sub(start), 0)}
	if err != nil {
		a.Error = scrub(err.Error())
	} else if status < 200 || status > 299 {
		a.Error = strconv.Itoa(status) + " " + http.StatusText(status)
	}
	switch {
	case err == nil && status >= 200 && status <= 299:
		log.DebugContext(ctx, "outbox: delivered", "status", status, "attempts", m.Attempts+1)
		d.record(ctx, log, a, store.OutboxDelivered, time.Time{})
	case errors.As(err, new(*badURLError)):
		log.WarnContext(ctx, "outbox: message failed: its URL cannot be sent to", "err", a.Error)
		d.record(ctx, log, a, store.OutboxFailed, time.Time{})
	case errors.Is(err, errNoAuthorizer):
		log.WarnContext(ctx, "outbox: message failed: it has an AuthRef and the deliverer no Authorize", "err", a.Error)
		d.record(ctx, log, a, store.OutboxFailed, time.Time{})
	case ctx.Err() != nil:
		// Stopped mid-attempt: not the endpoint's fault; due again at
		// once for the next Run.
		a.Error = "the deliverer stopped during the attempt"
		d.record(ctx, log, a, store.OutboxPending, end)
	case err != nil || status >= 500 || status == http.StatusTooManyRequests:
		wait := retryAfter
		if wait <= 0 {
			wait = d.backoff(m.Attempts + 1)
		}
		next := end.Add(wait)
		if next.After(deadline) {
			log.WarnContext(ctx, "outbox: message failed: its deadline passed", "status", status, "err", a.Error, "attempts", m.Attempts+1)
			d.record(ctx, log, a, store.OutboxFailed, time.Time{})
			return
		}
		log.InfoContext(ctx, "outbox: attempt failed; retrying", "status", status, "err", a.Error, "attempts", m.Attempts+1, "retry_in", wait)
		d.record(ctx, log, a, store.OutboxPending, next)
	default:
		log.WarnContext(ctx, "outbox: the endpoint refused the message", "status", status, "attempts", m.Attempts+1)
		d.record(ctx, log, a, store.OutboxFailed, time.Time{})
	}
}

// post sends m once and returns the response's status and Retry-After.
func (d *Deliverer) post(ctx context.Context, m store.OutboxMessage) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err == nil && req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		err = fmt.Errorf("the URL's scheme %q is not http or https", req.URL.Scheme)
	}
	if err != nil {
		return 0, 0, &badURLError{err}
	}
	ct := m.ContentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	if m.AuthRef != "" {
		if d.authz == nil {
			return 0, 0, errNoAuthorizer
		}
		v, err := d.authz(ctx, m.AuthRef)
		if err != nil {
			return 0, 0, &authError{err}
		}
		req.Header.Set("Authorization", v)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), d.now()), nil
}

// errNoAuthorizer fails a message with an AuthRef when Config.Authorize
// is nil.
var errNoAuthorizer = errors.New("the message has an AuthRef but the deliverer has no Authorize to resolve it")

// authError is a failure to resolve a message's AuthRef: transient.
type authError struct{ err error }

func (e *authError) Error() string {
	return "resolving the message's credential failed: " + e.err.Error()
}
func (e *authError) Unwrap() error { return e.err }

// badURLError is a message that no attempt can send.
type badURLError struct{ err error }

func (e *badURLError) Error() string { return "bad URL: " + e.err.Error() }

// retryAfter parses a Retry-After header (seconds or an HTTP date) into a
// wait between 1 s and MaxRetryAfter; 0 when there is none.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var wait time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		wait = time.Duration(min(n, int64(MaxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		wait = t.Sub(now)
	} else {
		return 0
	}
	return min(max(wait, time.Second), MaxRetryAfter)
}

// record stores an attempt's outcome. A message that is no longer pending
// was finished by another deliverer after this one's claim ran out.
func (d *Deliverer) record(ctx context.Context, log *slog.Logger, a store.OutboxAttempt, state store.OutboxState, next time.Time) {
	if d.obs != nil {
		d.obs.OutboxAttempt(state)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err := d.st.RecordOutboxAttempt(rctx, a, state, next)
	switch {
	case errors.Is(err, store.ErrNotFound):
		log.InfoContext(ctx, "outbox: the message was finished elsewhere; attempt not logged", "state", state, "status", a.Status)
	case err != nil:
		// The claim runs out and the message is tried again: at least once.
		log.ErrorContext(ctx, "outbox: recording an attempt failed; the message will be tried again", "state", state, "status", a.Status, "err", err)
	}
}

// urlInText finds URLs with a query or fragment in error text.
var urlInText = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^\s"'?#]*)[?#][^\s"']*`)

// scrub makes an error fit for the delivery log: no query strings (they
// may carry a signature), valid UTF-8 without NUL, bounded.
func scrub(s string) string {
	s = urlInText.ReplaceAllString(s, "$1")
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) > maxError {
		cut := maxError
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// redactURL is u without its query, user info and fragment, for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("(unparsable URL of %d bytes)", len(raw))
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}
