package servicebus

import (
	"context"
	"errors"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
)

// TestExpiryWatchPerLink: the connection's one expiry timer detaches
// exactly the links whose token lapsed (here the queue "work"'s, put
// for that queue alone), keeps the links another token covers (the
// queue "fifo"'s, valid for an hour), and lets go of each link that
// ended.
func TestExpiryWatchPerLink(t *testing.T) {
	h := newFrontFuzz(t)
	ctx := context.Background()
	c := h.c
	c.mu.Lock()
	ns := c.tokens[fuzzHost]
	if ns.raw == "" {
		c.mu.Unlock()
		t.Fatalf("no namespace token among %d", len(c.tokens))
	}
	delete(c.tokens, fuzzHost)
	now := c.s.broker.now()
	c.tokens[fuzzHost+"/work"] = cbsToken{typ: ns.typ, raw: ns.raw, expires: now.Add(300 * time.Millisecond)}
	c.tokens[fuzzHost+"/fifo"] = cbsToken{typ: ns.typ, raw: ns.raw, expires: now.Add(time.Hour)}
	c.mu.Unlock()

	work, err := h.sess.NewSender(ctx, "work", nil)
	if err != nil {
		t.Fatal(err)
	}
	fifo, err := h.sess.NewSender(ctx, "fifo", nil)
	if err != nil {
		t.Fatal(err)
	}
	watched := func() int {
		c.expiry.mu.Lock()
		defer c.expiry.mu.Unlock()
		return len(c.expiry.links)
	}
	// The setup's sender and receiver of "work" are watched too, and go the
	// same way.
	if n := watched(); n != 4 {
		t.Fatalf("%d links watched, want 4", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := work.Send(ctx, &goamqp.Message{Data: [][]byte{[]byte("x")}}, nil)
		var le *goamqp.LinkError
		if errors.As(err, &le) && le.RemoteErr != nil && le.RemoteErr.Condition == goamqp.ErrCondUnauthorizedAccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sender of the lapsed token's queue was not detached: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := fifo.Send(sctx, &goamqp.Message{Data: [][]byte{[]byte("x")}, Properties: &goamqp.MessageProperties{GroupID: ptr("s")}}, nil); err != nil {
		t.Fatalf("the sender another token covers: %v", err)
	}
	for watched() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d links watched, want the one left", watched())
		}
		time.Sleep(time.Millisecond)
	}
	if err := fifo.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for watched() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d links watched after the last ended", watched())
		}
		time.Sleep(time.Millisecond)
	}
	c.expiry.mu.Lock()
	defer c.expiry.mu.Unlock()
	if !c.expiry.at.IsZero() || c.expiry.links != nil {
		t.Errorf("the watch of no link is set for %v, with %d links", c.expiry.at, len(c.expiry.links))
	}
}
