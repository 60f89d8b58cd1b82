package amqp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// TestRepliesRegistration: a reply link is found by its target address,
// or else by its name (rhea's $cbs reply link has no target); a later
// link with the same address or name takes it over; a link's end takes
// it out of the table, which goes with its last link.
func TestRepliesRegistration(t *testing.T) {
	var replies Replies
	links := make(chan *Link, 4)
	srv := &Server{Connect: func(context.Context, *Conn) (Handler, error) {
		return HandlerFunc(func(_ context.Context, l *Link) (*Accept, error) {
			replies.Add(l)
			links <- l
			return &Accept{}, nil
		}), nil
	}}
	ts := startServer(t, srv, nil)
	p := rawDial(t, ts.addr)
	p.open(0)
	p.send(0, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)
	expect[*wire.Begin](p)
	attach := func(h uint32, name, target string) *Link {
		t.Helper()
		var tg *wire.Target
		if target != "" {
			tg = &wire.Target{Address: target}
		}
		p.send(0, &wire.Attach{Name: name, Handle: h, Role: true, Source: &wire.Source{Address: "$cbs"}, Target: tg}, nil)
		expect[*wire.Attach](p)
		return <-links
	}
	detach := func(h uint32, l *Link) {
		t.Helper()
		p.send(0, &wire.Detach{Handle: h, Closed: true}, nil)
		expect[*wire.Detach](p)
		<-l.Done()
	}
	find := func(replyTo string, want *Link) {
		t.Helper()
		if got := replies.find(replyTo); got != want {
			t.Errorf("reply-to %q finds %p, want %p", replyTo, got, want)
		}
	}
	a := attach(0, "a", "to-a")
	b := attach(1, "b", "")
	find("to-a", a)
	find("a", a)
	find("b", b)
	find("to-b", nil)
	// c takes a's address and b's name; a's address finds c before any
	// name does, and a's name still finds a.
	c := attach(2, "b", "to-a")
	find("to-a", c)
	find("a", a)
	find("b", c)
	// An address wins over a name.
	d := attach(3, "d", "a")
	find("a", d)
	detach(3, d)
	find("a", a)
	// c's end does not give its address or name back to a and b, as a
	// table of names would not.
	detach(2, c)
	find("to-a", nil)
	find("b", nil)
	find("a", a)
	detach(0, a)
	detach(1, b)
	deadline := time.Now().Add(5 * time.Second)
	for {
		replies.mu.Lock()
		n := len(replies.links)
		replies.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d registrations left after every link ended", n)
		}
		time.Sleep(time.Millisecond)
	}
	replies.mu.Lock()
	defer replies.mu.Unlock()
	if replies.links != nil {
		t.Error("the empty table kept its array")
	}
}

// TestAcceptOnEnd: an accepted link's OnEnd runs once when it ends:
// detached by the peer, ended while the application was deciding, or
// with its connection.
func TestAcceptOnEnd(t *testing.T) {
	ended := make(chan string, 8)
	release := make(chan struct{})
	links := make(chan *Link, 8)
	srv := &Server{Connect: func(context.Context, *Conn) (Handler, error) {
		return HandlerFunc(func(_ context.Context, l *Link) (*Accept, error) {
			name := l.PeerAttach.Name
			links <- l
			if name == "slow" {
				<-release
			}
			return &Accept{OnEnd: func() { ended <- name }}, nil
		}), nil
	}}
	ts := startServer(t, srv, nil)
	p := rawDial(t, ts.addr)
	p.open(0)
	p.send(0, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)
	expect[*wire.Begin](p)
	attach := func(h uint32, name string) {
		p.send(0, &wire.Attach{Name: name, Handle: h, Role: true, Source: &wire.Source{Address: "q"}, Target: &wire.Target{}}, nil)
	}
	want := func(name string) {
		t.Helper()
		select {
		case got := <-ended:
			if got != name {
				t.Fatalf("OnEnd of %q, want %q's", got, name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no OnEnd for %q", name)
		}
	}
	attach(0, "a")
	expect[*wire.Attach](p)
	p.send(0, &wire.Detach{Handle: 0, Closed: true}, nil)
	expect[*wire.Detach](p)
	want("a")
	// Nothing asked for a's done channel while it lived: it is done all
	// the same.
	a := <-links
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("an ended link's Done is not closed")
	}
	if err := a.Context().Err(); err != context.Canceled {
		t.Fatalf("an ended link's context's Err is %v", err)
	}
	// Detached while Attach decides: OnEnd once the decision is in.
	attach(1, "slow")
	p.send(0, &wire.Detach{Handle: 1, Closed: true}, nil)
	expect[*wire.Attach](p)
	expect[*wire.Detach](p)
	close(release)
	want("slow")
	// With the connection.
	attach(2, "c")
	expect[*wire.Attach](p)
	p.nc.Close()
	want("c")
	select {
	case got := <-ended:
		t.Fatalf("OnEnd of %q ran again", got)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestNoWatchOfEndlessContext: a connection served under a context that
// can end watches it (its end closes the connection); one served under
// a context that cannot keeps no watch.
func TestNoWatchOfEndlessContext(t *testing.T) {
	for _, endless := range []bool{false, true} {
		watched := make(chan bool, 1)
		srv := &Server{Connect: func(context.Context, *Conn) (Handler, error) {
			return HandlerFunc(func(_ context.Context, l *Link) (*Accept, error) {
				watched <- l.Conn.stopCtx != nil
				return &Accept{}, nil
			}), nil
		}}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		serveCtx := ctx
		if endless {
			serveCtx = context.WithoutCancel(ctx)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if nc, err := ln.Accept(); err == nil {
				_ = srv.ServeConn(serveCtx, nc)
			}
		}()
		p := rawDial(t, ln.Addr().String())
		p.open(0)
		p.beginAttachSender()
		if got := <-watched; got == endless {
			t.Errorf("served under an endless context %v: watched %v", endless, got)
		}
		p.nc.Close()
		cancel()
		ln.Close()
		<-done
	}
}
