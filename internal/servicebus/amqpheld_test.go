package servicebus

import (
	"fmt"
	"testing"
	"time"
)

// A connection full of lapsed locks drops them for a new one, so that a
// receiver which lets locks lapse keeps renew-lock; live locks stay.
func TestHeldLocksDropLapsed(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &amqpConn{s: &Service{broker: &Broker{now: func() time.Time { return now }}}}
	for i := range maxHeldLocks {
		c.hold(fmt.Sprint(i), heldLock{seq: int64(i), until: now.Add(time.Duration(i%2+1) * time.Minute)})
	}
	c.hold("full", heldLock{until: now.Add(time.Hour)})
	if _, ok := c.heldBy("full"); ok {
		t.Fatal("a full connection held one more live lock")
	}
	now = now.Add(time.Minute) // the even ones lapse
	c.hold("new", heldLock{until: now.Add(time.Hour)})
	if _, ok := c.heldBy("new"); !ok {
		t.Fatal("a full connection of lapsed locks refused a new one")
	}
	if _, ok := c.heldBy("0"); ok {
		t.Fatal("a lapsed lock was kept")
	}
	if _, ok := c.heldBy("1"); !ok {
		t.Fatal("a live lock was dropped")
	}
	c.renewed("1", now.Add(time.Hour))
	if h, _ := c.heldBy("1"); !h.until.Equal(now.Add(time.Hour)) {
		t.Fatalf("renewed lock until %v", h.until)
	}
}
