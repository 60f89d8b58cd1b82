package servicebus

// Fuzz targets for the AMQP front-end's request/response nodes: what a
// peer puts on $cbs (put-token) and on {entity}/$management is untrusted
// input. Each request goes through the function the node's link calls
// (putToken, management) on a connection that a real go-amqp client opened
// over TCP to the front-end's amqp.Server, on a real SQLite store, token
// service and RBAC engine, so that a reply travels the real reply link
// back to the client. The properties held: no panic; a request is
// rejected only when it does not decode, and a decoded one addressed to
// our reply link gets exactly one reply, with an int32 status and the
// request's message-id as a string correlation-id; and the work a request
// causes stays bounded (tokens per connection, messages per peek, reply
// sizes).

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// fuzzAuthorizer is the server's adapter: the real RBAC engine deciding
// the data action at the queue's scope.
type fuzzAuthorizer struct{ e *rbac.Engine }

func (a fuzzAuthorizer) Authorize(ctx context.Context, acc Access) (bool, string, error) {
	d, err := a.e.Decide(ctx, rbac.Request{PrincipalID: acc.PrincipalID, PrincipalTenantID: acc.PrincipalTenantID,
		TenantID: acc.TenantID, Action: acc.DataAction, DataAction: true, Scope: acc.Scope})
	if err != nil {
		return false, "", err
	}
	return d.Allowed, d.Because.String(), nil
}

const (
	fuzzHost        = "fuzz-bus.servicebus.windows.net"
	fuzzCBSReplyTo  = "cbs-replies-fuzz"
	fuzzMgmtReplyTo = "mgmt-replies-fuzz"
)

// frontFuzz is one connection of the front-end under fuzzing and the
// client at its other end.
type frontFuzz struct {
	s       *Service
	c       *amqpConn // the connection's handler, as the engine calls it
	cbsRx   *goamqp.Receiver
	mgmtRx  *goamqp.Receiver
	sess    *goamqp.Session // the client's session, for more links
	busTok  string          // an Entra token for the namespace
	held    []wire.UUID     // lock tokens of messages the client holds locked
	replies int             // replies received, for the log
}

// fuzzQueueLimits stands in for QueueLimits (the queues here have no ARM
// record): a lock long enough to outlast a fuzzing run.
// The queue "fifo" requires sessions.
func fuzzQueueLimits(res store.Resource) (store.QueueLimits, error) {
	return store.QueueLimits{LockDuration: 10 * time.Minute, MaxDeliveryCount: 10, MaxSizeBytes: 1 << 30, RequiresSession: res.Name == "fifo"}, nil
}

// newFuzzService is a Service over a SQLite store in which the namespace
// fuzz-bus holds the queues named, contoso's administrator application
// is its Data Owner, and a broker runs; and that application's token for
// Service Bus.
func newFuzzService(tb testing.TB, queues ...string) (*Service, string) {
	tb.Helper()
	ctx := context.Background()
	st := storetest.SQLite(tb)
	b := testenv.New(tb, st, testenv.LoginHosts("login.microsoftonline.com"), testenv.LoginURL("https://login.microsoftonline.com"))
	contoso, _ := b.Tenants(tb)
	tenant, sub := contoso.Tenant.ID, contoso.Tenant.SubscriptionID
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tenant, SubscriptionID: sub, Name: "rg", Location: "westeurope"}))
	nsID := "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/fuzz-bus"
	must(st.CreateResource(ctx, store.Resource{TenantID: tenant, SubscriptionID: sub, ResourceGroup: "rg", ID: nsID, Type: NamespaceType,
		Name: "fuzz-bus", Location: "westeurope"}))
	for _, q := range queues {
		must(st.CreateResource(ctx, store.Resource{TenantID: tenant, SubscriptionID: sub, ResourceGroup: "rg", ID: nsID + "/queues/" + q,
			Type: QueueType, Name: q, Location: "westeurope"}))
	}
	must(st.CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: tenant, ID: uuid.NewString(), Scope: nsID,
		RoleDefinitionID: rbac.RoleServiceBusDataOwner, PrincipalID: contoso.AdminSP.ID, PrincipalType: store.PrincipalServicePrincipal}))
	broker := NewBroker(st, time.Now, b.Logger)
	tb.Cleanup(broker.Close)
	s := New(Config{Store: st, Broker: broker, Verifier: b.Verifier, Authorizer: fuzzAuthorizer{rbac.New(st, b.Dir)},
		Limits: fuzzQueueLimits, Audit: b.Audit, Logger: slog.New(slog.DiscardHandler)})
	return s, b.Token(tb, tenant, contoso.Admin.AppID, contoso.AdminSecret.SecretText, Resource+"/.default")
}

func newFrontFuzz(tb testing.TB) *frontFuzz {
	tb.Helper()
	ctx := context.Background()
	s, busTok := newFuzzService(tb, "work", "fifo")
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	h := &frontFuzz{s: s, busTok: busTok}

	// The engine's Connect, remembering the handler it returns.
	conns := make(chan *amqpConn, 1)
	s.amqp.Connect = func(ctx context.Context, c *amqp.Conn) (amqp.Handler, error) {
		hd, err := s.ConnectAMQP(ctx, c)
		if ac, ok := hd.(*amqpConn); ok {
			conns <- ac
		}
		return hd, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		ln.Close()
		if err == nil {
			_ = s.amqp.ServeConn(serveCtx, nc)
		}
	}()
	tb.Cleanup(func() { stop(); ln.Close(); <-served })
	nc, err := net.Dial("tcp", ln.Addr().String())
	must(err)
	client, err := goamqp.NewConn(ctx, nc, &goamqp.ConnOptions{HostName: fuzzHost, SASLType: goamqp.SASLTypeAnonymous()})
	must(err)
	tb.Cleanup(func() { client.Close() })
	h.c = <-conns
	sess, err := client.NewSession(ctx, nil)
	must(err)
	h.sess = sess
	h.cbsRx, err = sess.NewReceiver(ctx, "$cbs", &goamqp.ReceiverOptions{TargetAddress: fuzzCBSReplyTo})
	must(err)
	h.mgmtRx, err = sess.NewReceiver(ctx, "work/$management", &goamqp.ReceiverOptions{TargetAddress: fuzzMgmtReplyTo})
	must(err)

	// The namespace's token, put through the $cbs link as the SDKs do.
	cbsTx, err := sess.NewSender(ctx, "$cbs", nil)
	must(err)
	must(cbsTx.Send(ctx, &goamqp.Message{Properties: &goamqp.MessageProperties{MessageID: "setup", ReplyTo: ptr(fuzzCBSReplyTo)},
		ApplicationProperties: map[string]any{"operation": "put-token", "type": cbsTypeJWT, "name": "amqp://" + fuzzHost + "/"},
		Value:                 h.busTok}, nil))
	reply, err := h.cbsRx.Receive(ctx, nil)
	must(err)
	if reply.ApplicationProperties["status-code"] != int32(202) {
		tb.Fatalf("put-token of the namespace's token: %v", reply.ApplicationProperties)
	}
	// Messages to peek, two of them held locked by this connection for
	// renew-lock to find.
	tx, err := sess.NewSender(ctx, "work", nil)
	must(err)
	for i := range 4 {
		must(tx.Send(ctx, &goamqp.Message{Data: [][]byte{fmt.Appendf(nil, "m%d", i)},
			ApplicationProperties: map[string]any{"n": int64(i)}}, nil))
	}
	rx, err := sess.NewReceiver(ctx, "work", &goamqp.ReceiverOptions{SettlementMode: goamqp.ReceiverSettleModeSecond.Ptr(), Credit: 2})
	must(err)
	for range 2 {
		m, err := rx.Receive(ctx, nil)
		must(err)
		u, err := uuid.Parse(lockTokenOf(m.DeliveryTag))
		must(err)
		h.held = append(h.held, wire.UUID(u))
	}
	// The fuzzing reaches the broker: the held locks renew.
	if code, desc, _ := h.c.manage(ctx, "work", opRenewLock, &wire.Message{Value: wire.Map{{Key: "lock-tokens", Value: h.held}}}); code != 200 {
		tb.Fatalf("renew-lock of the held locks: %d %s", code, desc)
	}
	return h
}

func ptr[T any](v T) *T { return &v }

// replyWait bounds the wait for a reply that is due: not a timing
// assertion, a way for a lost reply to fail instead of hanging the fuzzer.
const replyWait = time.Minute

// answer checks what a node did with one request: the delivery's outcome,
// and the reply on rx when the request asked for one there. It returns
// the reply (nil when none was due).
func (h *frontFuzz) answer(t *testing.T, st wire.DeliveryState, payload []byte, replyTo string, rx *goamqp.Receiver, statusKey string) *goamqp.Message {
	t.Helper()
	req, derr := wire.DecodeMessage(payload)
	switch s := st.(type) {
	case *wire.Accepted:
		if derr != nil {
			t.Fatalf("accepted a request that does not decode (%v)", derr)
		}
	case *wire.Rejected:
		if derr == nil {
			t.Fatalf("rejected a request that decodes: %+v", s.Error)
		}
		if s.Error == nil || s.Error.Condition != wire.ErrDecodeError {
			t.Fatalf("rejected with %+v, want amqp:decode-error", s.Error)
		}
		return nil
	default:
		t.Fatalf("outcome %T %+v: neither accepted nor rejected", st, st)
	}
	if req.Properties == nil || req.Properties.ReplyTo != replyTo {
		return nil // no reply link of ours: dropped, as Service Bus does
	}
	ctx, cancel := context.WithTimeout(context.Background(), replyWait)
	defer cancel()
	reply, err := rx.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("no reply to a request with reply-to %q: %v", replyTo, err)
	}
	h.replies++
	if _, ok := reply.ApplicationProperties[statusKey].(int32); !ok {
		t.Fatalf("reply's %s is %T %v, want an int32", statusKey, reply.ApplicationProperties[statusKey], reply.ApplicationProperties[statusKey])
	}
	want := idString(req.Properties.MessageID)
	var got any
	if reply.Properties != nil {
		got = reply.Properties.CorrelationID
	}
	if s, ok := got.(string); !(ok && s == want) && !(want == "" && got == nil) {
		t.Fatalf("reply's correlation-id %T %q, want the string %q (message-id %T %v)", got, got, want, req.Properties.MessageID, req.Properties.MessageID)
	}
	return reply
}

// withProperties is a properties section asking for a reply on replyTo,
// then tail: arbitrary bytes for the sections that follow.
func withProperties(t testing.TB, id any, replyTo string, tail []byte) []byte {
	t.Helper()
	enc, err := (&wire.Message{Properties: &wire.Properties{MessageID: id, ReplyTo: replyTo}}).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	return append(enc, tail...)
}

// messageIDOf picks a message-id of one of the types the SDKs and other
// clients send.
func messageIDOf(kind uint8, n int) any {
	switch kind % 4 {
	case 0:
		return fmt.Sprintf("req-%d", n)
	case 1:
		return uint64(n)
	case 2:
		var u wire.UUID
		binary.BigEndian.PutUint64(u[8:], uint64(n))
		return u
	}
	return []byte{byte(n), 0xff}
}

func FuzzCBSPutToken(f *testing.F) {
	h := newFrontFuzz(f)
	sas := SignSAS("https://"+fuzzHost+"/", "RootManageSharedAccessKey", []byte("not the key"), time.Now().Add(time.Hour))
	f.Add(uint8(0), "put-token", cbsTypeJWT, "amqp://"+fuzzHost+"/", h.busTok, []byte(nil))
	f.Add(uint8(0), "put-token", cbsTypeSAS, "sb://"+fuzzHost+"/work", sas, []byte(nil))
	f.Add(uint8(4|16), "put-token", cbsTypeJWT, fuzzHost, "eyJ.e30.x", []byte(nil))
	f.Add(uint8(8|32), "get-token", "jwt", "", "", []byte(nil))
	f.Add(uint8(0|64), "put-token", cbsTypeSAS, "x", "SharedAccessSignature sr=a&sig=b&se=1&skn=c", []byte(nil))
	ap, _ := (&wire.Message{ApplicationProperties: wire.Map{{Key: "operation", Value: "put-token"}, {Key: "type", Value: cbsTypeJWT},
		{Key: "name", Value: fuzzHost}}, Value: h.busTok, HasValue: true}).Encoded()
	f.Add(uint8(1), "", "", "", "", ap)
	f.Add(uint8(2), "", "", "", "", withProperties(f, "id", fuzzCBSReplyTo, ap))
	n := 0
	f.Fuzz(func(t *testing.T, mode uint8, op, typ, name, token string, tail []byte) {
		n++
		var payload []byte
		switch mode % 3 {
		case 0: // a request built from fuzzed properties and body
			props := wire.Map{}
			var opV any = op
			if mode&4 != 0 {
				opV = wire.Symbol(op)
			}
			props.Set("operation", opV)
			props.Set("type", typ)
			props.Set("name", name)
			m := &wire.Message{ApplicationProperties: props,
				Properties: &wire.Properties{MessageID: messageIDOf(mode>>6, n), ReplyTo: fuzzCBSReplyTo}}
			if mode&8 != 0 {
				m.Properties.ReplyTo = "elsewhere"
			}
			switch (mode >> 4) % 3 {
			case 0:
				m.Value, m.HasValue = token, true
			case 1:
				m.Data = [][]byte{[]byte(token)}
			default:
				m.Value, m.HasValue = wire.Symbol(token), true
			}
			var err error
			if payload, err = m.Encoded(); err != nil {
				t.Skip() // not a message a client could send
			}
		case 1: // our properties, then fuzzed sections
			payload = withProperties(t, messageIDOf(mode>>6, n), fuzzCBSReplyTo, tail)
		default: // fuzzed bytes
			payload = tail
		}
		st := h.c.putToken(context.Background(), &amqp.Delivery{Payload: payload})
		if reply := h.answer(t, st, payload, fuzzCBSReplyTo, h.cbsRx, "status-code"); reply != nil {
			switch code := reply.ApplicationProperties["status-code"].(int32); code {
			case 202, 400, 401, 403:
			default:
				t.Fatalf("put-token answered %d", code)
			}
		}
		h.c.mu.Lock()
		tokens := len(h.c.tokens)
		h.c.mu.Unlock()
		if tokens > 1000 {
			t.Fatalf("%d tokens on one connection", tokens)
		}
	})
}

func FuzzManagementRequest(f *testing.F) {
	h := newFrontFuzz(f)
	for _, s := range []struct {
		mode       uint8
		entity, op string
	}{
		{0, "work", opRenewLock}, {8, "work", opRenewLock}, {0, "work", opPeekMessage}, {16, "work/$DeadLetterQueue", opPeekMessage},
		{4, "work", "com.microsoft:schedule-message"}, {0, "nope", opPeekMessage}, {0, "work/$Transfer", opRenewLock},
		{0, "", ""}, {32, "WORK", opPeekMessage},
		{0, "fifo", opRenewSessionLock}, {0, "fifo", opGetSessionState}, {4, "fifo", opSetSessionState}, {0, "fifo", opGetSessions},
		{0, "fifo", opPeekMessage}, {0, "fifo", opReceiveBySeq}, {0, "work", opGetSessions},
	} {
		f.Add(s.mode, s.entity, s.op, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, int64(1), int32(3), []byte(nil))
	}
	f.Add(uint8(1), "work", "", []byte(nil), int64(0), int32(0), []byte{0x00, 0x53, 0x74, 0xc1, 0x01, 0x00})
	f.Add(uint8(2), "work", "", []byte(nil), int64(0), int32(0), []byte{0x00, 0x53, 0x77, 0xa1, 0x00})
	n := 0
	f.Fuzz(func(t *testing.T, mode uint8, entity, op string, tokens []byte, from int64, count int32, tail []byte) {
		n++
		var payload []byte
		switch mode % 3 {
		case 0:
			var opV any = op
			if mode&4 != 0 {
				opV = wire.Symbol(op)
			}
			var locks []wire.UUID
			for len(tokens) >= 16 && len(locks) < 6000 {
				locks = append(locks, wire.UUID(tokens[:16]))
				tokens = tokens[16:]
			}
			if mode&8 != 0 {
				locks = append(locks, h.held...)
			}
			args := wire.Map{}
			args.Set("lock-tokens", locks)
			args.Set("from-sequence-number", from)
			// Session operations' arguments, from the same inputs.
			args.Set("session-id", string(tail))
			args.Set("session-state", tail)
			args.Set("skip", count)
			args.Set("top", count)
			args.Set("last-updated-time", time.UnixMilli(from))
			args.Set("sequence-numbers", []int64{from})
			args.Set("receiver-settle-mode", uint32(count))
			if mode&16 != 0 {
				args.Set("message-count", int64(count)) // the wrong type
			} else {
				args.Set("message-count", count)
			}
			m := &wire.Message{ApplicationProperties: wire.Map{{Key: "operation", Value: opV}}, Value: args, HasValue: true,
				Properties: &wire.Properties{MessageID: messageIDOf(mode>>6, n), ReplyTo: fuzzMgmtReplyTo}}
			var err error
			if payload, err = m.Encoded(); err != nil {
				t.Skip()
			}
		case 1:
			payload = withProperties(t, messageIDOf(mode>>6, n), fuzzMgmtReplyTo, tail)
		default:
			payload = tail
		}
		if mode&32 != 0 {
			entity = "work"
			if mode&128 != 0 {
				entity = "fifo"
			}
		}
		st := h.c.management(context.Background(), entity, &amqp.Delivery{Payload: payload})
		reply := h.answer(t, st, payload, fuzzMgmtReplyTo, h.mgmtRx, "statusCode")
		if reply == nil {
			return
		}
		if reply.ApplicationProperties["statusCode"].(int32) != 200 {
			return
		}
		body, _ := reply.Value.(map[string]any)
		if msgs, ok := body["messages"].([]any); ok && len(msgs) > MaxPeek {
			t.Fatalf("a peek answered %d messages, more than %d", len(msgs), MaxPeek)
		}
		if ids, ok := body["sessions-ids"].([]string); ok && len(ids) > maxSessionPage {
			t.Fatalf("get-message-sessions answered %d sessions", len(ids))
		}
		if exp, ok := body["expirations"].([]time.Time); ok && len(exp) > 5000 {
			t.Fatalf("renew-lock renewed %d locks", len(exp))
		}
	})
}
