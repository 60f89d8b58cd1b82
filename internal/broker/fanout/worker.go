package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
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
	// command's ReplyTo is used if it is a queue on the command queue's
	// host; the worker never sends elsewhere because a message asked it.
	CommandQueue, StatusQueue string
	Transport                 http.RoundTripper
	ReceiveTimeout            time.Duration
	Execute                   Executor // default DefaultExecutor
	// Remember is how many recent MessageIds are kept to drop
	// redelivered and duplicate commands; default 10,000.
	Remember int
	Logger   *slog.Logger
}

// Worker executes the commands of one command queue and replies on the
// status queue, with the command's CorrelationId.
type Worker struct {
	cfg      WorkerConfig
	m        *Messenger
	self     Customer
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
	if cfg.Execute == nil {
		cfg.Execute = DefaultExecutor
	}
	if cfg.Remember <= 0 {
		cfg.Remember = 10_000
	}
	cred := cfg.Credential
	m, err := New(Config{Credential: func(string) (azcore.TokenCredential, error) { return cred, nil }, Transport: cfg.Transport,
		ReceiveTimeout: cfg.ReceiveTimeout, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return &Worker{cfg: cfg, m: m, self: Customer{CommandQueue: cfg.CommandQueue, StatusQueue: cfg.StatusQueue}, host: host,
		seen: map[string]bool{}, ring: make([]string, cfg.Remember)}, nil
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
	cq, err1 := url.Parse(w.cfg.CommandQueue)
	rq, err2 := url.Parse(replyTo)
	if replyTo == "" || err1 != nil || err2 != nil || rq.Scheme != "https" || !strings.EqualFold(cq.Host, rq.Host) {
		return "", fmt.Errorf("the command's ReplyTo %q is not a queue of the command queue's namespace", replyTo)
	}
	return replyTo, nil
}

// Run long-polls the command queue until ctx ends, one command at a time.
// Failures are logged and retried with a backoff up to the long-poll.
func (w *Worker) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		err := w.Once(ctx)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			break
		}
		w.m.log.WarnContext(ctx, "fanout worker", "queue", w.cfg.CommandQueue, "err", err)
		backoff = min(max(2*backoff, time.Second), w.m.cfg.ReceiveTimeout)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return ctx.Err()
}

// Once takes at most one command (waiting up to the long-poll), executes
// it unless its MessageId was already answered, replies, and completes it.
func (w *Worker) Once(ctx context.Context) error {
	cmd, settle, ok, err := w.m.receive(ctx, w.self, w.cfg.CommandQueue)
	if err != nil || !ok {
		return err
	}
	sctx := context.WithoutCancel(ctx)
	if cmd.MessageID != "" && w.remembered(cmd.MessageID) {
		w.dropped.Add(1)
		return settle(sctx, nil)
	}
	result, xerr := w.cfg.Execute(ctx, cmd.Label, cmd.Body)
	rb := ReplyBody{Status: LabelOK, Result: result, Host: w.host}
	if xerr != nil {
		rb = ReplyBody{Status: LabelError, Error: xerr.Error(), Host: w.host}
	}
	body, err := json.Marshal(rb)
	if err != nil {
		return errors.Join(err, settle(sctx, err))
	}
	to, err := w.replyQueue(cmd.ReplyTo)
	if err != nil {
		// Nowhere to reply: complete, so that it is not redelivered forever.
		return errors.Join(err, settle(sctx, nil))
	}
	rp := brokerProperties{MessageId: "reply:" + cmd.MessageID, CorrelationId: cmd.CorrelationID, Label: rb.Status}
	if err := w.m.send(ctx, "", to, rp, "application/json", body); err != nil {
		return errors.Join(err, settle(sctx, err)) // abandon: it comes back
	}
	w.executed.Add(1)
	if cmd.MessageID != "" {
		w.remember(cmd.MessageID)
	}
	return settle(sctx, nil)
}
