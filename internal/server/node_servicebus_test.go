package server_test

// The real Service Bus SDK for JavaScript (@azure/service-bus), unmodified,
// against tenantbridge's AMQP front-end: test/node-servicebus holds its
// tests (node's built-in test runner; `npm ci --prefix test/node-servicebus`
// installs the pinned packages, as .ci/run does). This test starts a
// server with an AMQPS listener and an HTTPS proxy, sets up a namespace,
// a queue, a Data Owner and a listKeys connection string, and runs
// `node --test` there with those in its environment.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

const nodeServiceBusDir = "../../test/node-servicebus"

func TestNodeServiceBusSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeServiceBusDir, "node_modules", "@azure", "service-bus", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and %s/node_modules are needed (npm ci --prefix test/node-servicebus): %v", nodeServiceBusDir, err)
		}
		t.Skipf("node or %s/node_modules missing (npm ci --prefix test/node-servicebus): %v", nodeServiceBusDir, err)
	}

	w := newBusWorldConfig(t, server.Config{AMQPListen: "127.0.0.1:0", ProxyListen: "127.0.0.1:0"})
	cs := w.listenSendKeys(t, "app")["primaryConnectionString"].(string)
	w.arm(t, "PUT", w.namespaceID()+"/queues/fifo", `{"properties":{"requiresSession":true}}`)

	// The CA bundle the program trusts, as `tenantbridge env` writes it.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pem, err := os.ReadFile(w.r.srv.CA().CertFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "servicebus.test.mjs")
	cmd.Dir = nodeServiceBusDir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"NODE_EXTRA_CA_CERTS=" + ca,
		"HTTPS_PROXY=" + w.r.srv.Operator().ProxyURL,
		"TB_SB_FQDN=" + w.fqdn,
		"TB_SB_QUEUE=orders",
		"TB_SB_SESSION_QUEUE=fifo",
		"TB_SB_CONNECTION_STRING=" + cs,
		"TB_SB_AMQPS=" + w.r.srv.AMQPAddr(),
		"TB_TENANT_ID=" + w.tc.TenantID,
		"TB_CLIENT_ID=" + w.tc.Admin.ClientID,
		"TB_CLIENT_SECRET=" + w.tc.Admin.ClientSecret,
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node --test in %s: %v\n%s", nodeServiceBusDir, err, out.Bytes())
	}
	t.Logf("node --test:\n%s", out.Bytes())
}
