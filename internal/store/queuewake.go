package store

import "time"

// QueueWake says that a commit made up to N messages available to the
// receivers waiting on one thing of a queue: the queue (or its dead-letter
// queue, DeadLetter), one session's messages (Session), or a session no one
// holds (NextSession). The Service Bus broker wakes N such receivers.
// QueueID is the queue's resource id as the operation named it; receivers
// compare it case-insensitively.
type QueueWake struct {
	QueueID     string `json:"q"`
	DeadLetter  bool   `json:"d,omitempty"`
	Session     string `json:"s,omitempty"`
	NextSession bool   `json:"x,omitempty"`
	N           int    `json:"n"`
	// Incidental marks the dead-letter queue's wake-up after a receive,
	// which may have moved messages there on its way: a guess, not worth
	// telling other processes on every receive (their dead-letter
	// receivers find such messages at their next timer instead).
	Incidental bool `json:"-"`
}

// EachQueueWake calls fn with the wake-ups that the committed ops, with
// their results, call for at now. It is the one rule of what a commit
// gives receivers: the broker applies it to its own commits, and a store
// shared by several processes (PostgreSQL) tells the others of the same
// wake-ups (QueueWakeFeed). A wake-up may find nothing (another receiver
// was first); a missing one would leave a receiver asleep beside a message.
func EachQueueWake(ops []QueueOp, results []QueueResult, now time.Time, fn func(QueueWake)) {
	for i, op := range ops {
		r := results[i]
		if r.Err != nil {
			continue
		}
		switch op.Kind {
		case QueueSend:
			n := 0
			for j, m := range op.Messages {
				if isIndexIn(r.Duplicates, j) || m.ScheduledAt.After(now) {
					continue
				}
				if m.SessionID != "" && op.Limits.RequiresSession {
					// Its session's holder, or else someone to accept it.
					fn(QueueWake{QueueID: op.QueueID, Session: m.SessionID, N: 1})
					fn(QueueWake{QueueID: op.QueueID, NextSession: true, N: 1})
					continue
				}
				n++
			}
			if n > 0 {
				fn(QueueWake{QueueID: op.QueueID, N: n})
			}
		case QueueAbandon, QueueDeadLetter:
			dl := op.DeadLetter || r.DeadLettered
			if op.SessionID != "" && !dl {
				fn(QueueWake{QueueID: op.QueueID, Session: op.SessionID, N: 1})
			} else {
				fn(QueueWake{QueueID: op.QueueID, DeadLetter: dl, N: 1})
			}
		case QueueReleaseSession:
			fn(QueueWake{QueueID: op.QueueID, NextSession: true, N: 1})
		case QueueLock, QueueReceiveAndDelete:
			// On its way to a message, a receive may have moved expired
			// or exhausted messages to the dead-letter queue.
			if !op.DeadLetter {
				fn(QueueWake{QueueID: op.QueueID, DeadLetter: true, N: 1, Incidental: true})
			}
		}
	}
}

func isIndexIn(list []int, i int) bool {
	for _, v := range list {
		if v == i {
			return true
		}
	}
	return false
}

// QueueWakeFeed is implemented by stores that other processes write too
// (PostgreSQL): OnQueueWakes registers the function told of the wake-ups
// that other processes' queue commits call for (EachQueueWake), as soon as
// they are committed, so that a receiver waiting in this process learns at
// once of a message sent through another. A nil slice means that wake-ups
// may have been missed (the store was not listening for a while): every
// receiver should look again. One function at a time; nil unregisters.
type QueueWakeFeed interface {
	OnQueueWakes(fn func([]QueueWake))
}
