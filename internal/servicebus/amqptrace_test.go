package servicebus

import (
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// The producer's trace context is read from traceparent, or else from
// Diagnostic-Id (where the .NET and JavaScript SDKs put it); a malformed
// one, a non-string one or none gives no parent.
func TestProducerContext(t *testing.T) {
	const (
		a = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		b = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	for _, c := range []struct {
		name  string
		props wire.Map
		trace string // "" for none
	}{
		{"traceparent", wire.Map{{Key: "traceparent", Value: a}}, "0af7651916cd43dd8448eb211c80319c"},
		{"Diagnostic-Id", wire.Map{{Key: "Diagnostic-Id", Value: b}}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"traceparent wins", wire.Map{{Key: "Diagnostic-Id", Value: b}, {Key: "traceparent", Value: a}}, "0af7651916cd43dd8448eb211c80319c"},
		{"malformed", wire.Map{{Key: "traceparent", Value: "00-zz-yy-01"}}, ""},
		{"all zero", wire.Map{{Key: "traceparent", Value: "00-00000000000000000000000000000000-0000000000000000-01"}}, ""},
		{"not a string", wire.Map{{Key: "traceparent", Value: int64(7)}}, ""},
		{"symbol key", wire.Map{{Key: wire.Symbol("traceparent"), Value: a}}, ""},
		{"none", nil, ""},
	} {
		sc := producerContext(&wire.Message{ApplicationProperties: c.props})
		switch {
		case c.trace == "" && sc.IsValid():
			t.Errorf("%s: a parent %v", c.name, sc.TraceID())
		case c.trace != "" && (!sc.IsValid() || !sc.IsRemote() || sc.TraceID().String() != c.trace):
			t.Errorf("%s: parent %v (valid %v), want trace %s", c.name, sc.TraceID(), sc.IsValid(), c.trace)
		}
	}
}
