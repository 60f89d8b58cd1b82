package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/servicebus"
)

// goroutinesIn counts the goroutines whose stack has a frame of fn.
func goroutinesIn(t *testing.T, fn string) int {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// An open connection whose links wait (a fleet's idle receivers) holds
// no goroutine of the server's per link to watch its token's expiry,
// and no writer goroutine while there is nothing to write: both were
// parked goroutines, with their stacks, for every idle connection and
// link (docs/benchmarks.md, "Cross-tenant fan-out").
func TestAMQPIdleConnectionHoldsNoWatcherOrWriterGoroutines(t *testing.T) {
	w := newBusWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, sender, receiver := w.ordersClient(t)
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("ping")}, nil))
	got := receiveN(t, ctx, receiver, 1)
	mustBus(t, receiver.CompleteMessage(ctx, got[0], nil))
	// The receiver waits again, with a credit out; links and the
	// connection stay open.
	waiting := make(chan struct{})
	go func() {
		defer close(waiting)
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		defer rcancel()
		_, _ = receiver.ReceiveMessages(rctx, 1, nil)
	}()

	watchers, writers := -1, -1
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		watchers = goroutinesIn(t, "servicebus.(*amqpConn).detachOnExpiry")
		writers = goroutinesIn(t, "internal/amqp.(*writer).run")
		if watchers == 0 && writers == 0 {
			break
		}
	}
	if watchers != 0 {
		t.Errorf("%d goroutines watch token expiries of idle links, want none", watchers)
	}
	if writers != 0 {
		t.Errorf("%d writer goroutines for an idle connection, want none", writers)
	}
	<-waiting
	// The connection still works both ways after its writer went away.
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("again")}, nil))
	got = receiveN(t, ctx, receiver, 1)
	if string(got[0].Body) != "again" {
		t.Fatalf("received %q, want again", got[0].Body)
	}
	mustBus(t, receiver.CompleteMessage(ctx, got[0], nil))
}

// cbsClient is a raw go-amqp connection to the namespace over AMQPS,
// anonymous, with a $cbs sender and its replies' receiver: what the SDKs
// hide behind their token renewal.
type cbsClient struct {
	t       *testing.T
	ctx     context.Context
	session *amqp.Session
	out     *amqp.Sender
	in      *amqp.Receiver
}

func (w *busWorld) cbsClient(t *testing.T, ctx context.Context) *cbsClient {
	t.Helper()
	return dialCBS(t, ctx, w.r.srv.AMQPAddr(), w.fqdn, w.r.srv.CA().Pool())
}

// dialCBS is a cbsClient to the AMQPS listener at addr, for the
// namespace host, trusting roots.
func dialCBS(t *testing.T, ctx context.Context, addr, host string, roots *x509.CertPool) *cbsClient {
	t.Helper()
	conn, err := amqp.Dial(ctx, "amqps://"+addr, &amqp.ConnOptions{
		HostName: host, SASLType: amqp.SASLTypeAnonymous(),
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: host}})
	mustBus(t, err)
	t.Cleanup(func() { conn.Close() })
	session, err := conn.NewSession(ctx, nil)
	mustBus(t, err)
	out, err := session.NewSender(ctx, "$cbs", nil)
	mustBus(t, err)
	in, err := session.NewReceiver(ctx, "$cbs", &amqp.ReceiverOptions{TargetAddress: "cbs-replies"})
	mustBus(t, err)
	return &cbsClient{t: t, ctx: ctx, session: session, out: out, in: in}
}

// putSAS puts a SAS token for audience, signed with the rule's key and
// expiring at expires, and checks that $cbs took it (202).
func (c *cbsClient) putSAS(id, audience, rule, key string, expires time.Time) {
	c.t.Helper()
	c.putToken(id, audience, servicebus.SignSAS(audience, rule, []byte(key), expires), expires)
}

// putToken puts the SAS token sas for audience and checks that $cbs
// took it (202).
func (c *cbsClient) putToken(id, audience, sas string, expires time.Time) {
	c.t.Helper()
	mustBus(c.t, c.out.Send(c.ctx, &amqp.Message{
		Properties: &amqp.MessageProperties{MessageID: id, ReplyTo: &[]string{"cbs-replies"}[0]},
		ApplicationProperties: map[string]any{"operation": "put-token", "type": "servicebus.windows.net:sastoken",
			"name": audience, "expiration": expires.Unix()},
		Value: sas}, nil))
	reply, err := c.in.Receive(c.ctx, nil)
	mustBus(c.t, err)
	if reply.ApplicationProperties["status-code"] != int32(202) || reply.Properties.CorrelationID != id {
		c.t.Fatalf("put-token reply: %v %+v", reply.ApplicationProperties, reply.Properties)
	}
}

// A link whose token is put again on $cbs before it expires stays
// attached past the first token's expiry (the watch moves to the new
// token), and is detached when the new one lapses too.
func TestAMQPLinkKeptByRenewedToken(t *testing.T) {
	w := newBusWorld(t)
	key, _ := w.listenSendKeys(t, "short")["primaryKey"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cbs := w.cbsClient(t, ctx)
	audience := "amqps://" + w.fqdn + "/orders"
	// A SAS token's expiry is in whole seconds.
	first := time.Unix(time.Now().Add(2*time.Second).Unix(), 0)
	cbs.putSAS("put-1", audience, "short", key, first)
	receiver, err := cbs.session.NewReceiver(ctx, "orders", nil)
	mustBus(t, err)
	second := time.Unix(time.Now().Add(5*time.Second).Unix(), 0)
	cbs.putSAS("put-2", audience, "short", key, second)

	// Past the first token's expiry the link still waits for a message.
	rctx, rcancel := context.WithDeadline(ctx, first.Add(1500*time.Millisecond))
	_, err = receiver.Receive(rctx, nil)
	rcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("receive past the first token's expiry: %v, want the link still attached", err)
	}
	// Past the second's, it is detached.
	_, err = receiver.Receive(ctx, nil)
	var linkErr *amqp.LinkError
	if !errors.As(err, &linkErr) || linkErr.RemoteErr == nil || linkErr.RemoteErr.Condition != amqp.ErrCondUnauthorizedAccess {
		t.Fatalf("receive past the renewed token's expiry: %v, want the link detached with amqp:unauthorized-access", err)
	}
	if time.Now().Before(second) {
		t.Fatalf("detached at %s, before the renewed token's expiry %s", time.Now().Format(time.RFC3339Nano), second.Format(time.RFC3339Nano))
	}
}
