package servicebus

import (
	"fmt"
	"testing"
	"time"
)

// TestNextEventsStayBounded: the broker's remembered next events do not
// grow with every queue ever received from; lapsed entries are swept, and
// one still fresh is kept.
func TestNextEventsStayBounded(t *testing.T) {
	b := &Broker{next: map[waitKey]*nextEvent{}, nextSweepAt: minNextSweep}
	fresh := keyOf("/fresh", false)
	b.nextEntryLocked(fresh).read = time.Now()
	for i := range 10 * minNextSweep {
		b.nextEntryLocked(keyOf(fmt.Sprintf("/q%d", i), false))
	}
	if n := len(b.next); n > 2*minNextSweep {
		t.Errorf("%d remembered entries after %d queues", n, 10*minNextSweep)
	}
	if _, ok := b.next[fresh]; !ok {
		t.Error("a fresh entry was swept")
	}
}
