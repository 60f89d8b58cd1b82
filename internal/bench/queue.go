package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
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
	// Transport is TransportREST (the default, "") or TransportAMQP.
	Transport string
	// AMQPAddr is the server's AMQPS listener for TransportAMQP; ""
	// means DefaultAMQPAddr.
	AMQPAddr string
	// Batch is the messages of each send over AMQP (a message batch when
	// above 1); 0 means 1.
	Batch int
	// Connections is how many AMQP connections (azservicebus clients) the
	// senders and receivers share, round robin; 0 means one per
	// LinksPerConnection of them.
	Connections int
	// AMQPClient is the AMQP client: AMQPClientSDK (the default, "") or
	// AMQPClientGoAMQP.
	AMQPClient string
	Keep       bool
	TenantName string
	Log        io.Writer
}

// QueueReport is the result of RunQueue.
type QueueReport struct {
	Server, Tenant, TenantID string
	Queue                    string // https://NS.servicebus.windows.net/bench
	Senders, Receivers       int
	MessageBytes             int
	Duration, Warmup         time.Duration
	Protocol                 string
	Transport                string // TransportREST or TransportAMQP
	Batch                    int    // messages per send
	AMQPConnections          int    // AMQP connections shared by the workers
	ClientCPUs               int
	MemoryAtRest             *ServerMemory
	MemoryAfter              *ServerMemory
	MemoryNote               string

	// Window is the measured time. Sent counts the messages sent (201s,
	// or settled sends over AMQP), Completed the messages peek-locked and
	// completed in it: the end-to-end count. Rate is Completed per second.
	Window    time.Duration
	Sent      int
	Completed int
	Failed    int
	Errors    map[string]int
	Rate      float64
	SendRate  float64
	// Send is the latency of a send (to its 201, or to the settlement of
	// its transfer: of a whole batch with Batch > 1); EndToEnd from a
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
	switch opts.Transport {
	case "", TransportREST:
		opts.Transport = TransportREST
		if opts.Batch > 1 {
			return QueueReport{}, errors.New("batches are sent over AMQP only")
		}
	case TransportAMQP:
		if opts.AMQPAddr == "" {
			opts.AMQPAddr = DefaultAMQPAddr
		}
		if opts.Connections <= 0 {
			opts.Connections = (opts.Senders + opts.Receivers + LinksPerConnection - 1) / LinksPerConnection
		}
	default:
		return QueueReport{}, fmt.Errorf("queue transport %q is not known: use rest or amqp", opts.Transport)
	}
	opts.Batch = max(opts.Batch, 1)
	topts := TokenOptions{Server: opts.Server, Kinds: []Kind{KindSecret}, Concurrency: opts.Senders + opts.Receivers,
		Duration: opts.Duration, Warmup: opts.Warmup, Log: opts.Log}.withDefaults()
	rep = QueueReport{Senders: opts.Senders, Receivers: opts.Receivers, MessageBytes: opts.MessageBytes,
		Duration: topts.Duration, Warmup: topts.Warmup, ClientCPUs: runtime.GOMAXPROCS(0), Transport: opts.Transport, Batch: opts.Batch}
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
	if opts.Transport == TransportAMQP {
		client := "azservicebus"
		if opts.AMQPClient == AMQPClientGoAMQP {
			client = "go-amqp"
		}
		rep.Protocol, rep.AMQPConnections = "AMQP 1.0 over TLS to "+opts.AMQPAddr+", "+client, opts.Connections
	}
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
	// The transport, and one send or receive function per worker, made
	// before the clock starts.
	transport queueTransport
	sends     []sendFunc
	receives  []receiveFunc
}

// Transports of the queue benchmark.
const (
	TransportREST = "rest"
	TransportAMQP = "amqp"
)

// AMQP clients of the queue benchmark: the Service Bus SDK, or the AMQP
// library under it used directly (goAMQPQueue).
const (
	AMQPClientSDK    = "sdk"
	AMQPClientGoAMQP = "go-amqp"
)

// DefaultAMQPAddr is serve's default --amqp-listen.
const DefaultAMQPAddr = "127.0.0.1:5671"

// LinksPerConnection is how many senders and receivers share an AMQP
// connection by default. azservicebus opens two sessions for each sender
// and receiver (its link's and its $management link's) and one for each
// $cbs put-token; servers before 073cbb2 granted 64 sessions per
// connection, and a connection with 40 workers was lost at once there.
const LinksPerConnection = 24

// failurePause is how long a worker waits after a failure before trying
// again, so that a lost connection (which the SDK reports at once, call
// after call) is not retried in a busy loop.
const failurePause = 50 * time.Millisecond

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// sendFunc sends one message (a batch of Batch over AMQP); failure is ""
// once the queue holds them durably.
type sendFunc func(ctx context.Context) (failure string)

// receiveFunc peek-locks one message and completes it; it returns when the
// message was sent (from its body), or a failure. No message within the
// long-poll is not a failure: the zero time.
type receiveFunc func(ctx context.Context) (sent time.Time, failure string)

// queueTransport is how the workers reach the queue: REST or AMQP. Each
// worker gets its own function (its own buffers, or its own AMQP link).
type queueTransport interface {
	newSender() (sendFunc, error)
	newReceiver() (receiveFunc, error)
	close(ctx context.Context)
}

// restQueue is the REST transport: HTTPS requests over the load transport.
type restQueue struct{ q *queueBench }

func (r restQueue) newSender() (sendFunc, error) {
	buf := new(bytes.Buffer)
	return func(ctx context.Context) string { return r.q.send(ctx, buf) }, nil
}

func (r restQueue) newReceiver() (receiveFunc, error) {
	buf := new(bytes.Buffer)
	return func(ctx context.Context) (time.Time, string) { return r.q.receive(ctx, buf) }, nil
}

func (restQueue) close(context.Context) {}

// makeWorkers opens the transport and makes each worker's function.
func (q *queueBench) makeWorkers(ctx context.Context) error {
	switch {
	case q.opts.Transport == TransportAMQP && q.opts.AMQPClient == AMQPClientGoAMQP:
		g, err := newGoAMQPQueue(ctx, q)
		if err != nil {
			return err
		}
		q.transport = g
	case q.opts.Transport == TransportAMQP:
		a, err := newAMQPQueue(ctx, q)
		if err != nil {
			return err
		}
		q.transport = a
	default:
		q.transport = restQueue{q}
	}
	for range q.opts.Senders {
		f, err := q.transport.newSender()
		if err != nil {
			return err
		}
		q.sends = append(q.sends, f)
	}
	for range q.opts.Receivers {
		f, err := q.transport.newReceiver()
		if err != nil {
			return err
		}
		q.receives = append(q.receives, f)
	}
	return nil
}

// body is a message body: its send time, then padding to the size asked.
func (q *queueBench) body() []byte {
	body := make([]byte, 0, 24+len(q.padding))
	body = strconv.AppendInt(body, time.Now().UnixNano(), 10)
	body = append(body, ' ')
	return append(body, q.padding[:max(0, len(q.padding)-len(body))]...)
}

// sentTime is the send time a body starts with, or the zero time.
func sentTime(body []byte) time.Time {
	if ts, _, ok := bytes.Cut(body, []byte{' '}); ok {
		if n, err := strconv.ParseInt(string(ts), 10, 64); err == nil {
			return time.Unix(0, n)
		}
	}
	return time.Time{}
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
	if err := q.makeWorkers(ctx); err != nil {
		q.closeTransport(ctx)
		return err
	}
	// One send (a batch) through and back, to prove the path before the
	// clock starts.
	if f := q.sends[0](ctx); f != "" {
		q.closeTransport(ctx)
		return fmt.Errorf("sending the first message over %s: %s", q.opts.Transport, f)
	}
	for range q.opts.Batch {
		if sent, f := q.receives[0](ctx); f != "" || sent.IsZero() {
			q.closeTransport(ctx)
			return fmt.Errorf("receiving the first message over %s: %s", q.opts.Transport, cmp.Or(f, "none within the long-poll"))
		}
	}
	q.logf("The administrator %s sends to and receives from %s as Azure Service Bus Data Owner, over %s.", q.principal, q.queueURL, q.opts.Transport)
	return nil
}

// closeTransport closes the AMQP connections, if any, even after ctx ended.
func (q *queueBench) closeTransport(ctx context.Context) {
	if q.transport != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		q.transport.close(cctx)
		cancel()
	}
}

// send sends one message whose body starts with its send time.
func (q *queueBench) send(ctx context.Context, buf *bytes.Buffer) (failure string) {
	status, f := q.do(ctx, http.MethodPost, q.queueURL+"/messages", q.body(), buf, nil)
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
	sent = sentTime(buf.Bytes())
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
	sent        int // messages: len(send) × Batch
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
	for _, send := range q.sends {
		wg.Go(func() {
			w := &worker{samples: make([]time.Duration, 0, capHint)}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				if f := send(ctx); f != "" {
					if ctx.Err() == nil {
						w.fail(f)
						pause(ctx, failurePause)
					}
					continue
				}
				w.samples = append(w.samples, time.Since(t0))
			}
			mu.Lock()
			p.send = append(p.send, w.samples...)
			p.sent += len(w.samples) * q.opts.Batch
			mu.Unlock()
			fail(w)
		})
	}
	for _, receive := range q.receives {
		wg.Go(func() {
			w := &worker{samples: make([]time.Duration, 0, capHint)}
			for ctx.Err() == nil && !stopped.Load() {
				sent, f := receive(ctx)
				now := time.Now()
				switch {
				case f != "":
					if ctx.Err() == nil {
						w.fail(f)
						pause(ctx, failurePause)
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
	defer q.closeTransport(ctx)
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
	rep.Window, rep.Sent, rep.Completed, rep.Failed, rep.Errors, rep.Connections = p.elapsed, p.sent, len(p.e2e), p.failed, p.errors, p.dials
	if p.elapsed > 0 {
		rep.Rate = float64(len(p.e2e)) / p.elapsed.Seconds()
		rep.SendRate = float64(p.sent) / p.elapsed.Seconds()
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
		Transport                                    string
		Senders, Receivers, MessageBytes, ClientCPUs int
		Batch, AMQPConnections                       int `json:",omitempty"`
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
		Transport: r.Transport, Batch: r.Batch, AMQPConnections: r.AMQPConnections, Senders: r.Senders, Receivers: r.Receivers, MessageBytes: r.MessageBytes, ClientCPUs: r.ClientCPUs,
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
			how := fmt.Sprintf("%d senders, %d receivers, %d-byte bodies", r.Senders, r.Receivers, r.MessageBytes)
			if r.Batch > 1 {
				how += fmt.Sprintf(", batches of %d", r.Batch)
			}
			if r.AMQPConnections > 0 {
				how += fmt.Sprintf(", %d AMQP connection(s)", r.AMQPConnections)
			}
			head.Subject = []string{"queue", fmt.Sprintf("%s over %s (%s)", r.Queue, cmp.Or(r.Transport, TransportREST), how)}
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
