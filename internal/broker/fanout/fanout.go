// Package fanout is the provider's fleet messenger of seed 004: the
// provider sends commands to the command queues its customers own and
// collects the status replies from the status queues they own, as its
// multi-tenant application's service principal in each customer tenant
// (Azure Service Bus Data Sender on the command queue, Data Receiver on
// the status queue). No secret crosses a tenant boundary: tokens are
// issued in the customer tenant, where the application was consented.
//
// It speaks AMQP 1.0 through the Service Bus SDK for Go (azservicebus),
// the protocol every Service Bus SDK uses. Each customer namespace gets
// one azservicebus.Client (one AMQP connection), which carries the sender
// link of the command queue and the receiver link of the status queue.
// Sends run concurrently on a bounded pool. Replies are collected without
// a polling timer: each status queue has one peek-lock receiver whose
// ReceiveMessages waits with one credit outstanding until a reply comes,
// so a reply reaches the provider as soon as it is sent, and an idle
// fleet costs only each connection's heartbeats (an empty 8-byte frame
// each way every 15 s with tenantbridge's and go-amqp's idle timeouts)
// and a token renewal per link before its token expires.
//
// The package is a client of the wire only (OAuth 2.0 through azcore
// credentials and Service Bus over AMQP), so it works against Azure as
// against tenantbridge: Config.ClientOptions chooses how a namespace is
// reached (nothing set is Azure's AMQPS on port 5671; WebSockets and
// AMQPS reach a local tenantbridge).
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// Scope is the OAuth scope of Service Bus data-plane tokens.
const Scope = "https://servicebus.azure.net/.default"

// Defaults of Config.
const (
	DefaultWorkers = 64
	// DefaultMaxIdleClients is how many namespace clients (AMQP
	// connections) no Listen holds are kept open for later sends.
	DefaultMaxIdleClients = 256
	// settleTimeout bounds a complete or an abandon.
	settleTimeout = 30 * time.Second
	// maxBackoff caps the wait before a failed receive is tried again.
	maxBackoff = time.Minute
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
	Name        string // the message's Subject (Label): what to do, e.g. "ping"
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

// Error is a refusal or failure by a customer's Service Bus or token
// service.
type Error struct {
	TenantID string
	Op       string // "token", "send", "receive", "complete", "abandon"
	// Code is the Service Bus client's code (azservicebus.CodeUnauthorizedAccess,
	// CodeNotFound, CodeConnectionLost, CodeLockLost, …); empty when the
	// token service refused.
	Code    azservicebus.Code
	Message string
	err     error
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s in tenant %s: %s", e.Op, e.TenantID, e.Message)
	}
	return fmt.Sprintf("%s in tenant %s: %s: %s", e.Op, e.TenantID, e.Code, e.Message)
}

// Unwrap is the error the SDK or the credential gave. The SDK reads it:
// azidentity's authentication failures are marked non-retriable, so a
// refused token is not retried.
func (e *Error) Unwrap() error { return e.err }

// ErrRefused matches (errors.Is) every error by which a customer refuses
// the provider: Service Bus's amqp:unauthorized-access (no role on the
// queue, a token it no longer accepts), or no token from its tenant (the
// application not, or no longer, consented there).
var ErrRefused = errors.New("refused by the customer")

// Is reports refusals as ErrRefused.
func (e *Error) Is(target error) bool {
	return target == ErrRefused && (e.Op == "token" || e.Code == azservicebus.CodeUnauthorizedAccess)
}

// ClientOptionsFunc returns the azservicebus options of the client of one
// namespace, given its host name (e.g. contoso.servicebus.windows.net). A
// nil func or a nil result is the SDK's defaults: AMQPS to the host's
// port 5671, as on Azure. See WebSockets and AMQPS for a local tenantbridge.
type ClientOptionsFunc func(host string) *azservicebus.ClientOptions

// Config configures a Messenger.
type Config struct {
	// Credential returns the provider application's credential in a
	// customer tenant: tokens must be issued in that tenant. It is
	// called once per tenant (e.g. an azidentity.ClientSecretCredential
	// or ClientAssertionCredential with that TenantID), and once more
	// when Service Bus refused the token it gave.
	Credential func(tenantID string) (azcore.TokenCredential, error)
	// ClientOptions says how each namespace is reached (see
	// ClientOptionsFunc); nil is Azure.
	ClientOptions ClientOptionsFunc
	// Workers bounds concurrent sends; default DefaultWorkers.
	Workers int
	// MaxIdleClients bounds the namespace clients kept open while no
	// Listen holds them (least recently used ones are closed first);
	// default DefaultMaxIdleClients. A Listen holds one client per
	// customer for as long as it runs, whatever this bound.
	MaxIdleClients int
	Logger         *slog.Logger
}

// Messenger sends commands to customers and collects their replies. It
// keeps one azservicebus.Client, that is one AMQP connection, per
// customer namespace it talks to: the fleet has one namespace per
// customer, so a Listen over N customers holds N connections, and sends
// to customers nobody listens to keep at most MaxIdleClients more. Close
// closes them all.
type Messenger struct {
	cfg     Config
	log     *slog.Logger
	mu      sync.Mutex
	creds   map[string]*tenantCredential
	clients map[clientKey]*nsClient
	closed  bool
}

// clientKey names a client: a namespace as seen by one tenant's
// credential (a namespace belongs to one tenant, so in practice one per
// namespace).
type clientKey struct{ tenantID, host string }

// nsClient is one namespace's client and the senders made on it.
type nsClient struct {
	key     clientKey
	client  *azservicebus.Client
	cred    *tenantCredential
	mu      sync.Mutex
	senders map[string]*azservicebus.Sender
	// refs counts who uses it now (calls, Listen receivers); used is when
	// the last one let it go. Guarded by Messenger.mu.
	refs int
	used time.Time
}

// New returns a Messenger.
func New(cfg Config) (*Messenger, error) {
	if cfg.Credential == nil {
		return nil, errors.New("fanout: Config.Credential is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxIdleClients <= 0 {
		cfg.MaxIdleClients = DefaultMaxIdleClients
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Messenger{cfg: cfg, log: log, creds: map[string]*tenantCredential{}, clients: map[clientKey]*nsClient{}}, nil
}

// tenantCredential is the azcore credential the SDK gets for one tenant:
// it makes the provider's credential on first use and, after Service Bus
// refused a token (refuse), never hands that token out again, making a
// new credential (with an empty cache) instead, so that a token revoked or
// expired early is replaced once.
type tenantCredential struct {
	m        *Messenger
	tenantID string
	mu       sync.Mutex
	cred     azcore.TokenCredential
	last     string // the last token handed out
	refused  string // a token Service Bus refused
}

func (t *tenantCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if t.cred == nil {
			cred, err := t.m.cfg.Credential(t.tenantID)
			if err != nil {
				return azcore.AccessToken{}, &Error{TenantID: t.tenantID, Op: "token", Message: oneLine(err.Error()), err: err}
			}
			t.cred = cred
		}
		tok, err := t.cred.GetToken(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return azcore.AccessToken{}, ctx.Err()
			}
			return azcore.AccessToken{}, &Error{TenantID: t.tenantID, Op: "token", Message: oneLine(err.Error()), err: err}
		}
		if tok.Token == t.refused && attempt == 0 {
			t.cred = nil // its cache holds the refused token
			continue
		}
		t.last = tok.Token
		return tok, nil
	}
}

// refuse marks the last token handed out as refused by Service Bus.
func (t *tenantCredential) refuse() {
	t.mu.Lock()
	t.refused = t.last
	t.mu.Unlock()
}

func (m *Messenger) credential(tenantID string) *tenantCredential {
	tc := m.creds[tenantID]
	if tc == nil {
		tc = &tenantCredential{m: m, tenantID: tenantID}
		m.creds[tenantID] = tc
	}
	return tc
}

// queueRef splits a queue URL into its namespace host and queue name.
func queueRef(queue string) (host, name string, err error) {
	u, err := url.Parse(queue)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Port() != "" {
		return "", "", fmt.Errorf("fanout: %q is not a queue URL (https://NAMESPACE.servicebus.windows.net/QUEUE)", queue)
	}
	name = strings.Trim(u.Path, "/")
	if name == "" || strings.Contains(name, "/") || u.RawQuery != "" {
		return "", "", fmt.Errorf("fanout: %q is not a queue URL (https://NAMESPACE.servicebus.windows.net/QUEUE)", queue)
	}
	return strings.ToLower(u.Host), name, nil
}

// acquire returns the client of host as tenantID, making it if needed,
// and holds it until release.
func (m *Messenger) acquire(tenantID, host string) (*nsClient, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("fanout: the messenger is closed")
	}
	key := clientKey{tenantID, host}
	c := m.clients[key]
	if c == nil {
		var opts *azservicebus.ClientOptions
		if m.cfg.ClientOptions != nil {
			opts = m.cfg.ClientOptions(host)
		}
		cred := m.credential(tenantID)
		client, err := azservicebus.NewClient(host, cred, opts)
		if err != nil {
			return nil, fmt.Errorf("fanout: the Service Bus client of %s: %w", host, err)
		}
		c = &nsClient{key: key, client: client, cred: cred, senders: map[string]*azservicebus.Sender{}}
		m.clients[key] = c
	}
	c.refs++
	return c, nil
}

// release lets c go and closes the least recently used idle clients
// beyond MaxIdleClients.
func (m *Messenger) release(c *nsClient) {
	m.mu.Lock()
	c.refs--
	c.used = time.Now()
	var idle []*nsClient
	for _, x := range m.clients {
		if x.refs == 0 {
			idle = append(idle, x)
		}
	}
	var evict []*nsClient
	for len(idle) > m.cfg.MaxIdleClients {
		oldest := 0
		for i, x := range idle {
			if x.used.Before(idle[oldest].used) {
				oldest = i
			}
		}
		evict = append(evict, idle[oldest])
		delete(m.clients, idle[oldest].key)
		idle = append(idle[:oldest], idle[oldest+1:]...)
	}
	m.mu.Unlock()
	for _, x := range evict {
		x.close()
	}
}

func (c *nsClient) close() {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	_ = c.client.Close(ctx) // closes its senders and receivers too
}

// sender returns the client's sender of queue, made on first use (its link
// attaches with the first send).
func (c *nsClient) sender(queue string) (*azservicebus.Sender, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.senders[queue]; s != nil {
		return s, nil
	}
	s, err := c.client.NewSender(queue, nil)
	if err != nil {
		return nil, err
	}
	c.senders[queue] = s
	return s, nil
}

// Forget closes the clients of tenantID and drops its credential (e.g.
// after offboarding). A Listen still running on them sees its receiver
// closed and stops for that customer after reporting it.
func (m *Messenger) Forget(tenantID string) {
	m.mu.Lock()
	var drop []*nsClient
	for k, c := range m.clients {
		if k.tenantID == tenantID {
			drop = append(drop, c)
			delete(m.clients, k)
		}
	}
	delete(m.creds, tenantID)
	m.mu.Unlock()
	for _, c := range drop {
		c.close()
	}
}

// Close closes every client (and so every connection, sender and
// receiver). The Messenger cannot be used after.
func (m *Messenger) Close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*nsClient, 0, len(m.clients))
	for _, c := range m.clients {
		all = append(all, c)
	}
	clear(m.clients)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Go(c.close)
	}
	wg.Wait()
}

// failure turns an SDK error into an *Error (or the context's error).
func failure(ctx context.Context, tenantID, op string, err error) error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var sbe *azservicebus.Error
	if errors.As(err, &sbe) {
		msg := oneLine(sbe.Error())
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return &Error{TenantID: tenantID, Op: op, Code: sbe.Code, Message: msg, err: err}
	}
	return fmt.Errorf("%s in tenant %s: %w", op, tenantID, err)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// refusedOnce reports an unauthorized-access error, after which a call is
// tried once more with a new token.
func refusedOnce(err error) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.Code == azservicebus.CodeUnauthorizedAccess
}

// SendOne sends cmd to one customer and returns when the command is
// durable in the customer's command queue.
func (m *Messenger) SendOne(ctx context.Context, c Customer, cmd Command) error {
	if cmd.ID == "" {
		return errors.New("fanout: the command has no ID")
	}
	msg := &azservicebus.Message{MessageID: new(MessageID(cmd.ID, c.TenantID)), CorrelationID: new(cmd.ID),
		ReplyTo: new(c.StatusQueue), Body: cmd.Body, ContentType: new(cmp(cmd.ContentType, "application/json"))}
	if cmd.Name != "" {
		msg.Subject = new(cmd.Name)
	}
	if cmd.TimeToLive > 0 {
		msg.TimeToLive = new(cmd.TimeToLive)
	}
	return m.send(ctx, c.TenantID, c.CommandQueue, msg)
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// send sends msg to queue as the provider in tenantID. The SDK retries a
// send that failed on the way (a lost link or connection) with the same
// message, and so the same MessageId: a copy that did arrive is a
// duplicate that Service Bus duplicate detection drops, when the queue
// has it on (https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection),
// and the worker drops otherwise. An amqp:unauthorized-access is tried
// once more with a new token (the one held may have been revoked or
// expired early); a second one is the customer's refusal.
func (m *Messenger) send(ctx context.Context, tenantID, queue string, msg *azservicebus.Message) error {
	host, name, err := queueRef(queue)
	if err != nil {
		return err
	}
	c, err := m.acquire(tenantID, host)
	if err != nil {
		return err
	}
	defer m.release(c)
	s, err := c.sender(name)
	if err != nil {
		return failure(ctx, tenantID, "send", err)
	}
	for attempt := 0; ; attempt++ {
		err := s.SendMessage(ctx, msg, nil)
		if err == nil {
			return nil
		}
		err = failure(ctx, tenantID, "send", err)
		if attempt == 0 && refusedOnce(err) {
			c.cred.refuse()
			continue
		}
		return err
	}
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
	Label         string // the message's Subject
	ContentType   string
	Body          []byte
	Enqueued      time.Time
	DeliveryCount int64
	// Received is when the receiver handed it over.
	Received time.Time
}

// Handler handles one reply. Returning nil completes the reply (it is
// removed from the status queue); an error abandons it, so that it is
// delivered again.
type Handler func(context.Context, Reply) error

// replyOf reads a received message.
func replyOf(c Customer, msg *azservicebus.ReceivedMessage) Reply {
	r := Reply{Customer: c, MessageID: msg.MessageID, Body: msg.Body, DeliveryCount: int64(msg.DeliveryCount), Received: time.Now()}
	r.CorrelationID = deref(msg.CorrelationID)
	r.ReplyTo = deref(msg.ReplyTo)
	r.Label = deref(msg.Subject)
	r.ContentType = deref(msg.ContentType)
	if msg.EnqueuedTime != nil {
		r.Enqueued = *msg.EnqueuedTime
	}
	return r
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Listen collects replies from every customer until ctx ends: one
// peek-lock receiver per customer's status queue, on that namespace's
// client, each waiting in ReceiveMessages for one reply at a time (one
// credit outstanding, no timer), so a reply is handed to handle as soon
// as it is sent. A reply is completed after handle returns nil and
// abandoned otherwise. Failures (a customer that refuses, a queue that is
// gone, a lost connection) are given to onError, when set, and retried
// with a backoff of 1 s doubling up to a minute. Listen holds one client
// (connection) per customer until it returns; it returns ctx's error.
func (m *Messenger) Listen(ctx context.Context, customers []Customer, handle Handler, onError func(Customer, error)) error {
	var wg sync.WaitGroup
	for _, c := range customers {
		wg.Go(func() { m.listenOne(ctx, c, handle, onError) })
	}
	wg.Wait()
	return ctx.Err()
}

// receiveLoop is what Listen and the Worker share: a peek-lock receiver
// on queue, as tenantID, that hands each message to handle until ctx
// ends. handle settles the message itself. fail is told every failure and
// waits out the backoff.
func (m *Messenger) receiveLoop(ctx context.Context, tenantID, queue string, handle func(context.Context, *azservicebus.Receiver, *azservicebus.ReceivedMessage), fail func(error)) {
	host, name, err := queueRef(queue)
	if err != nil {
		fail(err)
		return
	}
	c, err := m.acquire(tenantID, host)
	if err != nil {
		fail(err)
		return
	}
	defer m.release(c)
	r, err := c.client.NewReceiverForQueue(name, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock})
	if err != nil {
		fail(failure(ctx, tenantID, "receive", err))
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		_ = r.Close(cctx)
		cancel()
	}()
	empty := 0
	for attempt := 0; ctx.Err() == nil; {
		t0 := time.Now()
		// One message per call: the SDK releases (abandons) messages that
		// arrive on credit left over after ReceiveMessages returns, until
		// the next call (Receiver.newReleaserFunc in azservicebus
		// receiver.go), which would count a delivery against the reply. One
		// credit is used up by the one message, so nothing is left over.
		msgs, err := r.ReceiveMessages(ctx, 1, nil)
		if ctx.Err() != nil {
			for _, msg := range msgs { // taken while stopping: back to the queue
				sctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
				_ = r.AbandonMessage(sctx, msg, nil)
				cancel()
			}
			return
		}
		switch {
		case err != nil:
			err = failure(ctx, tenantID, "receive", err)
			if attempt == 0 && refusedOnce(err) {
				c.cred.refuse()
			}
			attempt++
			fail(err)
			continue
		case len(msgs) == 0:
			// With no deadline, nothing means the SDK saw its link or
			// connection fail and closed it; the next call makes new ones.
			// Twice in a row counts as a failure, so that a broken
			// namespace is retried with a backoff, not in a loop.
			if time.Since(t0) > time.Second {
				empty = 0 // a link that served a while
			}
			if empty++; empty > 1 {
				fail(fmt.Errorf("receive in tenant %s: %s: the link failed and was closed", tenantID, queue))
			}
			continue
		}
		attempt, empty = 0, 0
		for _, msg := range msgs {
			handle(ctx, r, msg)
		}
	}
}

func (m *Messenger) listenOne(ctx context.Context, c Customer, handle Handler, onError func(Customer, error)) {
	b := backoff{ctx: ctx}
	fail := func(err error) {
		if onError != nil {
			onError(c, err)
		}
		m.log.WarnContext(ctx, "fanout: status queue", "customer", c.label(), "err", err)
		b.wait()
	}
	m.receiveLoop(ctx, c.TenantID, c.StatusQueue, func(ctx context.Context, r *azservicebus.Receiver, msg *azservicebus.ReceivedMessage) {
		b.reset()
		herr := handle(ctx, replyOf(c, msg))
		if err := settle(r, c.TenantID, msg, herr); err != nil {
			if onError != nil {
				onError(c, err)
			}
			m.log.WarnContext(ctx, "fanout: status queue", "customer", c.label(), "err", err)
		}
	}, fail)
}

// settle completes msg, or abandons it when handling failed.
func settle(r *azservicebus.Receiver, tenantID string, msg *azservicebus.ReceivedMessage, handleErr error) error {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if handleErr != nil {
		if err := r.AbandonMessage(ctx, msg, nil); err != nil {
			return failure(ctx, tenantID, "abandon", err)
		}
		return nil
	}
	if err := r.CompleteMessage(ctx, msg, nil); err != nil {
		return failure(ctx, tenantID, "complete", err)
	}
	return nil
}

// backoff waits 1 s, doubling up to maxBackoff, between failures.
type backoff struct {
	ctx context.Context
	d   time.Duration
}

func (b *backoff) reset() { b.d = 0 }

func (b *backoff) wait() {
	b.d = min(max(2*b.d, time.Second), maxBackoff)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
	case <-t.C:
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
