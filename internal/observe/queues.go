package observe

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// otherQueue is the queue label of the queues past Options.MaxQueues.
const otherQueue = "_other"

// queueSeries are one queue's counters, resolved once so that counting a
// message is an atomic add.
type queueSeries struct {
	id                                                             string // lower-cased resource id, the label value
	sent, received, redelivered, lockExpired, lockLost, deadLetter prometheus.Counter
}

// queueSet hands out the series of queues, the first max distinct queues
// (by lower-cased resource id) each their own and the rest one shared
// "_other" series. A queue's series go when a scrape finds the queue
// deleted (depthCollector), which frees its place.
type queueSet struct {
	sent, received, redelivered, lockExpired, lockLost, deadLetter *prometheus.CounterVec

	mu    sync.RWMutex
	byRaw map[string]*queueSeries // the id as the broker gave it; at most 4*max entries
	byID  map[string]*queueSeries // lower-cased id → its own series; at most max entries
	max   int
	other *queueSeries
}

func newQueueSet(f promauto.Factory, max int) *queueSet {
	q := &queueSet{max: max, byRaw: map[string]*queueSeries{}, byID: map[string]*queueSeries{}}
	q.sent = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_servicebus_messages_sent_total", Help: "Messages stored by sends (REST and AMQP; duplicates that duplicate detection dropped not counted), by queue resource id."}, []string{"queue"})
	q.received = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_servicebus_messages_received_total", Help: "Messages delivered to receivers (peek-lock, receive-and-delete, deferred by sequence number), by queue resource id."}, []string{"queue"})
	q.redelivered = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_servicebus_redeliveries_total", Help: "Deliveries of a message delivered before (its lock expired or it was abandoned), by queue resource id."}, []string{"queue"})
	q.lockExpired = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_servicebus_lock_expired_total", Help: "Messages delivered again after their lock expired unsettled (the receiver was too slow for the queue's lockDuration, or gone), by queue resource id."}, []string{"queue"})
	q.lockLost = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_servicebus_lock_lost_total", Help: "Settlements and renewals refused because the message's lock had expired (MessageLockLost), by queue resource id."}, []string{"queue"})
	q.deadLetter = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_servicebus_dead_lettered_total", Help: "Messages moved to the dead-letter queue by a settlement (a receiver's dead-letter, an abandon past MaxDeliveryCount, an expired deferred message), by queue resource id. Messages that expire in the queue show in the dead-letter depth."}, []string{"queue"})
	q.other = q.series(otherQueue)
	return q
}

func (q *queueSet) series(id string) *queueSeries {
	return &queueSeries{id: id, sent: q.sent.WithLabelValues(id), received: q.received.WithLabelValues(id),
		redelivered: q.redelivered.WithLabelValues(id), lockExpired: q.lockExpired.WithLabelValues(id), lockLost: q.lockLost.WithLabelValues(id), deadLetter: q.deadLetter.WithLabelValues(id)}
}

// get returns the series of a queue. It allocates only the first time it
// sees an id.
func (q *queueSet) get(raw string) *queueSeries {
	q.mu.RLock()
	s := q.byRaw[raw]
	q.mu.RUnlock()
	if s != nil {
		return s
	}
	id := strings.ToLower(raw)
	q.mu.Lock()
	defer q.mu.Unlock()
	s = q.byID[id]
	if s == nil {
		if len(q.byID) >= q.max {
			s = q.other
		} else {
			s = q.series(id)
			q.byID[id] = s
		}
	}
	if len(q.byRaw) < 4*q.max {
		q.byRaw[raw] = s
	}
	return s
}

// ids lists the queues that have series of their own.
func (q *queueSet) ids() []string {
	q.mu.RLock()
	defer q.mu.RUnlock()
	out := make([]string, 0, len(q.byID))
	for id := range q.byID {
		out = append(out, id)
	}
	return out
}

// remove forgets a deleted queue and its series.
func (q *queueSet) remove(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.byID[id]
	if s == nil {
		return
	}
	delete(q.byID, id)
	for raw, v := range q.byRaw {
		if v == s {
			delete(q.byRaw, raw)
		}
	}
	for _, v := range []*prometheus.CounterVec{q.sent, q.received, q.redelivered, q.lockExpired, q.lockLost, q.deadLetter} {
		v.DeleteLabelValues(id)
	}
}

// QueueOpsApplied counts what one commit of the Service Bus broker did
// (servicebus.BrokerObserver): results[i] is ops[i]'s. It is called once
// per commit, on the broker's commit loop, and costs a map read and an
// atomic add per operation.
func (m *Metrics) QueueOpsApplied(ops []store.QueueOp, results []store.QueueResult) {
	for i := range ops {
		op, r := &ops[i], &results[i]
		s := m.queues.get(op.QueueID)
		if r.DeadLettered {
			s.deadLetter.Inc()
		}
		if r.LockExpired {
			s.lockExpired.Inc()
		}
		if r.Err != nil {
			if errors.Is(r.Err, store.ErrLockLost) && settles(op.Kind) {
				s.lockLost.Inc()
			}
			continue
		}
		switch op.Kind {
		case store.QueueSend:
			s.sent.Add(float64(len(op.Messages) - len(r.Duplicates)))
		case store.QueueLock, store.QueueReceiveAndDelete, store.QueueLockDeferred:
			s.received.Add(float64(len(r.Messages)))
			for j := range r.Messages {
				if r.Messages[j].DeliveryCount > 1 {
					s.redelivered.Inc()
				}
			}
		}
	}
}

// settles reports whether k acts on a message under its lock, so that
// ErrLockLost means the lock had expired (or was never this receiver's).
func settles(k store.QueueOpKind) bool {
	switch k {
	case store.QueueComplete, store.QueueAbandon, store.QueueRenew, store.QueueDeadLetter, store.QueueDefer:
		return true
	}
	return false
}

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 5 * time.Second

// depthCollector reads, at each scrape, the depth of the queues that have
// series (QueueStats: one small query each, at most Options.MaxQueues),
// and forgets the queues it finds deleted.
type depthCollector struct {
	st     store.Queues
	queues *queueSet
}

var (
	queueMessagesDesc = prometheus.NewDesc("tenantbridge_servicebus_queue_messages",
		"Messages in a queue at the scrape, by queue resource id and state: active (deliverable, locked or deferred), scheduled, deadletter. Only queues used since the server started (up to the queue bound) are read.",
		[]string{"queue", "state"}, nil)
	queueBytesDesc = prometheus.NewDesc("tenantbridge_servicebus_queue_size_bytes",
		"Bytes a queue's messages count against its quota, by queue resource id.", []string{"queue"}, nil)
)

func (d *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueMessagesDesc
	ch <- queueBytesDesc
}

func (d *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := time.Now()
	for _, id := range d.queues.ids() {
		st, err := d.st.QueueStats(ctx, id, now)
		if errors.Is(err, store.ErrNotFound) {
			d.queues.remove(id)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return // out of time: the rest waits for the next scrape
			}
			continue
		}
		ch <- prometheus.MustNewConstMetric(queueMessagesDesc, prometheus.GaugeValue, float64(st.ActiveCount), id, "active")
		ch <- prometheus.MustNewConstMetric(queueMessagesDesc, prometheus.GaugeValue, float64(st.ScheduledCount), id, "scheduled")
		ch <- prometheus.MustNewConstMetric(queueMessagesDesc, prometheus.GaugeValue, float64(st.DeadLetterCount), id, "deadletter")
		ch <- prometheus.MustNewConstMetric(queueBytesDesc, prometheus.GaugeValue, float64(st.SizeBytes), id)
	}
}

// outboxCollector reads the outbox backlog at each scrape.
type outboxCollector struct {
	st      store.Outbox
	pending *prometheus.Desc
	oldest  *prometheus.Desc
}

func newOutboxCollector(st store.Outbox) *outboxCollector {
	return &outboxCollector{st: st,
		pending: prometheus.NewDesc("tenantbridge_outbox_pending_messages",
			"Outbox messages (managed applications' notifications) not yet delivered nor given up.", nil, nil),
		oldest: prometheus.NewDesc("tenantbridge_outbox_oldest_pending_age_seconds",
			"Age of the oldest pending outbox message; 0 when none is pending.", nil, nil)}
}

func (o *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- o.pending
	ch <- o.oldest
}

func (o *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	n, oldest, err := o.st.OutboxBacklog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(o.pending, err)
		return
	}
	age := 0.0
	if n > 0 {
		age = max(time.Since(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(o.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(o.oldest, prometheus.GaugeValue, age)
}
