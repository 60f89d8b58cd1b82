package server

import "testing"

// TestAMQPConnSlotsFollowTheBudget: with a connection budget, AMQPS takes
// as many connections as the budget allows (a 10,000-customer fan-out
// over AMQPS holds 20,000), not the fixed bound kept for servers without
// one.
func TestAMQPConnSlotsFollowTheBudget(t *testing.T) {
	s := &Server{conns: newConnBudget(25_000, nil)}
	if n := s.amqpConnSlots(); n != 25_000 {
		t.Fatalf("%d AMQPS slots under a budget of 25,000", n)
	}
	s = &Server{}
	if n := s.amqpConnSlots(); n != maxAMQPConns {
		t.Fatalf("%d AMQPS slots without a budget; want %d", n, maxAMQPConns)
	}
}
