package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/bench"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// startBusServer runs a real tenantbridge with its AMQPS listener on
// loopback ports and returns its operator credential and AMQPS address.
func startBusServer(t *testing.T) (azclient.OperatorCredential, string) {
	t.Helper()
	cred, srv := startServerConfig(t, server.Config{AMQPListen: "127.0.0.1:0"})
	if srv.AMQPAddr() == "" {
		t.Fatal("the server has no AMQPS address")
	}
	return cred, srv.AMQPAddr()
}

// TestRunQueue: a tiny queue run over each transport against one real
// server set up through the public APIs only — REST, and AMQP through
// azservicebus with batches over two connections: messages sent and
// completed end to end, no errors, the tenant deleted. No speed is
// asserted.
func TestRunQueue(t *testing.T) {
	cred, amqpAddr := startBusServer(t)
	for _, tc := range []struct {
		name string
		opts bench.QueueOptions
	}{
		{"rest", bench.QueueOptions{Transport: bench.TransportREST}},
		{"amqp", bench.QueueOptions{Transport: bench.TransportAMQP, AMQPAddr: amqpAddr, Batch: 3, Connections: 2}},
		{"go-amqp", bench.QueueOptions{Transport: bench.TransportAMQP, AMQPClient: bench.AMQPClientGoAMQP, AMQPAddr: amqpAddr, Connections: 2}},
		{"go-amqp batch", bench.QueueOptions{Transport: bench.TransportAMQP, AMQPClient: bench.AMQPClientGoAMQP, AMQPAddr: amqpAddr, Batch: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			opts := tc.opts
			opts.Server, opts.Senders, opts.Receivers, opts.Duration, opts.Warmup, opts.MessageBytes, opts.Log =
				cred, 2, 3, time.Second, 200*time.Millisecond, 100, &log
			rep, err := bench.RunQueue(context.Background(), opts)
			if err != nil {
				t.Fatalf("RunQueue: %v\nlog:\n%s", err, log.String())
			}
			if rep.Completed == 0 || rep.Sent == 0 || rep.Rate <= 0 || rep.Failed != 0 || len(rep.Errors) != 0 {
				t.Errorf("%d sent, %d completed at %.1f/s, %d errors %v; want some, none", rep.Sent, rep.Completed, rep.Rate, rep.Failed, rep.Errors)
			}
			if opts.Batch > 1 && rep.Sent%opts.Batch != 0 {
				t.Errorf("%d messages sent, not whole batches of %d", rep.Sent, opts.Batch)
			}
			for name, l := range map[string]bench.Latency{"send": rep.Send, "end to end": rep.EndToEnd} {
				if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
					t.Errorf("%s latency %+v is not ordered", name, l)
				}
			}
			if rep.Transport != opts.Transport || !rep.TenantDeleted || rep.CleanupError != "" {
				t.Errorf("transport %q, tenant deleted = %v, cleanup error %q", rep.Transport, rep.TenantDeleted, rep.CleanupError)
			}
			var table, js bytes.Buffer
			if err := bench.PrintQueue(&table, rep, "table"); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"MSGS/S", "E2E P99", rep.Queue + " over " + opts.Transport} {
				if !strings.Contains(table.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, table.String())
				}
			}
			if err := bench.PrintQueue(&js, rep, "json"); err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back["Transport"] != opts.Transport || back["Completed"] != float64(rep.Completed) {
				t.Errorf("JSON %s: %v", js.String(), err)
			}
			if opts.AMQPClient == bench.AMQPClientGoAMQP && !strings.HasSuffix(rep.Protocol, ", go-amqp") {
				t.Errorf("protocol %q does not name go-amqp", rep.Protocol)
			}
			t.Logf("%s: %d sent, %d completed, %.1f/s, e2e p50 %s p99 %s", tc.name, rep.Sent, rep.Completed, rep.Rate, rep.EndToEnd.P50, rep.EndToEnd.P99)
		})
	}
}

// TestRunQueueRefusesBatchOverREST: batches are an AMQP option.
func TestRunQueueRefusesBatchOverREST(t *testing.T) {
	if _, err := bench.RunQueue(context.Background(), bench.QueueOptions{Batch: 2}); err == nil {
		t.Error("RunQueue accepted batches over REST")
	}
	if _, err := bench.RunQueue(context.Background(), bench.QueueOptions{Transport: "stomp"}); err == nil {
		t.Error("RunQueue accepted an unknown transport")
	}
}
