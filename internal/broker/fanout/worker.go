package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// The labels of a reply.
const (
	LabelOK    = "ok"
	LabelError = "error"
)

// ReplyBody is the JSON body of a worker's reply.
type ReplyBody struct {
	Status string         `json:"status"` // LabelOK or LabelError
	Result map[string]any `json:"result,omitempty"`
	Error  string         `json:"error,omitempty"`
	Host   string         `json:"host,omitempty"`
}

// Executor runs one command and returns its result, or an error that is
// sent back as the reply.
type Executor func(ctx context.Context, name string, body []byte) (map[string]any, error)

// DefaultExecutor knows "ping" (→ {"pong": the host's time}) and "echo"
// (→ the command's JSON body); anything else is an error.
func DefaultExecutor(_ context.Context, name string, body []byte) (map[string]any, error) {
	switch strings.ToLower(name) {
	case "ping":
		return map[string]any{"pong": time.Now().UTC().Format(time.RFC3339Nano)}, nil
	case "echo":
		var v any
		if len(body) > 0 {
			if err := json.Unmarshal(body, &v); err != nil {
				return nil, fmt.Errorf("echo needs a JSON body: %w", err)
			}
		}
		return map[string]any{"echo": v}, nil
	}
	return nil, fmt.Errorf("unknown command %q", name)
}

// WorkerConfig configures a Worker: the customer's side, running under the
// customer's own identity (its managed identity) with Azure Service Bus
// Data Receiver on the command queue and Data Sender on the status queue.
type WorkerConfig struct {
	Credential azcore.TokenCredential
	// CommandQueue and StatusQueue are queue URLs. Without StatusQueue, a
	// command's ReplyTo is used if it is a queue of the command queue's
	// namespace (its URL, or its bare name); the worker never sends
	// elsewhere because a message asked it.
	CommandQueue, StatusQueue string
	// ClientOptions says how the namespace is reached (see
	// ClientOptionsFunc); nil is Azure.
	ClientOptions ClientOptionsFunc
	Execute       Executor // default DefaultExecutor
	// Remember is how many recent MessageIds are kept to drop
	// redelivered and duplicate commands; default 10,000.
	Remember int
	Logger   *slog.Logger
}

// Worker executes the commands of one command queue and replies on the
// status queue, with the command's CorrelationId. It holds one
// azservicebus.Client (one AMQP connection) to its namespace, with a
// peek-lock receiver on the command queue and a sender on the status
// queue, until Run returns.
type Worker struct {
	cfg      WorkerConfig
	m        *Messenger
	host     string
	mu       sync.Mutex
	seen     map[string]bool
	ring     []string
	next     int
	executed atomic.Int64
	dropped  atomic.Int64
}

// NewWorker returns a Worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Credential == nil || cfg.CommandQueue == "" {
		return nil, errors.New("fanout: WorkerConfig needs Credential and CommandQueue")
	}
	if _, _, err := queueRef(cfg.CommandQueue); err != nil {
		return nil, err
	}
	if cfg.StatusQueue != "" {
		if _, _, err := queueRef(cfg.StatusQueue); err != nil {
			return nil, err
		}
	}
	if cfg.Execute == nil {
		cfg.Execute = DefaultExecutor
	}
	if cfg.Remember <= 0 {
		cfg.Remember = 10_000
	}
	cred := cfg.Credential
	// The tenant is the credential's own (a managed identity's): "".
	m, err := New(Config{Credential: func(string) (azcore.TokenCredential, error) { return cred, nil },
		ClientOptions: cfg.ClientOptions, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return &Worker{cfg: cfg, m: m, host: host, seen: map[string]bool{}, ring: make([]string, cfg.Remember)}, nil
}

// Executed and Dropped count the commands executed and the duplicates
// dropped.
func (w *Worker) Executed() int64 { return w.executed.Load() }

// Dropped counts commands completed without running again: their
// MessageId was already answered.
func (w *Worker) Dropped() int64 { return w.dropped.Load() }

func (w *Worker) remembered(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[id]
}

func (w *Worker) remember(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[id] {
		return
	}
	if old := w.ring[w.next]; old != "" {
		delete(w.seen, old)
	}
	w.ring[w.next], w.seen[id] = id, true
	w.next = (w.next + 1) % len(w.ring)
}

// replyQueue is where a command's reply goes.
func (w *Worker) replyQueue(replyTo string) (string, error) {
	if w.cfg.StatusQueue != "" {
		return w.cfg.StatusQueue, nil
	}
	cq, err := url.Parse(w.cfg.CommandQueue)
	if err != nil {
		return "", err
	}
	if replyTo != "" && !strings.ContainsAny(replyTo, ":/?#") {
		return "https://" + cq.Host + "/" + replyTo, nil // a queue's name: of this namespace
	}
	rq, err := url.Parse(replyTo)
	if replyTo == "" || err != nil || rq.Scheme != "https" || !strings.EqualFold(cq.Host, rq.Host) {
		return "", fmt.Errorf("the command's ReplyTo %q is not a queue of the command queue's namespace", replyTo)
	}
	if _, _, err := queueRef(replyTo); err != nil {
		return "", err
	}
	return replyTo, nil
}

// Run takes the command queue's commands until ctx ends, one at a time:
// its receiver waits in ReceiveMessages for the next command, with no
// timer. Failures are logged and retried with a backoff of 1 s doubling
// up to a minute. Run closes the worker's connection when it returns.
func (w *Worker) Run(ctx context.Context) error {
	defer w.m.Close()
	b := backoff{ctx: ctx}
	w.m.receiveLoop(ctx, "", w.cfg.CommandQueue, func(ctx context.Context, r *azservicebus.Receiver, msg *azservicebus.ReceivedMessage) {
		b.reset()
		if err := w.handle(ctx, r, msg); err != nil {
			w.m.log.WarnContext(ctx, "fanout worker", "queue", w.cfg.CommandQueue, "err", err)
		}
	}, func(err error) {
		w.m.log.WarnContext(ctx, "fanout worker", "queue", w.cfg.CommandQueue, "err", err)
		b.wait()
	})
	return ctx.Err()
}

// handle executes one command unless its MessageId was already answered,
// replies, and completes it; a reply that cannot be sent abandons it, so
// that it comes back.
func (w *Worker) handle(ctx context.Context, r *azservicebus.Receiver, msg *azservicebus.ReceivedMessage) error {
	cmd := replyOf(Customer{}, msg)
	if cmd.MessageID != "" && w.remembered(cmd.MessageID) {
		w.dropped.Add(1)
		return settle(r, "", msg, nil)
	}
	result, xerr := w.cfg.Execute(ctx, cmd.Label, cmd.Body)
	rb := ReplyBody{Status: LabelOK, Result: result, Host: w.host}
	if xerr != nil {
		rb = ReplyBody{Status: LabelError, Error: xerr.Error(), Host: w.host}
	}
	body, err := json.Marshal(rb)
	if err != nil {
		return errors.Join(err, settle(r, "", msg, err))
	}
	to, err := w.replyQueue(cmd.ReplyTo)
	if err != nil {
		// Nowhere to reply: complete, so that it is not redelivered forever.
		return errors.Join(err, settle(r, "", msg, nil))
	}
	reply := &azservicebus.Message{MessageID: new("reply:" + cmd.MessageID), CorrelationID: new(cmd.CorrelationID),
		Subject: new(rb.Status), ContentType: new("application/json"), Body: body}
	// Executed: the reply goes out even if Run is stopping meanwhile.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := w.m.send(sctx, "", to, reply); err != nil {
		return errors.Join(err, settle(r, "", msg, err)) // abandon: it comes back
	}
	w.executed.Add(1)
	if cmd.MessageID != "" {
		w.remember(cmd.MessageID)
	}
	return settle(r, "", msg, nil)
}
