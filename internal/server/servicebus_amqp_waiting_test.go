package server_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/servicebus"
)

// idleReceivingLinks is how many receiving links the waiting-receiver
// measurement opens on one connection, and idleConnections how many
// connections it then opens, each with one receiving link.
const (
	idleReceivingLinks = 32
	idleConnections    = 16
)

// Receiving links with credit and nothing to receive, on connections
// that are otherwise idle (a fleet's idle receivers, docs/benchmarks.md
// "Many customers on one node (issue 16)"), cost the server what this
// test counts. The links and connections are opened by a child process
// (TestIdleReceiversHelperProcess), so that the goroutines and stacks
// counted here are the server's alone.
//
// A waiting receiving link holds no goroutine: it is a waiter in the
// broker and a timer, and a goroutine runs only while it has something
// to do (before, each held one parked in the broker's wait, 8 to 16 KiB
// of stack). An idle connection holds one goroutine, the one reading it:
// the loop that owns its state runs only while there is something to
// handle (before, it was parked too).
func TestAMQPIdleReceivingLinkGoroutinesAndStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	w := newBusWorld(t)
	key, _ := w.listenSendKeys(t, "idle")["primaryKey"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// settle waits for what an attach sets going to end (the attach's
	// goroutine, the link's first turn, which tries the empty queue and
	// leaves a waiter, its first token check, the connection's loop and
	// writer), then counts.
	busy := []string{"servicebus.(*receiveLink).turns", "internal/amqp.(*session).attach", "servicebus.(*expiryWatch).check",
		"internal/amqp.(*Conn).run", "internal/amqp.(*writer).run", "internal/amqp.(*callbacks).run"}
	settle := func() (goroutines int, stack, heap uint64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			n := 0
			for _, fn := range busy {
				n += goroutinesIn(t, fn)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines of the connections still busy", n)
			}
		}
		var ms runtime.MemStats
		for range 3 {
			runtime.GC() // parked stacks shrink at collections
		}
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.StackInuse, ms.HeapAlloc
	}

	expires := time.Unix(time.Now().Add(10*time.Minute).Unix(), 0)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestIdleReceiversHelperProcess$")
	cmd.Env = append(os.Environ(),
		"TB_IDLE_ADDR="+w.r.srv.AMQPAddr(), "TB_IDLE_HOST="+w.fqdn, "TB_IDLE_CA="+w.r.srv.CA().CertFile(),
		"TB_IDLE_SAS="+servicebus.SignSAS("amqps://"+w.fqdn+"/orders", "idle", []byte(key), expires),
		"TB_IDLE_EXPIRES="+strconv.FormatInt(expires.Unix(), 10))
	stdin, err := cmd.StdinPipe()
	mustBus(t, err)
	stdout, err := cmd.StdoutPipe()
	mustBus(t, err)
	cmd.Stderr = os.Stderr
	mustBus(t, cmd.Start())
	defer func() { _ = cmd.Wait() }()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	do := func(command string) {
		t.Helper()
		fmt.Fprintln(stdin, command)
		for lines.Scan() {
			if lines.Text() == "open" {
				return
			}
		}
		t.Fatalf("the helper process did not open its receivers: %v", lines.Err())
	}

	// One connection with one receiver first, so that what a server
	// makes once is in the baseline.
	g00, _, _ := settle()
	do("conn 1")
	g0, s0, h0 := settle()
	do(fmt.Sprintf("links %d", idleReceivingLinks))
	g1, s1, h1 := settle()
	perLinkGoroutines := float64(g1-g0) / idleReceivingLinks
	perLinkStack := (int64(s1) - int64(s0)) / idleReceivingLinks
	for range idleConnections {
		do("conn 1")
	}
	g2, s2, h2 := settle()
	if path := os.Getenv("TB_IDLE_HEAP_PROFILE"); path != "" {
		// What the live heap holds, with every connection open (run
		// with -test.memprofilerate=1 to see every allocation).
		f, err := os.Create(path)
		mustBus(t, err)
		mustBus(t, pprof.Lookup("heap").WriteTo(f, 0))
		mustBus(t, f.Close())
	}
	perConnGoroutines := float64(g2-g1) / idleConnections
	perConnStack := (int64(s2) - int64(s1)) / idleConnections
	// The live heap is logged, not bounded: the test's own allocations
	// and caches move it by a few KiB.
	t.Logf("%d idle receiving links on one connection: %.2f goroutines, %d bytes of goroutine stack and about %d bytes of live heap per link",
		idleReceivingLinks, perLinkGoroutines, perLinkStack, (int64(h1)-int64(h0))/idleReceivingLinks)
	t.Logf("%d idle connections, each with its $cbs links and one waiting receiver: %.2f goroutines, %d bytes of goroutine stack and about %d bytes of live heap per connection (the first: %d goroutines)",
		idleConnections, perConnGoroutines, perConnStack, (int64(h2)-int64(h1))/idleConnections, g0-g00)
	if n := goroutinesIn(t, "servicebus.(*Broker).await"); n != 0 {
		t.Errorf("%d goroutines wait in the broker for idle receiving links, want none", n)
	}
	// A few goroutines of the runtime's or the test's may come and go.
	if g1-g0 > idleReceivingLinks/8 {
		t.Errorf("%d more goroutines for %d idle receiving links, want none (at most %d for noise)", g1-g0, idleReceivingLinks, idleReceivingLinks/8)
	}
	if perLinkStack > 1<<10 {
		t.Errorf("%d bytes of goroutine stack per idle receiving link, want none (at most 1 KiB for noise; it was 8 KiB with a goroutine waiting per link)", perLinkStack)
	}
	if perConnGoroutines > 1.25 {
		t.Errorf("%.2f goroutines per idle connection with a waiting receiver, want 1, its reader's (it was 3: the reader, the loop and the link's wait)", perConnGoroutines)
	}

	// Closing the connections ends their links: no turn is left running
	// and no goroutine of theirs stays.
	stdin.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if runtime.NumGoroutine() <= g00+idleReceivingLinks/8 {
			break
		}
	}
	if g := runtime.NumGoroutine(); g > g00+idleReceivingLinks/8 {
		t.Errorf("%d goroutines after the connections closed, %d before they opened", g, g00)
	}
}

// TestIdleReceiversHelperProcess is the client side of
// TestAMQPIdleReceivingLinkGoroutinesAndStack, run as its child: AMQPS
// connections whose receivers on "orders" each give one credit. It reads
// commands from stdin, one a line: "conn N" opens a connection (with its
// $cbs links and token) and N receivers on it, "links N" N more
// receivers on the last connection; it answers "open" to each, and ends
// when stdin closes.
func TestIdleReceiversHelperProcess(t *testing.T) {
	addr := os.Getenv("TB_IDLE_ADDR")
	if addr == "" {
		t.Skip("run by TestAMQPIdleReceivingLinkGoroutinesAndStack")
	}
	pem, err := os.ReadFile(os.Getenv("TB_IDLE_CA"))
	mustBus(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	host := os.Getenv("TB_IDLE_HOST")
	expires, err := strconv.ParseInt(os.Getenv("TB_IDLE_EXPIRES"), 10, 64)
	mustBus(t, err)
	var cbs *cbsClient
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		what, count, _ := strings.Cut(strings.TrimSpace(lines.Text()), " ")
		n, err := strconv.Atoi(count)
		mustBus(t, err)
		switch what {
		case "conn":
			cbs = dialCBS(t, ctx, addr, host, pool)
			cbs.putToken("put-idle", "amqps://"+host+"/orders", os.Getenv("TB_IDLE_SAS"), time.Unix(expires, 0))
		case "links":
		default:
			t.Fatalf("unknown command %q", what)
		}
		for range n {
			// go-amqp gives the link its credit as it attaches: the
			// link waits for a message on an empty queue.
			_, err := cbs.session.NewReceiver(ctx, "orders", &amqp.ReceiverOptions{Credit: 1})
			mustBus(t, err)
		}
		fmt.Println("open")
	}
}
