package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// Service Bus constants of the queue benchmark.
const (
	busScope           = "https://servicebus.azure.net/.default"
	armBusAPIVersion   = "2022-10-01-preview"
	roleBusDataOwner   = "090c5cfd-751d-490a-894a-3ce6f1109419" // Azure Service Bus Data Owner
	benchQueueName     = "bench"
	queueReceiveWait   = 5 // seconds a receiver's long-poll waits
	queueSamplesPerSec = 20000
)

// QueueOptions says how to run the queue benchmark.
type QueueOptions struct {
	Server azclient.OperatorCredential
	// Senders and Receivers are the goroutines sending, and peek-locking
	// then completing, back to back; 0 means DefaultConcurrency each.
	Senders, Receivers int
	// Duration is the measured window; 0 means DefaultDuration.
	Duration time.Duration
	// Warmup is uncounted load before the window.
	Warmup time.Duration
	// MessageBytes is each message's body size; 0 means 256.
	MessageBytes int
	Keep         bool
	TenantName   string
	Log          io.Writer
}

// QueueReport is the result of RunQueue.
type QueueReport struct {
	Server, Tenant, TenantID string
	Queue                    string // https://NS.servicebus.windows.net/bench
	Senders, Receivers       int
	MessageBytes             int
	Duration, Warmup         time.Duration
	Protocol                 string
	ClientCPUs               int
	MemoryAtRest             *ServerMemory
	MemoryAfter              *ServerMemory
	MemoryNote               string

	// Window is the measured time. Sent counts 201s, Completed the
	// messages peek-locked and completed (200) in it: the end-to-end
	// count. Rate is Completed per second.
	Window    time.Duration
	Sent      int
	Completed int
	Failed    int
	Errors    map[string]int
	Rate      float64
	SendRate  float64
	// Send is the latency of a send (to its 201); EndToEnd from a
	// message's send to its completion (by the time in its body).
	Send        Latency
	EndToEnd    Latency
	Connections int64
	ClientCPU   time.Duration
	Notes       []string
	Interrupted bool

	TenantDeleted bool
	CleanupError  string
}

// RunQueue measures the Service Bus data plane end to end: it creates a
// throwaway tenant, a namespace and a queue (Resource Manager), gives the
// administrator Azure Service Bus Data Owner, and has Senders goroutines
// send while Receivers goroutines peek-lock and complete, each back to
// back over kept-alive HTTPS connections, for Warmup and then Duration.
// Every send is durable before its 201.
func RunQueue(ctx context.Context, opts QueueOptions) (rep QueueReport, err error) {
	if opts.Senders <= 0 {
		opts.Senders = DefaultConcurrency
	}
	if opts.Receivers <= 0 {
		opts.Receivers = DefaultConcurrency
	}
	if opts.MessageBytes <= 0 {
		opts.MessageBytes = 256
	}
	topts := TokenOptions{Server: opts.Server, Kinds: []Kind{KindSecret}, Concurrency: opts.Senders + opts.Receivers,
		Duration: opts.Duration, Warmup: opts.Warmup, Log: opts.Log}.withDefaults()
	rep = QueueReport{Senders: opts.Senders, Receivers: opts.Receivers, MessageBytes: opts.MessageBytes,
		Duration: topts.Duration, Warmup: topts.Warmup, ClientCPUs: runtime.GOMAXPROCS(0)}
	var run tenantRun
	var q *queueBench
	err = runInTenant(ctx, topts, opts.TenantName, opts.Keep, "-sb", &run, func(a *armAdmin) armBench {
		q = &queueBench{armAdmin: a, opts: opts}
		return q
	}, func() string { return q.nsName }, func(ctx context.Context) {
		rep.Queue = q.queueURL
		q.measure(ctx, &rep)
	})
	rep.Server, rep.Tenant, rep.TenantID, rep.Protocol, rep.MemoryNote, rep.CleanupError = run.Server, run.Tenant, run.TenantID, run.Protocol, run.MemoryNote, run.CleanupError
	rep.MemoryAtRest, rep.MemoryAfter, rep.TenantDeleted = run.MemoryAtRest, run.MemoryAfter, run.TenantDeleted
	return rep, err
}

// global is the namespace: its name is global.
func (q *queueBench) global() (kind, name, id, apiVersion string) {
	return "namespace", q.nsName, q.nsID, armBusAPIVersion
}

// queueBench is one queue run's state.
type queueBench struct {
	*armAdmin
	opts     QueueOptions
	nsName   string
	nsID     string
	queueURL string // https://NS.servicebus.windows.net/bench
	auth     string // "Bearer …" for Service Bus
	padding  []byte
}

func (q *queueBench) setup(ctx context.Context, nsName string) error {
	sub := "/subscriptions/" + q.tenant.SubscriptionID
	rg := sub + "/resourceGroups/" + benchResourceGroup
	q.logf("Creating resource group %s, namespace %s and queue %s through Resource Manager...", benchResourceGroup, nsName, benchQueueName)
	if _, err := q.arm(ctx, http.MethodPut, rg, armGroupAPIVersion, map[string]any{"location": benchVaultLocation}, nil); err != nil {
		return fmt.Errorf("creating resource group %s: %w", benchResourceGroup, err)
	}
	q.nsName = nsName
	nsID := rg + "/providers/Microsoft.ServiceBus/namespaces/" + nsName
	if _, err := q.arm(ctx, http.MethodPut, nsID, armBusAPIVersion, map[string]any{"location": benchVaultLocation}, nil); err != nil {
		return fmt.Errorf("creating namespace %s: %w", nsName, err)
	}
	q.nsID = nsID
	if _, err := q.arm(ctx, http.MethodPut, nsID+"/queues/"+benchQueueName, armBusAPIVersion, map[string]any{"properties": map[string]any{}}, nil); err != nil {
		return fmt.Errorf("creating queue %s: %w", benchQueueName, err)
	}
	if _, err := q.assignRole(ctx, nsID, roleBusDataOwner, "Azure Service Bus Data Owner"); err != nil {
		return err
	}
	tok, err := q.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{busScope}})
	if err != nil {
		return fmt.Errorf("the administrator's token for Service Bus: %s", azclient.Describe(err))
	}
	q.auth = "Bearer " + tok.Token
	q.queueURL = "https://" + strings.ToLower(nsName) + ".servicebus.windows.net/" + benchQueueName
	q.padding = bytes.Repeat([]byte{'x'}, q.opts.MessageBytes)
	// One message through, to prove the path before the clock starts.
	if f := q.send(ctx, new(bytes.Buffer)); f != "" {
		return fmt.Errorf("sending the first message: %s", f)
	}
	if _, f := q.receive(ctx, new(bytes.Buffer)); f != "" {
		return fmt.Errorf("receiving the first message: %s", f)
	}
	q.logf("The administrator %s sends to and receives from %s as Azure Service Bus Data Owner.", q.principal, q.queueURL)
	return nil
}

// send sends one message whose body starts with its send time.
func (q *queueBench) send(ctx context.Context, buf *bytes.Buffer) (failure string) {
	body := make([]byte, 0, 24+len(q.padding))
	body = strconv.AppendInt(body, time.Now().UnixNano(), 10)
	body = append(body, ' ')
	body = append(body, q.padding[:max(0, len(q.padding)-len(body))]...)
	status, f := q.do(ctx, http.MethodPost, q.queueURL+"/messages", body, buf, nil)
	if f != "" {
		return f
	}
	if status != http.StatusCreated {
		return serviceError(status, buf.Bytes())
	}
	return ""
}

// receive peek-locks one message and completes it; it returns when the
// message was sent (from its body), or a failure. No message within the
// long-poll is not a failure: the zero time.
func (q *queueBench) receive(ctx context.Context, buf *bytes.Buffer) (sent time.Time, failure string) {
	var loc string
	status, f := q.do(ctx, http.MethodPost, q.queueURL+"/messages/head?timeout="+strconv.Itoa(queueReceiveWait), nil, buf, &loc)
	if f != "" {
		return sent, f
	}
	switch status {
	case http.StatusNoContent:
		return sent, ""
	case http.StatusCreated:
	default:
		return sent, serviceError(status, buf.Bytes())
	}
	if ts, _, ok := bytes.Cut(buf.Bytes(), []byte{' '}); ok {
		if n, err := strconv.ParseInt(string(ts), 10, 64); err == nil {
			sent = time.Unix(0, n)
		}
	}
	if loc == "" {
		return time.Time{}, "HTTP 201 without a Location"
	}
	status, f = q.do(ctx, http.MethodDelete, loc, nil, buf, nil)
	if f != "" {
		return time.Time{}, f
	}
	if status != http.StatusOK {
		return time.Time{}, "complete: " + serviceError(status, buf.Bytes())
	}
	if sent.IsZero() {
		sent = time.Now() // a message this run did not send: counted, no latency
	}
	return sent, ""
}

// do sends one request over the load transport.
func (q *queueBench) do(ctx context.Context, method, u string, body []byte, buf *bytes.Buffer, location *string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, "client: " + err.Error()
	}
	req.Header["Authorization"] = []string{q.auth}
	if body != nil {
		req.Header["Content-Type"] = []string{"text/plain"}
	}
	resp, failure := q.load.exchange(req, buf)
	if failure != "" {
		return 0, failure
	}
	if location != nil {
		*location = resp.Header.Get("Location")
	}
	return resp.StatusCode, ""
}

// queuePhase is what one warm-up or window measured.
type queuePhase struct {
	elapsed     time.Duration
	send, e2e   []time.Duration
	failed      int
	errors      map[string]int
	dials       int64
	interrupted bool
}

// run has the senders and receivers work for d. Receivers keep going
// until the senders stop; what they complete after d is not counted.
func (q *queueBench) run(ctx context.Context, d time.Duration, capHint int) queuePhase {
	dials0 := q.load.dials.Load()
	start := time.Now()
	deadline := start.Add(d)
	var mu sync.Mutex
	p := queuePhase{}
	fail := func(w *worker) {
		mu.Lock()
		countFailures(&p.failed, &p.errors, w)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	var stopped atomic.Bool
	for range q.opts.Senders {
		wg.Go(func() {
			w := &worker{samples: make([]time.Duration, 0, capHint)}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				if f := q.send(ctx, &w.body); f != "" {
					if ctx.Err() == nil {
						w.fail(f)
					}
					continue
				}
				w.samples = append(w.samples, time.Since(t0))
			}
			mu.Lock()
			p.send = append(p.send, w.samples...)
			mu.Unlock()
			fail(w)
		})
	}
	for range q.opts.Receivers {
		wg.Go(func() {
			w := &worker{samples: make([]time.Duration, 0, capHint)}
			for ctx.Err() == nil && !stopped.Load() {
				sent, f := q.receive(ctx, &w.body)
				now := time.Now()
				switch {
				case f != "":
					if ctx.Err() == nil {
						w.fail(f)
					}
				case sent.IsZero():
					if now.After(deadline) {
						stopped.Store(true) // the queue is drained
					}
				case now.Before(deadline):
					w.samples = append(w.samples, now.Sub(sent))
				default:
					stopped.Store(true)
				}
			}
			mu.Lock()
			p.e2e = append(p.e2e, w.samples...)
			mu.Unlock()
			fail(w)
		})
	}
	wg.Wait()
	p.elapsed = min(time.Since(start), d)
	p.interrupted = ctx.Err() != nil
	p.dials = q.load.dials.Load() - dials0
	return p
}

func (q *queueBench) measure(ctx context.Context, rep *QueueReport) {
	if q.opts.Warmup > 0 {
		q.logf("queue: warming up for %s...", q.opts.Warmup)
		q.run(ctx, q.opts.Warmup, 1024)
		if ctx.Err() != nil {
			rep.Interrupted = true
			rep.Notes = append(rep.Notes, "interrupted during the warm-up: nothing measured")
			return
		}
	}
	q.logf("queue: measuring for %s with %d senders and %d receivers...", rep.Duration, q.opts.Senders, q.opts.Receivers)
	capHint := int(rep.Duration.Seconds()*queueSamplesPerSec/float64(q.opts.Senders+q.opts.Receivers)) + 256
	cpu0, cpuOK := processCPU()
	p := q.run(ctx, rep.Duration, capHint)
	if cpu1, ok := processCPU(); ok && cpuOK {
		rep.ClientCPU = cpu1 - cpu0
	}
	rep.Window, rep.Sent, rep.Completed, rep.Failed, rep.Errors, rep.Connections = p.elapsed, len(p.send), len(p.e2e), p.failed, p.errors, p.dials
	if p.elapsed > 0 {
		rep.Rate = float64(len(p.e2e)) / p.elapsed.Seconds()
		rep.SendRate = float64(len(p.send)) / p.elapsed.Seconds()
	}
	rep.Send, rep.EndToEnd = summarize(p.send), summarize(p.e2e)
	if p.interrupted {
		rep.Interrupted = true
		rep.Notes = append(rep.Notes, "interrupted before the end of the window")
	}
	q.logf("queue: %d sent, %d completed in %s (%.1f messages/s end to end), %d errors", rep.Sent, rep.Completed,
		p.elapsed.Round(time.Millisecond), rep.Rate, rep.Failed)
}

// MarshalJSON writes the report with durations in milliseconds.
func (r QueueReport) MarshalJSON() ([]byte, error) {
	type alias struct {
		Server, Tenant, TenantID, Queue, Protocol    string
		Senders, Receivers, MessageBytes, ClientCPUs int
		DurationMs, WarmupMs, WindowMs               float64
		MemoryAtRest                                 *ServerMemory `json:",omitempty"`
		MemoryAfter                                  *ServerMemory `json:",omitempty"`
		MemoryNote                                   string        `json:",omitempty"`
		Sent, Completed, Errors                      int
		ErrorsBy                                     map[string]int `json:",omitempty"`
		MessagesPerSecond, SendsPerSecond            float64
		Send, EndToEnd                               Latency
		ConnectionsOpened                            int64
		ClientCPUMs                                  float64
		Notes                                        []string `json:",omitempty"`
		Interrupted, TenantDeleted                   bool
		CleanupError                                 string `json:",omitempty"`
	}
	return json.Marshal(alias{Server: r.Server, Tenant: r.Tenant, TenantID: r.TenantID, Queue: r.Queue, Protocol: r.Protocol,
		Senders: r.Senders, Receivers: r.Receivers, MessageBytes: r.MessageBytes, ClientCPUs: r.ClientCPUs,
		DurationMs: ms(r.Duration), WarmupMs: ms(r.Warmup), WindowMs: ms(r.Window), MemoryAtRest: r.MemoryAtRest,
		MemoryAfter: r.MemoryAfter, MemoryNote: r.MemoryNote, Sent: r.Sent, Completed: r.Completed, Errors: r.Failed,
		ErrorsBy: r.Errors, MessagesPerSecond: round1(r.Rate), SendsPerSecond: round1(r.SendRate), Send: r.Send,
		EndToEnd: r.EndToEnd, ConnectionsOpened: r.Connections, ClientCPUMs: ms(r.ClientCPU), Notes: r.Notes,
		Interrupted: r.Interrupted, TenantDeleted: r.TenantDeleted, CleanupError: r.CleanupError})
}

// PrintQueue writes the report as a table or as JSON.
func PrintQueue(w io.Writer, r QueueReport, format string) error {
	return printAs(w, r, format, func() error {
		tw, line := newTable(w)
		head := runHead{Server: r.Server, Protocol: r.Protocol, Tenant: r.Tenant, TenantID: r.TenantID, CleanupError: r.CleanupError,
			TenantDeleted: r.TenantDeleted, Interrupted: r.Interrupted, Concurrency: r.Senders + r.Receivers, ClientCPUs: r.ClientCPUs,
			Warmup: r.Warmup, Duration: r.Duration, MemoryAtRest: r.MemoryAtRest, MemoryAfter: r.MemoryAfter, MemoryNote: r.MemoryNote}
		if r.Queue != "" {
			head.Subject = []string{"queue", fmt.Sprintf("%s (%d senders, %d receivers, %d-byte bodies)", r.Queue, r.Senders, r.Receivers, r.MessageBytes)}
		}
		head.write(line)
		line("MSGS/S", "SENDS/S", "COMPLETED", "ERRORS", "SEND P50", "SEND P99", "E2E P50", "E2E P99", "E2E MAX", "CLIENT CPU")
		_, cpu := measuredCells(r.Completed, r.EndToEnd, r.ClientCPU, r.Window)
		line(fmt.Sprintf("%.1f", r.Rate), fmt.Sprintf("%.1f", r.SendRate), fmt.Sprint(r.Completed), fmt.Sprint(r.Failed),
			msCell(r.Send.P50), msCell(r.Send.P99), msCell(r.EndToEnd.P50), msCell(r.EndToEnd.P99), msCell(r.EndToEnd.Max), cpu)
		if err := tw.Flush(); err != nil {
			return err
		}
		var extra []string
		for _, code := range slices.Sorted(maps.Keys(r.Errors)) {
			extra = append(extra, fmt.Sprintf("%d × %s", r.Errors[code], code))
		}
		printNotes(w, append(extra, r.Notes...))
		return nil
	})
}

func msCell(d time.Duration) string { return fmt.Sprintf("%.1fms", ms(d)) }
