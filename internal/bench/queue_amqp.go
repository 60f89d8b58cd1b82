package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// amqpQueue is the AMQP transport of the queue benchmark: the real
// azservicebus client over AMQPS (CustomEndpoint, TLS trusting the
// server's CA, the namespace's name for SNI), with the administrator's
// Entra credential. Each worker has its own link (a Sender or a peek-lock
// Receiver); the links are spread round robin over the clients, one AMQP
// connection each.
type amqpQueue struct {
	q       *queueBench
	clients []*azservicebus.Client
	next    int // the client of the next link
}

// amqpCallTimeout bounds a send or a complete, as the REST transport's
// client timeout bounds a request: a call whose answer never comes (a
// lost connection the SDK has not noticed) is a failure, not a hang.
const amqpCallTimeout = time.Minute

// newAMQPQueue makes the clients; they connect with their first link.
func newAMQPQueue(ctx context.Context, q *queueBench) (*amqpQueue, error) {
	fqdn, tlsConfig, err := q.amqpEndpoint()
	if err != nil {
		return nil, err
	}
	a := &amqpQueue{q: q}
	for range q.opts.Connections {
		c, err := azservicebus.NewClient(fqdn, q.cred, &azservicebus.ClientOptions{
			CustomEndpoint: q.opts.AMQPAddr,
			TLSConfig:      tlsConfig,
			// A failure is counted, not retried; the next call recovers the link.
			RetryOptions: azservicebus.RetryOptions{MaxRetries: -1},
		})
		if err != nil {
			a.close(ctx)
			return nil, fmt.Errorf("the Service Bus client for %s at %s: %w", fqdn, q.opts.AMQPAddr, err)
		}
		a.clients = append(a.clients, c)
	}
	q.logf("AMQP: %d connection(s) to %s as %s.", len(a.clients), q.opts.AMQPAddr, fqdn)
	return a, nil
}

// amqpEndpoint is the namespace's host name, which the AMQPS listener
// is reached under (SNI and the AMQP open), and the TLS configuration
// that trusts the server's CA, for either AMQP client of the bench.
func (q *queueBench) amqpEndpoint() (string, *tls.Config, error) {
	local, err := q.bench.cred.Local()
	if err != nil {
		return "", nil, err
	}
	tr, err := local.Transport() // for the CA pool it trusts
	if err != nil {
		return "", nil, err
	}
	fqdn := strings.ToLower(q.nsName) + ".servicebus.windows.net"
	return fqdn, &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: fqdn, MinVersion: tls.VersionTLS12}, nil
}

func (a *amqpQueue) client() *azservicebus.Client {
	c := a.clients[a.next%len(a.clients)]
	a.next++
	return c
}

// newSender sends Batch messages per call: one SendMessage, or one
// SendMessageBatch of Batch messages.
func (a *amqpQueue) newSender() (sendFunc, error) {
	s, err := a.client().NewSender(benchQueueName, nil)
	if err != nil {
		return nil, err
	}
	n := a.q.opts.Batch
	return func(ctx context.Context) string {
		ctx, cancel := context.WithTimeout(ctx, amqpCallTimeout)
		defer cancel()
		if n == 1 {
			if err := s.SendMessage(ctx, &azservicebus.Message{Body: a.q.body()}, nil); err != nil {
				return amqpFailure(err)
			}
			return ""
		}
		b, err := s.NewMessageBatch(ctx, nil)
		if err != nil {
			return amqpFailure(err)
		}
		for range n {
			if err := b.AddMessage(&azservicebus.Message{Body: a.q.body()}, nil); err != nil {
				return "batch: " + amqpFailure(err)
			}
		}
		if err := s.SendMessageBatch(ctx, b, nil); err != nil {
			return amqpFailure(err)
		}
		return ""
	}, nil
}

// newReceiver peek-locks one message at a time (credit 1) and completes it.
func (a *amqpQueue) newReceiver() (receiveFunc, error) {
	r, err := a.client().NewReceiverForQueue(benchQueueName, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (time.Time, string) {
		rctx, cancel := context.WithTimeout(ctx, queueReceiveWait*time.Second)
		msgs, err := r.ReceiveMessages(rctx, 1, nil)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			return time.Time{}, "" // nothing within the long-poll
		case err != nil:
			return time.Time{}, amqpFailure(err)
		case len(msgs) == 0:
			return time.Time{}, ""
		}
		sent := sentTime(msgs[0].Body)
		cctx, cancel := context.WithTimeout(ctx, amqpCallTimeout)
		err = r.CompleteMessage(cctx, msgs[0], nil)
		cancel()
		if err != nil {
			return time.Time{}, "complete: " + amqpFailure(err)
		}
		if sent.IsZero() {
			sent = time.Now() // a message this run did not send: counted, no latency
		}
		return sent, ""
	}, nil
}

// close closes the clients and with them every link.
func (a *amqpQueue) close(ctx context.Context) {
	for _, c := range a.clients {
		_ = c.Close(ctx)
	}
}

// amqpFailure names a failure in few enough distinct words to count by:
// the Service Bus error code, or the error's first line, clipped.
func amqpFailure(err error) string {
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		return "amqp: " + string(sbErr.Code)
	}
	msg := oneLine(err.Error())
	if len(msg) > 100 {
		msg = msg[:100] + "..."
	}
	return "amqp: " + msg
}
