package servicebus

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
)

// idleHeapConns is how many connections TestIdleConnHeap opens after
// its first.
const idleHeapConns = 40

// TestIdleConnHeap measures the live heap the front-end keeps for one
// idle connection shaped as an azservicebus client's (issue 16's fleet
// is 2 of them per customer): a $cbs request/response pair with a token
// put on it, a queue's $management pair with one request answered, a
// sender that sent a message and a receiver that received and settled
// it and waits with credit, each link in a session of its own, as the
// SDK makes them. The clients are go-amqp in this process, so the heap
// is counted from a heap profile of every allocation: what was
// allocated under the server's code (internal/amqp, internal/servicebus
// and what they call) and not under go-amqp's.
func TestIdleConnHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 41 connections")
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	t.Cleanup(func() { runtime.MemProfileRate = old })

	ctx := context.Background()
	// A queue per connection, so that each receiver gets its own
	// sender's message.
	queues := make([]string, idleHeapConns+1)
	for i := range queues {
		queues[i] = fmt.Sprintf("q%d", i)
	}
	s, busTok := newFuzzService(t, queues...)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = s.amqp.ServeConn(serveCtx, nc) }()
		}
	}()
	t.Cleanup(func() { stop(); ln.Close(); <-served })

	connect := func(i int) {
		t.Helper()
		queue := fmt.Sprintf("q%d", i)
		client, err := goamqp.Dial(ctx, "amqp://"+ln.Addr().String(), &goamqp.ConnOptions{HostName: fuzzHost, SASLType: goamqp.SASLTypeAnonymous()})
		must(err)
		t.Cleanup(func() { client.Close() })
		session := func() *goamqp.Session {
			t.Helper()
			sess, err := client.NewSession(ctx, nil)
			must(err)
			return sess
		}
		request := func(node, replyTo string, ap map[string]any, value any, statusKey string) {
			t.Helper()
			sess := session()
			rx, err := sess.NewReceiver(ctx, node, &goamqp.ReceiverOptions{TargetAddress: replyTo})
			must(err)
			tx, err := session().NewSender(ctx, node, nil)
			must(err)
			must(tx.Send(ctx, &goamqp.Message{Properties: &goamqp.MessageProperties{MessageID: "m", ReplyTo: &replyTo},
				ApplicationProperties: ap, Value: value}, nil))
			reply, err := rx.Receive(ctx, nil)
			must(err)
			if code, _ := reply.ApplicationProperties[statusKey].(int32); code/100 != 2 {
				t.Fatalf("%s: %v", node, reply.ApplicationProperties)
			}
			must(rx.AcceptMessage(ctx, reply))
		}
		request("$cbs", fmt.Sprintf("$cbs$$cbs-reply-to-%d", i), map[string]any{"operation": "put-token", "type": cbsTypeJWT,
			"name": "amqp://" + fuzzHost + "/" + queue}, busTok, "status-code")
		request(queue+"/$management", queue+"/$management-reply", map[string]any{"operation": opPeekMessage},
			map[string]any{"from-sequence-number": int64(0), "message-count": int32(1)}, "statusCode")
		tx, err := session().NewSender(ctx, queue, nil)
		must(err)
		must(tx.Send(ctx, &goamqp.Message{Data: [][]byte{[]byte("m")}}, nil))
		rx, err := session().NewReceiver(ctx, queue, &goamqp.ReceiverOptions{SettlementMode: goamqp.ReceiverSettleModeSecond.Ptr(), Credit: 1})
		must(err)
		m, err := rx.Receive(ctx, nil)
		must(err)
		must(rx.AcceptMessage(ctx, m))
	}

	// The first connection makes what is made once (caches, tables).
	connect(0)
	time.Sleep(100 * time.Millisecond)
	before := serverHeap()
	for i := 1; i <= idleHeapConns; i++ {
		connect(i)
	}
	time.Sleep(100 * time.Millisecond)
	after := serverHeap()
	var total, front int64
	growth := map[string]int64{}
	for site, n := range after {
		if d := n - before[site]; d != 0 {
			growth[site] = d
			total += d
			if strings.HasPrefix(site, "front ") {
				front += d
			}
		}
	}
	sites := make([]string, 0, len(growth))
	for site := range growth {
		sites = append(sites, site)
	}
	sort.Slice(sites, func(i, j int) bool { return growth[sites[i]] > growth[sites[j]] })
	for _, site := range sites[:min(len(sites), 25)] {
		t.Logf("%6d bytes per connection: %s", growth[site]/idleHeapConns, site)
	}
	perConn, perConnFront := total/idleHeapConns, front/idleHeapConns
	t.Logf("about %d bytes of live heap per idle connection (6 links, 5 sessions), %d of them the AMQP front-end's and engine's (the rest: the queue's caches, the RBAC decisions and tokens verified)", perConn, perConnFront)
	// About 7,750 bytes of the front-end's and engine's (10,200 in all);
	// 13,300 (17,800) while each reply link was in two maps and watched
	// through the context package twice, each queue link had an expiry
	// timer and watch of its own and kept the queue's whole record, each
	// link a done channel from the start and a padded struct, each
	// session its own scratch slices, each connection its loop's and its
	// namespace's whole record, and the tokens a map.
	if perConnFront > 9000 {
		t.Errorf("%d bytes of the front-end's live heap per idle connection, want at most 9,000 (it was 13,300 before the cuts of issue 16)", perConnFront)
	}
}

// serverHeap is the live heap allocated under the server's code, by the
// innermost function of the server's (or the std library's under it)
// that allocated it: allocations made under go-amqp (the clients) or the
// test's own are left out. A site in the AMQP engine or front-end
// (internal/amqp, internal/servicebus/amqp*.go) is prefixed "front ".
func serverHeap() map[string]int64 {
	for range 3 {
		runtime.GC()
	}
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+100)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	out := map[string]int64{}
	for _, r := range recs {
		if r.InUseBytes() == 0 {
			continue
		}
		// The innermost frame that is go-amqp's (a client's) or the
		// server's code (not a test's) decides.
		frames := runtime.CallersFrames(r.Stack())
		site := ""
		server := false
		for {
			f, more := frames.Next()
			fn := f.Function
			// The runtime's cache of select's waiters (per P, not per
			// connection) is left out.
			if strings.Contains(fn, "Azure/go-amqp") || strings.Contains(f.File, "go-amqp") || fn == "runtime.acquireSudog" {
				break
			}
			if (strings.Contains(f.File, "/internal/amqp/") || strings.Contains(f.File, "/internal/servicebus/")) && !strings.HasSuffix(f.File, "_test.go") {
				site = fmt.Sprintf("%s:%d", strings.TrimPrefix(fn, "github.com/tenantbridge/tenantbridge/internal/"), f.Line)
				if strings.Contains(f.File, "/internal/amqp/") || strings.Contains(f.File, "/internal/servicebus/amqp") {
					site = "front " + site
				}
				server = true
				break
			}
			if !more {
				break
			}
		}
		if server {
			out[site] += r.InUseBytes()
		}
	}
	return out
}
