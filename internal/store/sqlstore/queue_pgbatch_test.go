package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestQueueRunsMatchOpAtATime: PostgreSQL applies runs of sends, locks
// and completes with a statement per run (queue_pgbatch.go), SQLite op
// at a time. The same random batches — duplicates, quotas, expiring and
// scheduled messages, over-delivered ones, wrong and repeated lock tokens,
// abandons and renewals among them — applied to both must give the same
// result for every op and leave the same messages behind. Messages are
// told apart by their bodies, since the two stores number them apart.
func TestQueueRunsMatchOpAtATime(t *testing.T) {
	pg := storetest.Postgres(t) // skips without PostgreSQL, as the package doc says
	lite := storetest.SQLite(t)
	stores := []store.Store{lite, pg}
	names := []string{"sqlite", "postgres"}
	var queues []string
	for _, st := range stores {
		queues = append(queues, benchQueue(t, st))
	}
	ctx := t.Context()

	// The model: what each store numbered each body, and who holds it.
	seq := []map[string]int64{{}, {}}
	holder := map[string]string{} // body -> the token of its latest lock
	var locked []string           // bodies, in the order they were locked
	var bodies []string
	rng := rand.New(rand.NewPCG(16, 1))
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	limits := func() store.QueueLimits {
		return store.QueueLimits{
			LockDuration: 20 * time.Second, MaxDeliveryCount: 3,
			DuplicateDetection: true, DuplicateWindow: time.Minute,
			MaxSizeBytes: 4000, DeadLetterOnExpiration: rng.IntN(2) == 0,
		}
	}
	n := 0
	seen := map[string]int{} // outcomes, by kind
	for round := range 300 {
		now = now.Add(time.Duration(rng.IntN(8000)) * time.Millisecond)
		// An abstract batch: the ops of both stores are made from it.
		type abstract struct {
			op   store.QueueOp
			body string // a settle's message
		}
		var batch []abstract
		for range 1 + rng.IntN(14) {
			lim := limits()
			switch k := rng.IntN(20); {
			case k < 6:
				var ms []store.QueueMessage
				for range 1 + rng.IntN(3) {
					n++
					b := fmt.Sprintf("m%d-%s", n, strings.Repeat("x", rng.IntN(60)))
					m := store.QueueMessage{Body: []byte(b), MessageID: fmt.Sprint("id", rng.IntN(40))}
					switch rng.IntN(6) {
					case 0:
						m.TimeToLive = time.Duration(1+rng.IntN(10)) * time.Second
					case 1:
						m.ScheduledAt = now.Add(time.Duration(rng.IntN(6)) * time.Second)
					case 2:
						m.MessageID = ""
					}
					ms = append(ms, m)
				}
				batch = append(batch, abstract{op: store.QueueOp{Kind: store.QueueSend, Limits: lim, Messages: ms}})
			case k < 12:
				n++
				batch = append(batch, abstract{op: store.QueueOp{Kind: store.QueueLock, Limits: lim, LockToken: fmt.Sprint("t", n), DeadLetter: rng.IntN(8) == 0}})
			case len(bodies) > 0:
				// Mostly a message locked lately, at times any.
				b := bodies[rng.IntN(len(bodies))]
				if len(locked) > 0 && rng.IntN(4) > 0 {
					b = locked[len(locked)-1-rng.IntN(min(len(locked), 20))]
				}
				tok := holder[b]
				if rng.IntN(6) == 0 {
					tok = "wrong"
				}
				op := store.QueueOp{Kind: store.QueueComplete, Limits: lim, LockToken: tok}
				switch {
				case k >= 18:
					op.Kind = store.QueueAbandon
				case k == 17:
					op.Kind = store.QueueRenew
				}
				batch = append(batch, abstract{op: op, body: b})
				if rng.IntN(8) == 0 { // the same settle twice in one batch
					batch = append(batch, abstract{op: op, body: b})
				}
			}
		}
		var results [][]store.QueueResult
		for s, st := range stores {
			ops := make([]store.QueueOp, len(batch))
			for i, a := range batch {
				ops[i] = a.op
				ops[i].QueueID = queues[s]
				if a.body != "" {
					ops[i].SequenceNumber = seq[s][a.body]
				}
			}
			results = append(results, st.(store.Queues).ApplyQueueOps(ctx, now, ops))
		}
		for i, a := range batch {
			want, got := describeResult(results[0][i]), describeResult(results[1][i])
			if want != got {
				t.Fatalf("round %d, op %d (%v %s): %s gave %s, %s gave %s", round, i, a.op.Kind, a.body, names[0], want, names[1], got)
			}
			r := results[0][i]
			outcome := fmt.Sprintf("%v %s", a.op.Kind, strings.SplitN(strings.SplitN(want, " [", 2)[0], " dups=", 2)[0])
			if r.LockExpired {
				outcome += " lapsed"
			}
			if len(r.Duplicates) > 0 {
				outcome += " dups"
			}
			if r.DeadLettered {
				outcome += " dead-lettered"
			}
			seen[outcome]++
			for s := range stores {
				for _, m := range results[s][i].Messages {
					if _, ok := seq[s][string(m.Body)]; !ok && s == 0 {
						bodies = append(bodies, string(m.Body))
					}
					if m.SequenceNumber != 0 {
						seq[s][string(m.Body)] = m.SequenceNumber
					}
				}
			}
			if a.op.Kind == store.QueueLock && results[0][i].Err == nil {
				holder[string(results[0][i].Messages[0].Body)] = a.op.LockToken
				locked = append(locked, string(results[0][i].Messages[0].Body))
			}
		}
		// What is left: the same messages, in the same state.
		for _, dl := range []bool{false, true} {
			var left []string
			for s, st := range stores {
				ms, err := st.(store.Queues).PeekQueueMessages(ctx, queues[s], dl, 0, 1000)
				if err != nil {
					t.Fatal(err)
				}
				var d []string
				for _, m := range ms {
					d = append(d, fmt.Sprintf("%s dc=%d locked=%s until=%s visible-at=%s expires=%s dl=%q", m.Body, m.DeliveryCount, m.LockToken,
						m.LockedUntil.Format(time.RFC3339Nano), m.ScheduledAt.Format(time.RFC3339Nano), m.ExpiresAt.Format(time.RFC3339Nano), m.DeadLetterReason))
				}
				left = append(left, strings.Join(d, "\n"))
			}
			if left[0] != left[1] {
				t.Fatalf("round %d, dead letter %v: %s holds\n%s\n%s holds\n%s", round, dl, names[0], left[0], names[1], left[1])
			}
		}
		var stats []store.QueueStats
		for s, st := range stores {
			x, err := st.(store.Queues).QueueStats(ctx, queues[s], now)
			if err != nil {
				t.Fatal(err)
			}
			stats = append(stats, x)
		}
		if stats[0] != stats[1] {
			t.Fatalf("round %d: stats %+v and %+v", round, stats[0], stats[1])
		}
	}
	t.Logf("%d messages; outcomes %v", len(bodies), seen)
	if len(bodies) < 150 {
		t.Fatalf("only %d messages sent: the test exercised too little", len(bodies))
	}
	for _, o := range []struct {
		kind store.QueueOpKind
		what string
	}{
		{store.QueueSend, "ok dups"}, {store.QueueSend, "quota exceeded"},
		{store.QueueLock, "ok"}, {store.QueueLock, "ok lapsed"}, {store.QueueLock, "not found"},
		{store.QueueComplete, "ok"}, {store.QueueComplete, "lock lost"}, {store.QueueComplete, "not found"},
		{store.QueueAbandon, "ok dead-lettered"},
	} {
		if seen[fmt.Sprintf("%v %s", o.kind, o.what)] == 0 {
			t.Errorf("no %s op ended %q: the test missed a case", queueKindName(o.kind), o.what)
		}
	}
}

// describeResult is what a result says, without the store's own sequence
// numbers.
func describeResult(r store.QueueResult) string {
	var b strings.Builder
	switch {
	case r.Err == nil:
		b.WriteString("ok")
	case errors.Is(r.Err, store.ErrNotFound):
		b.WriteString("not found")
	case errors.Is(r.Err, store.ErrLockLost):
		b.WriteString("lock lost")
	case errors.Is(r.Err, store.ErrQuotaExceeded):
		b.WriteString("quota exceeded")
	default:
		b.WriteString("error " + r.Err.Error())
	}
	for _, m := range r.Messages {
		fmt.Fprintf(&b, " [%s id=%s dc=%d token=%s until=%s sched=%s exp=%s seq>0=%v]", m.Body, m.MessageID, m.DeliveryCount, m.LockToken,
			m.LockedUntil.Format(time.RFC3339Nano), m.ScheduledAt.Format(time.RFC3339Nano), m.ExpiresAt.Format(time.RFC3339Nano), m.SequenceNumber > 0)
	}
	fmt.Fprintf(&b, " dups=%v until=%s expired=%v dl=%v", slices.Clone(r.Duplicates), r.LockedUntil.Format(time.RFC3339Nano), r.LockExpired, r.DeadLettered)
	return b.String()
}

func queueKindName(k store.QueueOpKind) string {
	switch k {
	case store.QueueSend:
		return "send"
	case store.QueueLock:
		return "lock"
	case store.QueueComplete:
		return "complete"
	case store.QueueAbandon:
		return "abandon"
	}
	return fmt.Sprint(k)
}

// TestQueueWakeNotifyQuoting: a commit's wake-ups reach another process
// sharing the PostgreSQL schema with the COMMIT's round trip, their JSON
// written as a string literal: ids holding quotes, backslashes and
// non-ASCII text arrive as they were sent, and the commit holds, whatever
// standard_conforming_strings says.
func TestQueueWakeNotifyQuoting(t *testing.T) {
	dsn := storetest.PostgresSchemaDSN(t)
	ctx := t.Context()
	open := func() store.Store {
		// The writer's backslashes in plain literals are escapes:
		// pgLiteral's constants mean the same regardless.
		st, err := postgres.Open(ctx, dsn+"&standard_conforming_strings=off")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(), open()
	got := make(chan []store.QueueWake, 16)
	b.(store.QueueWakeFeed).OnQueueWakes(func(ws []store.QueueWake) {
		if ws != nil {
			got <- ws
		}
	})
	base := benchQueue(t, a)
	ns := strings.TrimSuffix(base, "/queues/q")
	for _, name := range []string{`it's`, `back\slash\'`, `''; SELECT pg_sleep(5); --`, "é\"€"} {
		id := ns + "/queues/" + name
		if err := a.CreateResource(ctx, store.Resource{TenantID: "11111111-1111-4111-8111-111111111111", ID: id, Type: store.QueueResourceType, Name: name}); err != nil {
			t.Fatal(err)
		}
		lim := store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10}
		start := time.Now()
		r := a.(store.Queues).ApplyQueueOps(ctx, time.Now(), []store.QueueOp{{Kind: store.QueueSend, QueueID: id, Limits: lim,
			Messages: []store.QueueMessage{{Body: []byte("1")}, {Body: []byte("2")}}}})
		if r[0].Err != nil {
			t.Fatalf("send to %q: %v", name, r[0].Err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("send to %q took %v: the notification ran as SQL", name, d)
		}
		select {
		case ws := <-got:
			want := []store.QueueWake{{QueueID: strings.ToLower(id), N: 2}}
			if !slices.Equal(ws, want) {
				t.Fatalf("wake-ups %+v, want %+v", ws, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake-up for %q", name)
		}
		if ms, err := b.(store.Queues).PeekQueueMessages(ctx, id, false, 0, 10); err != nil || len(ms) != 2 {
			t.Fatalf("the other process sees %d messages (%v), want 2", len(ms), err)
		}
		// Locks, then completes: batches whose queue_state rows BEGIN
		// locks by the queue's key, and whose size update goes with
		// the COMMIT.
		locks := a.(store.Queues).ApplyQueueOps(ctx, time.Now(), []store.QueueOp{
			{Kind: store.QueueLock, QueueID: id, Limits: lim, LockToken: "a"}, {Kind: store.QueueLock, QueueID: id, Limits: lim, LockToken: "b"}})
		var completes []store.QueueOp
		for _, r := range locks {
			if r.Err != nil {
				t.Fatalf("lock on %q: %v", name, r.Err)
			}
			completes = append(completes, store.QueueOp{Kind: store.QueueComplete, QueueID: id, Limits: lim, SequenceNumber: r.Messages[0].SequenceNumber, LockToken: r.Messages[0].LockToken})
		}
		for _, r := range a.(store.Queues).ApplyQueueOps(ctx, time.Now(), completes) {
			if r.Err != nil {
				t.Fatalf("complete on %q: %v", name, r.Err)
			}
		}
		if st, err := b.(store.Queues).QueueStats(ctx, id, time.Now()); err != nil || st != (store.QueueStats{}) {
			t.Fatalf("stats of %q after completing all: %+v, %v", name, st, err)
		}
	}
}

// TestQueueLocksDoNotWaitForTheSizeRow: on PostgreSQL a batch of locks
// does not wait for a queue_state row that another transaction holds (a
// commit of sends or completes through another node, during its fsync):
// it locks the next message at once, leaving an expired one in front of
// it for later, and drops that one once the row is free.
func TestQueueLocksDoNotWaitForTheSizeRow(t *testing.T) {
	st := storetest.Postgres(t)
	q := benchQueue(t, st)
	qs := st.(store.Queues)
	ctx := t.Context()
	lim := store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10, MaxSizeBytes: 1 << 20}
	now := time.Now()
	r := qs.ApplyQueueOps(ctx, now, []store.QueueOp{{Kind: store.QueueSend, QueueID: q, Limits: lim,
		Messages: []store.QueueMessage{{Body: []byte("expiring"), TimeToLive: time.Second}, {Body: []byte("kept")}}}})
	if r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	later := now.Add(2 * time.Second)

	holder, err := st.(*sqlstore.Store).DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	var n int
	if err := holder.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM queue_state FOR UPDATE) s`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("holding the queue_state row: %d rows, %v", n, err)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	r = qs.ApplyQueueOps(lctx, later, []store.QueueOp{{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: "a"}})
	if r[0].Err != nil {
		t.Fatalf("lock while the size row is held: %v (after %v)", r[0].Err, time.Since(start))
	}
	if got := string(r[0].Messages[0].Body); got != "kept" {
		t.Fatalf("locked %q, want kept (the expiring one is never delivered)", got)
	}
	if ms, err := qs.PeekQueueMessages(ctx, q, false, 0, 10); err != nil || len(ms) != 2 {
		t.Fatalf("%d messages left (%v): the expired one is left while the row is held", len(ms), err)
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	r = qs.ApplyQueueOps(ctx, later, []store.QueueOp{{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: "b"}})
	if !errors.Is(r[0].Err, store.ErrNotFound) {
		t.Fatalf("second lock: %+v, want not found", r[0])
	}
	ms, err := qs.PeekQueueMessages(ctx, q, false, 0, 10)
	if err != nil || len(ms) != 1 || string(ms[0].Body) != "kept" {
		t.Fatalf("left %+v (%v), want only kept: the expired one dropped once the row was free", ms, err)
	}
	if s, err := qs.QueueStats(ctx, q, later); err != nil || s.SizeBytes != ms[0].Size {
		t.Fatalf("stats %+v (%v), want the size of kept, %d", s, err, ms[0].Size)
	}
}
