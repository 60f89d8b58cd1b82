package sqlstore

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// QueueWakeChannel is the PostgreSQL notification channel on which a
// queue commit tells the other processes sharing the database which of
// their receivers it gave something (store.EachQueueWake). The payload is
// "{schema} {application_name} {JSON array of store.QueueWake}", as the
// change notifications of migration 0006 are, so that a listener skips
// other schemas and its own process's commits.
const QueueWakeChannel = "tenantbridge_queues"

// maxWakePayload keeps a notification's JSON under PostgreSQL's limit of
// 8000 bytes a payload (https://www.postgresql.org/docs/current/sql-notify.html),
// with room for the schema and application name before it (each at most
// 63 bytes, NAMEDATALEN-1). A commit's wake-ups that need more are sent
// as several notifications.
const maxWakePayload = 7800

// wakeFeed is the function OnQueueWakes registered, shared by a Store and
// the Stores of its transactions.
type wakeFeed struct {
	fn atomic.Pointer[func([]store.QueueWake)]
}

var _ store.QueueWakeFeed = (*Store)(nil)

// OnQueueWakes implements store.QueueWakeFeed. Only a store that other
// processes write (PostgreSQL, whose listener calls DeliverQueueWakes)
// ever calls fn.
func (s *Store) OnQueueWakes(fn func([]store.QueueWake)) {
	if fn == nil {
		s.wakes.fn.Store(nil)
		return
	}
	s.wakes.fn.Store(&fn)
}

// DeliverQueueWakes hands another process's wake-ups (nil: some may have
// been missed) to the function OnQueueWakes registered, if any.
func (s *Store) DeliverQueueWakes(ws []store.QueueWake) {
	if fn := s.wakes.fn.Load(); fn != nil {
		(*fn)(ws)
	}
}

// ParseQueueWakes reads the JSON part of a QueueWakeChannel payload. A
// payload that is not what notifyQueueWakes writes is refused whole.
func ParseQueueWakes(js string) ([]store.QueueWake, bool) {
	var ws []store.QueueWake
	if len(js) > 8000 || json.Unmarshal([]byte(js), &ws) != nil {
		return nil, false
	}
	for _, w := range ws {
		if w.QueueID == "" || w.N <= 0 || w.N > 1<<20 {
			return nil, false
		}
	}
	return ws, ws != nil
}

// queueWakeNotifies is the statements (each ended by "; ") that send,
// inside the queue commit's transaction, the wake-ups that the commit
// calls for, merged per receiver key, so that PostgreSQL delivers them to
// the other processes' listeners exactly when the commit is durable: ""
// for a commit that wakes no one. They go to the server with the COMMIT,
// in one round trip (endPGQueueTx), so each payload is a string literal
// (pgLiteral).
func queueWakeNotifies(ops []store.QueueOp, results []store.QueueResult, now time.Time) string {
	var ws []store.QueueWake
	index := map[store.QueueWake]int{}
	store.EachQueueWake(ops, results, now, func(w store.QueueWake) {
		if w.Incidental {
			return
		}
		n := w.N
		w.N = 0
		w.QueueID = strings.ToLower(w.QueueID)
		if i, ok := index[w]; ok {
			ws[i].N += n
			return
		}
		index[w] = len(ws)
		w.N = n
		ws = append(ws, w)
	})
	if len(ws) == 0 {
		return ""
	}
	var payloads []string
	var part []store.QueueWake
	size := 2
	flush := func() {
		if len(part) > 0 {
			b, _ := json.Marshal(part) // strings, bools and ints only
			payloads = append(payloads, string(b))
			part, size = nil, 2
		}
	}
	for _, w := range ws {
		b, _ := json.Marshal(w)
		if len(b)+1 > maxWakePayload {
			continue // a queue id or session id no store op accepts
		}
		if size+len(b)+1 > maxWakePayload {
			flush()
		}
		part = append(part, w)
		size += len(b) + 1
	}
	flush()
	var sb strings.Builder
	for _, p := range payloads {
		sb.WriteString(`SELECT pg_notify('` + QueueWakeChannel + `', coalesce(current_schema(), '') || ' ' || current_setting('application_name') || ' ' || ` + pgLiteral(p) + `); `)
	}
	return sb.String()
}
