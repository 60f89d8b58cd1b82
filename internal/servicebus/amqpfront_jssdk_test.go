package servicebus

// What the JavaScript SDK (@azure/service-bus 7.9 on rhea 3.0) needs of
// the AMQP front-end beyond what azservicebus does; the SDK itself runs
// against the server in internal/server/node_servicebus_test.go.

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

func TestNamespaceHost(t *testing.T) {
	for in, want := range map[string]string{
		"Orders-Bus.servicebus.windows.net":       "orders-bus.servicebus.windows.net",
		"orders-bus.servicebus.windows.net.":      "orders-bus.servicebus.windows.net",
		"orders-bus.servicebus.windows.net:5671":  "orders-bus.servicebus.windows.net",
		"orders-bus.servicebus.tenantbridge.test": "orders-bus.servicebus.tenantbridge.test",
		"":                "",
		"127.0.0.1":       "",
		"127.0.0.1:5671":  "",
		"::1":             "",
		"[::1]:5671":      "",
		"localhost":       "",
		"localhost:5671":  "",
		"LOCALHOST.":      "",
		"192.168.1.20:80": "",
	} {
		if got := namespaceHost(in); got != want {
			t.Errorf("namespaceHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// With customEndpointAddress amqps://127.0.0.1:5671 the JavaScript SDK
// sends no SNI and 127.0.0.1 as its SASL hostname: the namespace is the
// open's hostname.
func TestConnectNamespaceFromOpenHostname(t *testing.T) {
	h := newFrontFuzz(t)
	for _, tc := range []struct {
		c     *amqp.Conn
		found bool
	}{
		{&amqp.Conn{Hostname: "127.0.0.1", PeerOpen: &wire.Open{Hostname: fuzzHost}}, true},                                    // @azure/service-bus, customEndpointAddress
		{&amqp.Conn{PeerOpen: &wire.Open{Hostname: fuzzHost}}, true},                                                           // go-amqp: no SASL hostname
		{&amqp.Conn{Hostname: fuzzHost + ":5671", PeerOpen: &wire.Open{Hostname: "localhost"}}, true},                          // else the SASL hostname
		{&amqp.Conn{PeerOpen: &wire.Open{Hostname: "127.0.0.1"}, TLS: &tls.ConnectionState{ServerName: fuzzHost}}, true},       // else the SNI
		{&amqp.Conn{Hostname: "127.0.0.1", PeerOpen: &wire.Open{}, TLS: &tls.ConnectionState{ServerName: "localhost"}}, false}, // nothing names it
	} {
		hd, err := h.s.ConnectAMQP(context.Background(), tc.c)
		if !tc.found {
			if we, ok := err.(*wire.Error); !ok || we.Condition != wire.ErrNotFound {
				t.Errorf("conn %+v: %v, want amqp:not-found", tc.c, err)
			}
			continue
		}
		ac, ok := hd.(*amqpConn)
		if err != nil || !ok || ac.host != fuzzHost || ac.ns.Name != "fuzz-bus" {
			t.Errorf("conn %+v: %T %v; want the namespace fuzz-bus", tc.c, hd, err)
		}
	}
}

// The JavaScript SDK's $cbs reply link has no target address, and its
// put-token requests' reply-to is the link's name (@azure/core-amqp 4.4
// dist/commonjs/cbs.js): the reply goes on the link so named.
func TestCBSReplyOnLinkNamedByReplyTo(t *testing.T) {
	h := newFrontFuzz(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	server, client := net.Pipe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = h.s.amqp.ServeConn(ctx, server)
	}()
	defer func() { cancel(); <-served }()
	conn, err := goamqp.NewConn(ctx, client, &goamqp.ConnOptions{HostName: fuzzHost, SASLType: goamqp.SASLTypeAnonymous()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const name = "cbs-a1b2c3d4"
	rx, err := sess.NewReceiver(ctx, "$cbs", &goamqp.ReceiverOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := sess.NewSender(ctx, "$cbs", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, &goamqp.Message{Properties: &goamqp.MessageProperties{MessageID: "req-1", ReplyTo: ptr(name)},
		ApplicationProperties: map[string]any{"operation": "put-token", "type": cbsTypeJWT, "name": "sb://" + fuzzHost + "/work"},
		Value:                 h.busTok}, nil); err != nil {
		t.Fatal(err)
	}
	reply, err := rx.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("no reply on the link named by reply-to: %v", err)
	}
	if reply.ApplicationProperties["status-code"] != int32(202) || reply.Properties == nil || reply.Properties.CorrelationID != "req-1" {
		t.Fatalf("reply %v %+v", reply.ApplicationProperties, reply.Properties)
	}
}

// The delivery count is on the wire even when it is 0: the JavaScript SDK
// reports the header's field as is, so a first delivery would otherwise
// have no count at all.
func TestFirstDeliveryCountOnTheWire(t *testing.T) {
	m := stored(t, store.QueueMessage{Body: []byte("x")}, 1)
	enc, err := messageToAMQP(m, deliveryFacts{queue: "q"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.DecodeMessage(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Header == nil || got.Header.Present&wire.HeaderDeliveryCount == 0 || got.Header.DeliveryCount != 0 {
		t.Fatalf("header %+v: want delivery-count 0 present", got.Header)
	}
}
