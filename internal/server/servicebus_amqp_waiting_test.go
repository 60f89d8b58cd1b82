package server_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/servicebus"
)

// idleReceivingLinks is how many receiving links the waiting-receiver
// measurement opens on one connection.
const idleReceivingLinks = 32

// Receiving links with credit and nothing to receive (a fleet's idle
// receivers, docs/benchmarks.md "Many customers on one node (issue 16)")
// cost the server what this test counts. The links are opened by a
// child process (TestIdleReceiversHelperProcess), so that the goroutines
// and stacks counted here are the server's alone. Each link holds
// exactly one goroutine of the server's, parked in the broker's wait,
// and no other; the counts are logged per link so that the change that
// removes the waiting goroutine (a waiter the connection's goroutines
// wake) shows its gain here, and the bounds fail if a waiting link grows
// another goroutine or a deeper parked stack.
func TestAMQPIdleReceivingLinkGoroutinesAndStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	w := newBusWorld(t)
	key, _ := w.listenSendKeys(t, "idle")["primaryKey"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	settle := func() (goroutines int, stack uint64) {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC() // parked stacks shrink at collections
		}
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.StackInuse
	}
	waitingIn := func(want int) int {
		n := -1
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n = goroutinesIn(t, "servicebus.(*Broker).await"); n == want {
				break
			}
		}
		return n
	}

	expires := time.Unix(time.Now().Add(10*time.Minute).Unix(), 0)
	// One receiver first, so that the connection's own goroutines are
	// in the baseline and only the links' are measured.
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
	open := func(n int) {
		t.Helper()
		fmt.Fprintf(stdin, "%d\n", n)
		for lines.Scan() {
			if lines.Text() == "open" {
				return
			}
		}
		t.Fatalf("the helper process did not open its receivers: %v", lines.Err())
	}
	open(1)
	if n := waitingIn(1); n != 1 {
		t.Fatalf("%d goroutines wait in the broker for one receiving link, want 1", n)
	}
	g0, s0 := settle()
	open(idleReceivingLinks)
	waiting := waitingIn(1 + idleReceivingLinks)
	g1, s1 := settle()
	perLinkGoroutines := float64(g1-g0) / idleReceivingLinks
	perLinkStack := (int64(s1) - int64(s0)) / idleReceivingLinks
	t.Logf("%d idle receiving links: %d goroutines waiting in the broker; %.2f goroutines and %d bytes of goroutine stack per link",
		idleReceivingLinks, waiting-1, perLinkGoroutines, perLinkStack)
	if waiting != 1+idleReceivingLinks {
		t.Errorf("%d goroutines wait in the broker for %d receiving links", waiting, 1+idleReceivingLinks)
	}
	if g1-g0 > idleReceivingLinks {
		t.Errorf("%d more goroutines for %d idle receiving links, want at most one each", g1-g0, idleReceivingLinks)
	}
	if perLinkStack > 12<<10 {
		t.Errorf("%d bytes of goroutine stack per idle receiving link, want at most 12 KiB (it was 16 KiB before the waiting frames shrank)", perLinkStack)
	}

	// Closing the connection ends every wait.
	stdin.Close()
	if n := waitingIn(0); n != 0 {
		t.Errorf("%d goroutines still wait in the broker after their connection closed", n)
	}
}

// TestIdleReceiversHelperProcess is the client side of
// TestAMQPIdleReceivingLinkGoroutinesAndStack, run as its child: one
// AMQPS connection whose receivers on "orders" each give one credit. It
// reads a count per line from stdin, opens that many more receivers and
// answers "open"; it ends when stdin closes.
func TestIdleReceiversHelperProcess(t *testing.T) {
	addr := os.Getenv("TB_IDLE_ADDR")
	if addr == "" {
		t.Skip("run by TestAMQPIdleReceivingLinkGoroutinesAndStack")
	}
	pem, err := os.ReadFile(os.Getenv("TB_IDLE_CA"))
	mustBus(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host := os.Getenv("TB_IDLE_HOST")
	expires, err := strconv.ParseInt(os.Getenv("TB_IDLE_EXPIRES"), 10, 64)
	mustBus(t, err)
	cbs := dialCBS(t, ctx, addr, host, pool)
	cbs.putToken("put-idle", "amqps://"+host+"/orders", os.Getenv("TB_IDLE_SAS"), time.Unix(expires, 0))
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		n, err := strconv.Atoi(strings.TrimSpace(lines.Text()))
		mustBus(t, err)
		for range n {
			// go-amqp gives the link its credit as it attaches: the
			// link waits for a message on an empty queue.
			_, err := cbs.session.NewReceiver(ctx, "orders", &amqp.ReceiverOptions{Credit: 1})
			mustBus(t, err)
		}
		fmt.Println("open")
	}
}
