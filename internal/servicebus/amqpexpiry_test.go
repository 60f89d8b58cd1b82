package servicebus

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
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
	i, ok := c.tokenAt(fuzzHost)
	if !ok {
		c.mu.Unlock()
		t.Fatalf("no namespace token among %d", len(c.tokens))
	}
	ns := c.tokens[i].cbsToken
	now := c.s.broker.now()
	// Sorted by audience, as tokenAt searches them.
	c.tokens = []audToken{
		{aud: fuzzHost + "/fifo", cbsToken: cbsToken{typ: ns.typ, raw: ns.raw, expires: now.Add(time.Hour)}},
		{aud: fuzzHost + "/work", cbsToken: cbsToken{typ: ns.typ, raw: ns.raw, expires: now.Add(300 * time.Millisecond)}},
	}
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

// TestTokensByAudience: tokens put for audiences in any order are kept
// sorted, one per audience (a renewal replaces it), and each is found
// for its queue; a queue without its own falls back to the namespace's.
func TestTokensByAudience(t *testing.T) {
	h := newFrontFuzz(t)
	c := h.c
	put := func(name string) {
		t.Helper()
		payload, err := (&wire.Message{ApplicationProperties: wire.Map{{Key: "operation", Value: "put-token"}, {Key: "type", Value: cbsTypeJWT},
			{Key: "name", Value: name}}, Value: h.busTok, HasValue: true}).Encoded()
		if err != nil {
			t.Fatal(err)
		}
		if _, status := c.putTokenAs(context.Background(), &amqp.Delivery{Payload: payload}, nil); status != 202 {
			t.Fatalf("put-token for %s: %d", name, status)
		}
	}
	for _, q := range []string{"q3", "q1", "Q2", "q1"} {
		put("amqp://" + fuzzHost + "/" + q)
	}
	c.mu.Lock()
	var auds []string
	for _, tok := range c.tokens {
		auds = append(auds, tok.aud)
	}
	c.mu.Unlock()
	want := []string{fuzzHost, fuzzHost + "/q1", fuzzHost + "/q2", fuzzHost + "/q3"}
	if !slices.Equal(auds, want) {
		t.Fatalf("tokens for %q, want %q", auds, want)
	}
	for _, q := range []string{"q1", "q2", "Q3", "other"} {
		if _, ok := c.tokenFor(q); !ok {
			t.Errorf("no token for %s", q)
		}
	}
	// Without the namespace's, a queue without its own has none.
	c.mu.Lock()
	c.tokens = slices.Delete(c.tokens, 0, 1)
	c.mu.Unlock()
	if _, ok := c.tokenFor("other"); ok {
		t.Error("a token for a queue none was put for")
	}
	if _, ok := c.tokenFor("q2"); !ok {
		t.Error("no token for q2")
	}
}
