// Command rabbitmq is the RabbitMQ side of `tenantbridge bench queue`: the
// same load — senders sending and receivers receiving and settling one
// message at a time, back to back, for a warm-up and then a measured
// window — against a RabbitMQ broker, with the same guarantees asked for
// (a durable queue, persistent messages, a send counted only once the
// broker confirmed it, a message removed only by a manual ack), reported
// in the same shape, so the two can be quoted side by side from one run.
//
// It lives in its own Go module so that tenantbridge itself never depends
// on a RabbitMQ client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// options are the flags; they match tenantbridge bench queue's.
type options struct {
	url                string
	senders, receivers int
	duration, warmup   time.Duration
	size               int
	queueType          string
	prefetch           int
	keep               bool
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "amqp://guest:guest@127.0.0.1:5672/", "the broker's AMQP URL")
	flag.IntVar(&o.senders, "senders", 16, "goroutines sending back to back, each waiting for the broker's confirm")
	flag.IntVar(&o.receivers, "receivers", 16, "goroutines receiving and acking back to back")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured window")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "uncounted load before the window")
	flag.IntVar(&o.size, "size", 256, "message body size in bytes")
	flag.StringVar(&o.queueType, "queue-type", "classic", "x-queue-type of the durable queue: classic or quorum")
	flag.IntVar(&o.prefetch, "prefetch", 1, "unacked messages a receiver may hold (1: one at a time, as a peek-lock then complete)")
	flag.BoolVar(&o.keep, "keep", false, "keep the queue instead of deleting it")
	flag.Parse()
	if o.senders < 1 || o.receivers < 1 || o.duration <= 0 || o.warmup < 0 || o.size < 1 || o.size > 200_000 || o.prefetch < 1 {
		fmt.Fprintln(os.Stderr, "rabbitmq: --senders, --receivers and --prefetch must be at least 1, --duration positive, --size from 1 to 200000")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o, os.Stderr)
	if rep.Server != "" {
		rep.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rabbitmq:", err)
		os.Exit(1)
	}
}

// report is what one run measured; its table is bench queue's.
type report struct {
	Server, Queue      string
	Senders, Receivers int
	Size, Prefetch     int
	Warmup, Duration   time.Duration
	Window             time.Duration
	Sent, Completed    int
	Failed             int
	Errors             map[string]int
	Rate, SendRate     float64
	Send, EndToEnd     latency
	ClientCPU          time.Duration
	Notes              []string
}

// run declares a fresh durable queue, loads it for o.warmup and then
// o.duration, and deletes it (unless o.keep).
func run(ctx context.Context, o options, log io.Writer) (rep report, err error) {
	rep = report{Senders: o.senders, Receivers: o.receivers, Size: o.size, Prefetch: o.prefetch, Warmup: o.warmup, Duration: o.duration}
	admin, err := amqp.Dial(o.url)
	if err != nil {
		return rep, fmt.Errorf("connecting to %s: %w", redact(o.url), err)
	}
	defer admin.Close()
	version, _ := admin.Properties["version"].(string)
	product, _ := admin.Properties["product"].(string)
	rep.Server = fmt.Sprintf("%s (AMQP 0-9-1, %s %s)", redact(o.url), product, version)
	ch, err := admin.Channel()
	if err != nil {
		return rep, err
	}
	name := fmt.Sprintf("tenantbridge-bench-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": o.queueType}); err != nil {
		return rep, fmt.Errorf("declaring the durable %s queue %s: %w", o.queueType, name, err)
	}
	rep.Queue = fmt.Sprintf("%s (durable %s queue; persistent messages, publisher confirms, manual acks, prefetch %d)", name, o.queueType, o.prefetch)
	if !o.keep {
		defer func() {
			if _, derr := ch.QueueDelete(name, false, false, false); derr != nil {
				rep.Notes = append(rep.Notes, "queue NOT deleted: "+derr.Error())
			}
		}()
	}
	fmt.Fprintf(log, "Loading %s with %d senders and %d receivers: warm-up %s, then %s...\n", name, o.senders, o.receivers, o.warmup, o.duration)

	l := &load{o: o, queue: name, body: make([]byte, o.size)}
	for i := range l.body {
		l.body[i] = 'x'
	}
	start := time.Now()
	l.from, l.until = start.Add(o.warmup), start.Add(o.warmup+o.duration)
	cpu0 := processCPU()
	var cpu1 time.Duration
	l.run(ctx, func() { cpu0 = processCPU() }, func() { cpu1 = processCPU() })
	rep.ClientCPU = cpu1 - cpu0
	rep.Window = min(time.Since(l.from), o.duration)
	rep.Sent, rep.Completed, rep.Failed, rep.Errors = len(l.send), len(l.e2e), l.failed, l.errors
	if rep.Window > 0 {
		rep.Rate = float64(rep.Completed) / rep.Window.Seconds()
		rep.SendRate = float64(rep.Sent) / rep.Window.Seconds()
	}
	rep.Send, rep.EndToEnd = summarize(l.send), summarize(l.e2e)
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "interrupted: the results are partial")
	}
	fmt.Fprintf(log, "%d sent, %d completed in %s (%.1f messages/s end to end), %d errors\n", rep.Sent, rep.Completed,
		rep.Window.Round(time.Millisecond), rep.Rate, rep.Failed)
	return rep, nil
}

// load is one run's workers and what they measured. Everything happens
// from the start to until; only what completes in [from, until) counts,
// so the warm-up is the same load, uncounted, and no message is left in
// a receiver's hands between the two.
type load struct {
	o           options
	queue       string
	body        []byte
	from, until time.Time

	mu     sync.Mutex
	send   []time.Duration // sends confirmed in the window: publish → confirm
	e2e    []time.Duration // messages acked in the window: send → ack
	failed int
	errors map[string]int
}

// run starts the workers and waits for them; atFrom and atUntil run when
// the window opens and closes.
func (l *load) run(ctx context.Context, atFrom, atUntil func()) {
	ctx, cancel := context.WithDeadline(ctx, l.until)
	defer cancel()
	var wg sync.WaitGroup
	for range l.o.receivers {
		wg.Go(func() { l.worker(ctx, l.receive) })
	}
	for range l.o.senders {
		wg.Go(func() { l.worker(ctx, l.sendLoop) })
	}
	select {
	case <-time.After(time.Until(l.from)):
		atFrom()
	case <-ctx.Done():
	}
	<-ctx.Done()
	atUntil()
	wg.Wait()
}

// worker runs loop on its own connection until ctx ends, reconnecting
// after a failure (counted) so one broken connection does not end the run.
func (l *load) worker(ctx context.Context, loop func(context.Context, *amqp.Channel) error) {
	for ctx.Err() == nil {
		conn, err := amqp.Dial(l.o.url)
		if err == nil {
			var ch *amqp.Channel
			if ch, err = conn.Channel(); err == nil {
				err = loop(ctx, ch)
			}
			conn.Close()
		}
		if err != nil && ctx.Err() == nil {
			l.fail(err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// sendLoop publishes persistent messages whose body starts with their
// send time, each waiting for the broker's confirm before the next.
func (l *load) sendLoop(ctx context.Context, ch *amqp.Channel) error {
	if err := ch.Confirm(false); err != nil {
		return err
	}
	samples := make([]time.Duration, 0, 1024)
	defer func() { l.add(&l.send, samples) }()
	for ctx.Err() == nil {
		t0 := time.Now()
		body := make([]byte, 0, len(l.body)+24)
		body = strconv.AppendInt(body, t0.UnixNano(), 10)
		body = append(body, ' ')
		body = append(body, l.body[:max(0, len(l.body)-len(body))]...)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", l.queue, true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, ContentType: "text/plain", Body: body})
		if err != nil {
			return err
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // the run ended while the confirm was on its way
			}
			return err
		}
		if !ok {
			l.fail(errors.New("basic.nack"))
			continue
		}
		now := time.Now()
		if t0.After(l.from) && now.Before(l.until) {
			samples = append(samples, now.Sub(t0))
		}
	}
	return nil
}

// receive consumes with manual acks, at most prefetch unacked at a time,
// acking each message as soon as it arrives.
func (l *load) receive(ctx context.Context, ch *amqp.Channel) error {
	if err := ch.Qos(l.o.prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, l.queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	samples := make([]time.Duration, 0, 1024)
	defer func() { l.add(&l.e2e, samples) }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-deliveries:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the broker closed the consumer")
			}
			if err := d.Ack(false); err != nil {
				return err
			}
			now := time.Now()
			if now.Before(l.from) || !now.Before(l.until) {
				continue
			}
			if ts, _, ok := strings.Cut(string(d.Body[:min(len(d.Body), 24)]), " "); ok {
				if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
					samples = append(samples, now.Sub(time.Unix(0, n)))
				}
			}
		}
	}
}

func (l *load) add(to *[]time.Duration, samples []time.Duration) {
	l.mu.Lock()
	*to = append(*to, samples...)
	l.mu.Unlock()
}

// fail counts a failure by its message.
func (l *load) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.errors == nil {
		l.errors = map[string]int{}
	}
	l.failed++
	l.errors[err.Error()]++
}

// print writes the report in bench queue's table shape.
func (r report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	line("server", r.Server)
	line("queue", fmt.Sprintf("%s (%d senders, %d receivers, %d-byte bodies)", r.Queue, r.Senders, r.Receivers, r.Size))
	line("load", fmt.Sprintf("concurrency %d, warm-up %s, window %s, client GOMAXPROCS %d", r.Senders+r.Receivers, r.Warmup, r.Duration, runtime.GOMAXPROCS(0)))
	line()
	line("MSGS/S", "SENDS/S", "COMPLETED", "ERRORS", "SEND P50", "SEND P99", "E2E P50", "E2E P99", "E2E MAX", "CLIENT CPU")
	cpu := "-"
	if r.ClientCPU > 0 && r.Window > 0 {
		cpu = fmt.Sprintf("%.0f%% of a CPU", 100*r.ClientCPU.Seconds()/r.Window.Seconds())
	}
	line(fmt.Sprintf("%.1f", r.Rate), fmt.Sprintf("%.1f", r.SendRate), fmt.Sprint(r.Completed), fmt.Sprint(r.Failed),
		msCell(r.Send.P50), msCell(r.Send.P99), msCell(r.EndToEnd.P50), msCell(r.EndToEnd.P99), msCell(r.EndToEnd.Max), cpu)
	tw.Flush()
	var notes []string
	for _, msg := range slices.Sorted(maps.Keys(r.Errors)) {
		notes = append(notes, fmt.Sprintf("%d × %s", r.Errors[msg], msg))
	}
	notes = append(notes, r.Notes...)
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
}

// latency is a distribution's summary, as bench queue reports it.
type latency struct{ P50, P90, P99, Max, Mean time.Duration }

// summarize computes the nearest-rank percentiles (bench queue's method);
// it sorts samples in place.
func summarize(samples []time.Duration) latency {
	n := len(samples)
	if n == 0 {
		return latency{}
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
	return latency{P50: rank(50), P90: rank(90), P99: rank(99), Max: samples[n-1], Mean: sum / time.Duration(n)}
}

func msCell(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redact drops the password from an AMQP URL for printing.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if cred, host, ok := strings.Cut(rest, "@"); ok {
		user, _, _ := strings.Cut(cred, ":")
		return scheme + "://" + user + "@" + host
	}
	return u
}
