package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/go-amqp"
)

// goAMQPQueue is the queue benchmark's lean AMQP transport: the AMQP 1.0
// client library the Service Bus SDK itself is built on (go-amqp), used
// directly, the way the RabbitMQ comparison uses amqp091-go directly. It
// speaks what azservicebus speaks on the wire for these operations —
// SASL ANONYMOUS, a $cbs put-token of the administrator's Entra token,
// a sender link per sender, a peek-lock receiver link per receiver
// (receiver settle mode second, one credit) completing with accepted —
// without the SDK's per-call work (its retry loop, tracing, the message
// conversion, the link recovery), so that on a 2-core machine the broker
// is measured rather than the client sharing its CPU.
type goAMQPQueue struct {
	q     *queueBench
	conns []*amqp.Conn
	next  int // the connection of the next link
}

// cbsReplyAddress is the target address of each connection's $cbs reply
// link; the server answers put-token there.
const cbsReplyAddress = "bench-cbs-reply"

// newGoAMQPQueue dials the connections and puts the administrator's token
// on each for the bench queue.
func newGoAMQPQueue(ctx context.Context, q *queueBench) (*goAMQPQueue, error) {
	fqdn, tlsConfig, err := q.amqpEndpoint()
	if err != nil {
		return nil, err
	}
	tok, err := q.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{busScope}})
	if err != nil {
		return nil, fmt.Errorf("the administrator's token for Service Bus: %w", err)
	}
	g := &goAMQPQueue{q: q}
	for range q.opts.Connections {
		c, err := amqp.Dial(ctx, "amqps://"+q.opts.AMQPAddr, &amqp.ConnOptions{
			HostName:    fqdn,
			SASLType:    amqp.SASLTypeAnonymous(),
			TLSConfig:   tlsConfig,
			MaxSessions: 65535,
		})
		if err != nil {
			g.close(ctx)
			return nil, fmt.Errorf("connecting to %s as %s: %w", q.opts.AMQPAddr, fqdn, err)
		}
		g.conns = append(g.conns, c)
		if err := putToken(ctx, c, "amqps://"+fqdn+"/"+benchQueueName, tok.Token, tok.ExpiresOn); err != nil {
			g.close(ctx)
			return nil, err
		}
	}
	q.logf("AMQP (go-amqp): %d connection(s) to %s as %s.", len(g.conns), q.opts.AMQPAddr, fqdn)
	return g, nil
}

// putToken is the claims-based security exchange of Service Bus: a
// put-token request on $cbs, answered with status-code 200 or 202 on the
// reply link. The links are closed once answered.
func putToken(ctx context.Context, c *amqp.Conn, audience, token string, expires time.Time) error {
	s, err := c.NewSession(ctx, nil)
	if err != nil {
		return fmt.Errorf("$cbs session: %w", err)
	}
	defer s.Close(context.WithoutCancel(ctx))
	snd, err := s.NewSender(ctx, "$cbs", nil)
	if err != nil {
		return fmt.Errorf("$cbs sender: %w", err)
	}
	rcv, err := s.NewReceiver(ctx, "$cbs", &amqp.ReceiverOptions{TargetAddress: cbsReplyAddress, Credit: 1})
	if err != nil {
		return fmt.Errorf("$cbs receiver: %w", err)
	}
	replyTo := cbsReplyAddress
	req := &amqp.Message{
		Properties: &amqp.MessageProperties{MessageID: "put-token-1", ReplyTo: &replyTo},
		ApplicationProperties: map[string]any{
			"operation": "put-token", "type": "jwt", "name": audience, "expiration": expires.UTC(),
		},
		Value: token,
	}
	if err := snd.Send(ctx, req, nil); err != nil {
		return fmt.Errorf("put-token: %w", err)
	}
	reply, err := rcv.Receive(ctx, nil)
	if err != nil {
		return fmt.Errorf("put-token's reply: %w", err)
	}
	_ = rcv.AcceptMessage(ctx, reply)
	status, _ := reply.ApplicationProperties["status-code"].(int32)
	if status != 200 && status != 202 {
		return fmt.Errorf("put-token for %s answered %v: %v", audience, reply.ApplicationProperties["status-code"], reply.ApplicationProperties["status-description"])
	}
	return nil
}

func (g *goAMQPQueue) conn() *amqp.Conn {
	c := g.conns[g.next%len(g.conns)]
	g.next++
	return c
}

// newSender sends one message per call, or Batch messages back to back
// on its link before waiting for their settlements together.
func (g *goAMQPQueue) newSender() (sendFunc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), amqpCallTimeout)
	defer cancel()
	s, err := g.conn().NewSession(ctx, nil)
	if err != nil {
		return nil, err
	}
	snd, err := s.NewSender(ctx, benchQueueName, nil)
	if err != nil {
		return nil, err
	}
	n := g.q.opts.Batch
	return func(ctx context.Context) string {
		ctx, cancel := context.WithTimeout(ctx, amqpCallTimeout)
		defer cancel()
		if n == 1 {
			if err := snd.Send(ctx, amqp.NewMessage(g.q.body()), nil); err != nil {
				return goAMQPFailure(err)
			}
			return ""
		}
		receipts := make([]amqp.SendReceipt, 0, n)
		for range n {
			r, err := snd.SendWithReceipt(ctx, amqp.NewMessage(g.q.body()), nil)
			if err != nil {
				return goAMQPFailure(err)
			}
			receipts = append(receipts, r)
		}
		for _, r := range receipts {
			st, err := r.Wait(ctx)
			if err != nil {
				return goAMQPFailure(err)
			}
			if _, ok := st.(*amqp.StateAccepted); !ok {
				return fmt.Sprintf("amqp: send not accepted: %T", st)
			}
		}
		return ""
	}, nil
}

// newReceiver peek-locks one message at a time (settled by the receiver
// second) and completes it (accepted). It gives the link one credit when
// it starts waiting, as the SDK's ReceiveMessages(ctx, 1) does, not at
// attach: a receiver not yet waiting holds no message.
func (g *goAMQPQueue) newReceiver() (receiveFunc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), amqpCallTimeout)
	defer cancel()
	s, err := g.conn().NewSession(ctx, nil)
	if err != nil {
		return nil, err
	}
	rcv, err := s.NewReceiver(ctx, benchQueueName, &amqp.ReceiverOptions{
		Credit:         -1, // issued by hand, below
		SettlementMode: amqp.ReceiverSettleModeSecond.Ptr(),
	})
	if err != nil {
		return nil, err
	}
	credited := false // a credit is outstanding (a wait that timed out keeps it)
	return func(ctx context.Context) (time.Time, string) {
		if !credited {
			if err := rcv.IssueCredit(1); err != nil {
				return time.Time{}, goAMQPFailure(err)
			}
			credited = true
		}
		rctx, cancel := context.WithTimeout(ctx, queueReceiveWait*time.Second)
		m, err := rcv.Receive(rctx, nil)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			return time.Time{}, "" // nothing within the long-poll
		case err != nil:
			return time.Time{}, goAMQPFailure(err)
		}
		credited = false
		sent := sentTime(m.GetData())
		cctx, cancel := context.WithTimeout(ctx, amqpCallTimeout)
		err = rcv.AcceptMessage(cctx, m)
		cancel()
		if err != nil {
			return time.Time{}, "complete: " + goAMQPFailure(err)
		}
		if sent.IsZero() {
			sent = time.Now() // a message this run did not send: counted, no latency
		}
		return sent, ""
	}, nil
}

// close closes the connections and with them every session and link.
func (g *goAMQPQueue) close(context.Context) {
	for _, c := range g.conns {
		_ = c.Close()
	}
}

// goAMQPFailure names a failure by its AMQP condition where it has one.
func goAMQPFailure(err error) string {
	var le *amqp.LinkError
	if errors.As(err, &le) && le.RemoteErr != nil {
		return "amqp: " + string(le.RemoteErr.Condition)
	}
	var ce *amqp.ConnError
	if errors.As(err, &ce) && ce.RemoteErr != nil {
		return "amqp: " + string(ce.RemoteErr.Condition)
	}
	var se *amqp.SessionError
	if errors.As(err, &se) && se.RemoteErr != nil {
		return "amqp: " + string(se.RemoteErr.Condition)
	}
	msg := oneLine(err.Error())
	if len(msg) > 100 {
		msg = msg[:100] + "..."
	}
	return "amqp: " + msg
}
