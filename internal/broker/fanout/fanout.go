// Package fanout is the provider's fleet messenger of seed 004: the
// provider sends commands to the command queues its customers own and
// collects the status replies from the status queues they own, as its
// multi-tenant application's service principal in each customer tenant
// (Azure Service Bus Data Sender on the command queue, Data Receiver on
// the status queue). No secret crosses a tenant boundary: tokens are
// issued in the customer tenant, where the application was consented.
//
// Sends run concurrently on a bounded pool over one kept-alive transport.
// Replies are collected without a polling timer: each customer's status
// queue has exactly one peek-lock long-poll outstanding at a time, which
// the server answers as soon as a reply is sent, so a reply reaches the
// provider at once and an idle fleet costs one request per customer per
// long-poll (60 s by default).
//
// The package is a client of the wire only (OAuth 2.0 through azcore
// credentials and the Service Bus REST API), so it works against Azure as
// against tenantbridge.
package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Scope is the OAuth scope of Service Bus data-plane tokens.
const Scope = "https://servicebus.azure.net/.default"

// Defaults of Config.
const (
	DefaultWorkers        = 64
	DefaultReceiveTimeout = 60 * time.Second
	// DefaultRefreshBefore is how long before its expiry a cached token
	// is replaced.
	DefaultRefreshBefore = 5 * time.Minute
	// maxBody bounds what is read of a response (Service Bus messages are
	// at most 256 KiB).
	maxBody = 1 << 20
)

// Customer is one customer the provider messages: its tenant and the two
// queues it owns, as URLs (https://{namespace}.servicebus.windows.net/{queue}).
type Customer struct {
	TenantID     string
	CommandQueue string
	StatusQueue  string
	// Name is a label for reports; the tenant id when empty.
	Name string
}

func (c Customer) label() string {
	if c.Name != "" {
		return c.Name
	}
	return c.TenantID
}

// Command is one command to customers. ID identifies it across the fleet:
// each customer's copy is sent with MessageId ID:TenantID (so that a
// retried send is a duplicate the queue and the worker can drop) and
// CorrelationId ID (which the reply carries back).
type Command struct {
	ID          string
	Name        string // the message's Label: what to do, e.g. "ping"
	Body        []byte
	ContentType string // default application/json
	// TimeToLive, when positive, expires the command if no worker takes it.
	TimeToLive time.Duration
}

// MessageID is the MessageId of cmd's copy for tenantID.
func MessageID(commandID, tenantID string) string { return commandID + ":" + tenantID }

// Result is the outcome of sending a command to one customer.
type Result struct {
	Customer Customer
	// Err is nil when the command is in the customer's queue.
	Err     error
	Started time.Time // when the send began
	Elapsed time.Duration
}

// Error is a refusal by a customer's Service Bus or token service.
type Error struct {
	TenantID string
	Op       string // "token", "send", "receive", "complete"
	Status   int    // the HTTP status, 0 when the token service refused
	Message  string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s in tenant %s: %s", e.Op, e.TenantID, e.Message)
	}
	return fmt.Sprintf("%s in tenant %s: HTTP %d: %s", e.Op, e.TenantID, e.Status, e.Message)
}

// ErrRefused matches (errors.Is) every error by which a customer refuses
// the provider: a 401 or 403 from its Service Bus, or no token from its
// tenant (the application not, or no longer, consented there).
var ErrRefused = errors.New("refused by the customer")

// Is reports refusals as ErrRefused.
func (e *Error) Is(target error) bool {
	return target == ErrRefused && (e.Op == "token" || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// Config configures a Messenger.
type Config struct {
	// Credential returns the provider application's credential in a
	// customer tenant: tokens must be issued in that tenant. It is
	// called once per tenant (e.g. an azidentity.ClientSecretCredential
	// or ClientAssertionCredential with that TenantID).
	Credential func(tenantID string) (azcore.TokenCredential, error)
	// Transport carries every request; it should keep connections alive
	// (HTTP/2 multiplexes a namespace's sends and long-polls on one
	// connection) and must not time out a response header before
	// ReceiveTimeout. Default http.DefaultTransport.
	Transport http.RoundTripper
	// Workers bounds concurrent sends; default DefaultWorkers.
	Workers int
	// ReceiveTimeout is each long-poll's wait (whole seconds); default 60 s.
	ReceiveTimeout time.Duration
	// RefreshBefore replaces a cached token this long before it expires.
	RefreshBefore time.Duration
	Logger        *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Messenger sends commands to customers and collects their replies.
type Messenger struct {
	cfg    Config
	hc     *http.Client
	log    *slog.Logger
	mu     sync.Mutex
	tokens map[string]*tenantToken
}

// tenantToken is the cached token of one tenant; mu serializes its
// refresh so that a tenant has one token request in flight at most.
type tenantToken struct {
	mu   sync.Mutex
	cred azcore.TokenCredential
	tok  azcore.AccessToken
}

// New returns a Messenger.
func New(cfg Config) (*Messenger, error) {
	if cfg.Credential == nil {
		return nil, errors.New("fanout: Config.Credential is required")
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.ReceiveTimeout <= 0 {
		cfg.ReceiveTimeout = DefaultReceiveTimeout
	}
	cfg.ReceiveTimeout = max(time.Second, cfg.ReceiveTimeout.Truncate(time.Second))
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = DefaultRefreshBefore
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Messenger{cfg: cfg, log: log, tokens: map[string]*tenantToken{},
		hc: &http.Client{Transport: cfg.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// token returns a bearer token for tenantID, from the cache while it is
// fresh; refused, when set, is a token the caller saw refused, never returned
// again.
func (m *Messenger) token(ctx context.Context, tenantID, refused string) (string, error) {
	m.mu.Lock()
	tt := m.tokens[tenantID]
	if tt == nil {
		tt = &tenantToken{}
		m.tokens[tenantID] = tt
	}
	m.mu.Unlock()
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.tok.Token != "" && tt.tok.Token != refused && m.cfg.Now().Add(m.cfg.RefreshBefore).Before(tt.tok.ExpiresOn) {
		return tt.tok.Token, nil
	}
	if tt.cred == nil {
		cred, err := m.cfg.Credential(tenantID)
		if err != nil {
			return "", &Error{TenantID: tenantID, Op: "token", Message: err.Error()}
		}
		tt.cred = cred
	}
	// An empty tenant is the credential's own (a managed identity).
	tok, err := tt.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{Scope}, TenantID: tenantID})
	if err != nil {
		tt.tok = azcore.AccessToken{}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &Error{TenantID: tenantID, Op: "token", Message: oneLine(err.Error())}
	}
	tt.tok = tok
	return tok.Token, nil
}

// Forget drops the cached token of tenantID (e.g. after offboarding).
func (m *Messenger) Forget(tenantID string) {
	m.mu.Lock()
	delete(m.tokens, tenantID)
	m.mu.Unlock()
}

// response is a read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request as the provider in tenantID. A 401 is retried once
// with a new token (the cached one may have been revoked or expired
// early); a second 401 is the customer's refusal.
func (m *Messenger) do(ctx context.Context, tenantID, op, method, u string, body []byte, header http.Header) (response, error) {
	var refused string
	for attempt := 0; ; attempt++ {
		tok, err := m.token(ctx, tenantID, refused)
		if err != nil {
			return response{}, err
		}
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return response{}, &Error{TenantID: tenantID, Op: op, Message: err.Error()}
		}
		if body == nil {
			req.Body, req.ContentLength = http.NoBody, 0
		}
		copyHeader(req.Header, header)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := m.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return response{}, ctx.Err()
			}
			return response{}, fmt.Errorf("%s in tenant %s: %w", op, tenantID, err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			if ctx.Err() != nil {
				return response{}, ctx.Err()
			}
			return response{}, fmt.Errorf("%s in tenant %s: reading the response: %w", op, tenantID, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			refused = tok
			continue
		}
		return response{status: resp.StatusCode, header: resp.Header, body: raw}, nil
	}
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// failure is the error of an unexpected status.
func failure(tenantID, op string, r response) error {
	msg := oneLine(string(r.body))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" {
		msg = http.StatusText(r.status)
	}
	return &Error{TenantID: tenantID, Op: op, Status: r.status, Message: msg}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// brokerProperties is the BrokerProperties header this package writes and reads.
type brokerProperties struct {
	MessageId      string  `json:",omitempty"`
	CorrelationId  string  `json:",omitempty"`
	ReplyTo        string  `json:",omitempty"`
	Label          string  `json:",omitempty"`
	TimeToLive     float64 `json:",omitempty"`
	SequenceNumber int64   `json:",omitempty"`
	DeliveryCount  int64   `json:",omitempty"`
	LockToken      string  `json:",omitempty"`
	// EnqueuedTimeUtc is an RFC 1123 date on the wire.
	EnqueuedTimeUtc string `json:",omitempty"`
}

// SendOne sends cmd to one customer and returns when the command is
// durable in the customer's command queue.
func (m *Messenger) SendOne(ctx context.Context, c Customer, cmd Command) error {
	if cmd.ID == "" {
		return errors.New("fanout: the command has no ID")
	}
	bp := brokerProperties{MessageId: MessageID(cmd.ID, c.TenantID), CorrelationId: cmd.ID, ReplyTo: c.StatusQueue, Label: cmd.Name}
	if cmd.TimeToLive > 0 {
		bp.TimeToLive = cmd.TimeToLive.Seconds()
	}
	return m.send(ctx, c.TenantID, c.CommandQueue, bp, cmd.ContentType, cmd.Body)
}

// send posts one message to queue as the provider in tenantID.
func (m *Messenger) send(ctx context.Context, tenantID, queue string, bp brokerProperties, contentType string, body []byte) error {
	hdr, err := json.Marshal(bp)
	if err != nil {
		return err
	}
	if contentType == "" {
		contentType = "application/json"
	}
	if body == nil {
		body = []byte{}
	}
	r, err := m.do(ctx, tenantID, "send", http.MethodPost, strings.TrimSuffix(queue, "/")+"/messages", body,
		http.Header{"Content-Type": {contentType}, "Brokerproperties": {string(hdr)}})
	if err != nil {
		return err
	}
	if r.status != http.StatusCreated {
		return failure(tenantID, "send", r)
	}
	return nil
}

// Send sends cmd to every customer in customers (one, any or all of the
// fleet) concurrently, at most Config.Workers at a time, and returns one
// Result per customer, in the order given.
func (m *Messenger) Send(ctx context.Context, customers []Customer, cmd Command) []Result {
	results := make([]Result, len(customers))
	sem := make(chan struct{}, m.cfg.Workers)
	var wg sync.WaitGroup
	for i, c := range customers {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < len(customers); j++ {
				results[j] = Result{Customer: customers[j], Err: ctx.Err()}
			}
			wg.Wait()
			return results
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			err := m.SendOne(ctx, c, cmd)
			results[i] = Result{Customer: c, Err: err, Started: t0, Elapsed: time.Since(t0)}
			if err != nil {
				m.log.WarnContext(ctx, "fanout: send refused", "customer", c.label(), "command", cmd.ID, "err", err)
			}
		})
	}
	wg.Wait()
	return results
}

// Reply is one status message from a customer.
type Reply struct {
	Customer      Customer
	MessageID     string
	CorrelationID string // the command's ID
	ReplyTo       string
	Label         string
	ContentType   string
	Body          []byte
	Enqueued      time.Time
	DeliveryCount int64
	// Received is when the long-poll returned it.
	Received time.Time
}

// Handler handles one reply. Returning nil completes the reply (it is
// removed from the status queue); an error abandons it, so that it is
// delivered again.
type Handler func(context.Context, Reply) error

// ReceiveOne long-polls c's status queue once (peek-lock, waiting up to
// ReceiveTimeout). It returns ok false when nothing came; otherwise the
// reply and a settle function that completes it (or, with a non-nil
// error, abandons it).
func (m *Messenger) ReceiveOne(ctx context.Context, c Customer) (rep Reply, settle func(context.Context, error) error, ok bool, err error) {
	return m.receive(ctx, c, c.StatusQueue)
}

// receive peek-locks one message of queue as the provider in c's tenant.
func (m *Messenger) receive(ctx context.Context, c Customer, queue string) (rep Reply, settle func(context.Context, error) error, ok bool, err error) {
	u := strings.TrimSuffix(queue, "/") + "/messages/head?timeout=" + strconv.Itoa(int(m.cfg.ReceiveTimeout/time.Second))
	rctx, cancel := context.WithTimeout(ctx, m.cfg.ReceiveTimeout+30*time.Second)
	defer cancel()
	r, err := m.do(rctx, c.TenantID, "receive", http.MethodPost, u, nil, nil)
	if err != nil {
		if ctx.Err() != nil {
			return rep, nil, false, ctx.Err()
		}
		return rep, nil, false, err
	}
	switch r.status {
	case http.StatusNoContent:
		return rep, nil, false, nil
	case http.StatusCreated:
	default:
		return rep, nil, false, failure(c.TenantID, "receive", r)
	}
	var bp brokerProperties
	if h := r.header.Get("BrokerProperties"); h != "" {
		if err := json.Unmarshal([]byte(h), &bp); err != nil {
			return rep, nil, false, fmt.Errorf("receive in tenant %s: malformed BrokerProperties: %w", c.TenantID, err)
		}
	}
	loc := r.header.Get("Location")
	if err := sameOrigin(queue, loc); err != nil {
		return rep, nil, false, fmt.Errorf("receive in tenant %s: %w", c.TenantID, err)
	}
	rep = Reply{Customer: c, MessageID: bp.MessageId, CorrelationID: bp.CorrelationId, ReplyTo: bp.ReplyTo, Label: bp.Label,
		ContentType: r.header.Get("Content-Type"), Body: r.body, DeliveryCount: bp.DeliveryCount, Received: m.cfg.Now()}
	if t, err := http.ParseTime(bp.EnqueuedTimeUtc); err == nil {
		rep.Enqueued = t
	}
	settle = func(ctx context.Context, handleErr error) error {
		method, op := http.MethodDelete, "complete"
		if handleErr != nil {
			method, op = http.MethodPut, "abandon"
		}
		r, err := m.do(ctx, c.TenantID, op, method, loc, nil, nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return failure(c.TenantID, op, r)
		}
		return nil
	}
	return rep, settle, true, nil
}

// sameOrigin refuses a Location that would send the provider's token to
// another host than the queue's.
func sameOrigin(queue, loc string) error {
	q, err1 := url.Parse(queue)
	l, err2 := url.Parse(loc)
	if loc == "" || err1 != nil || err2 != nil || l.Scheme != "https" || !strings.EqualFold(q.Host, l.Host) {
		return fmt.Errorf("the lock's Location %q is not on the queue's host", loc)
	}
	return nil
}

// Listen collects replies from every customer until ctx ends: one
// long-poll per customer's status queue at a time, each re-issued as soon
// as it returns, so that a reply is handed to handle as soon as it is sent
// and an idle customer costs one request per ReceiveTimeout. A reply is
// completed after handle returns nil. Failures (a customer that refuses,
// a queue that is gone) are given to onError, when set, and retried with
// a backoff of 1 s doubling up to ReceiveTimeout, so a broken customer
// costs no more than an idle one. Listen returns ctx's error.
func (m *Messenger) Listen(ctx context.Context, customers []Customer, handle Handler, onError func(Customer, error)) error {
	var wg sync.WaitGroup
	for _, c := range customers {
		wg.Go(func() { m.listenOne(ctx, c, handle, onError) })
	}
	wg.Wait()
	return ctx.Err()
}

func (m *Messenger) listenOne(ctx context.Context, c Customer, handle Handler, onError func(Customer, error)) {
	backoff := time.Duration(0)
	fail := func(err error) {
		if onError != nil {
			onError(c, err)
		}
		m.log.WarnContext(ctx, "fanout: status queue", "customer", c.label(), "err", err)
		backoff = min(max(2*backoff, time.Second), m.cfg.ReceiveTimeout)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	for ctx.Err() == nil {
		rep, settle, ok, err := m.ReceiveOne(ctx, c)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fail(err)
			continue
		}
		backoff = 0
		if !ok {
			continue
		}
		herr := handle(ctx, rep)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := settle(sctx, herr); err != nil {
			fail(err)
		}
		cancel()
	}
}

// Replies is Listen delivering to a channel: each reply is completed once
// the channel has taken it. The channel is closed when ctx ends.
func (m *Messenger) Replies(ctx context.Context, customers []Customer, onError func(Customer, error)) <-chan Reply {
	ch := make(chan Reply)
	go func() {
		defer close(ch)
		_ = m.Listen(ctx, customers, func(ctx context.Context, r Reply) error {
			select {
			case ch <- r:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, onError)
	}()
	return ch
}
