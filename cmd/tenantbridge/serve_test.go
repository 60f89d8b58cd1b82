package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/operator"
)

// serve --log-format json writes one JSON object a line, the request lines
// naming surface, tenant, principal and error code; --metrics-listen
// serves the metrics and health endpoints over plain HTTP.
func TestServeLogFormatAndMetricsListener(t *testing.T) {
	dir := t.TempDir()
	metricsAddr := freeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut lockedBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"--data", dir, "serve", "--listen", "127.0.0.1:0", "--amqp-listen", "",
			"--log-format", "json", "--metrics-listen", metricsAddr}, &out, &errOut, func(string) string { return "" })
	}()
	var resp *http.Response
	for i := 0; ; i++ {
		var err error
		if resp, err = http.Get("http://" + metricsAddr + "/readyz"); err == nil {
			break
		}
		if i > 500 {
			t.Fatalf("the metrics listener does not answer: %v %s", err, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"ok"`) {
		t.Fatalf("readyz: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(out.String(), "http://"+metricsAddr+"/metrics") {
		t.Errorf("serve does not print the metrics listener: %s", out.String())
	}

	// A request on the HTTPS listener: an operator call with a wrong key.
	var cred operator.Credential
	raw, err := os.ReadFile(filepath.Join(dir, operator.FileName))
	if err != nil || json.Unmarshal(raw, &cred) != nil {
		t.Fatalf("operator credential: %v", err)
	}
	caPEM, err := os.ReadFile(cred.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", cred.URL+"/_operator/v1/tenants", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stop()
	if code := <-served; code != 0 {
		t.Fatalf("serve exited %d: %s", code, errOut.String())
	}

	found := false
	for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "request" && rec["surface"] == "operator" && rec["status"] == 401.0 && rec["error_code"] == "Unauthorized" {
			_, hasTenant := rec["tenant"]
			_, hasPrincipal := rec["principal"]
			found = hasTenant && hasPrincipal
		}
	}
	if !found {
		t.Errorf("no JSON request line for the refused operator call:\n%s", errOut.String())
	}
	fails(t, dir, "log format", "serve", "--listen", "127.0.0.1:0", "--log-format", "xml")
	// A collector address that is no http(s) URL stops serve at once,
	// rather than tracing into nowhere.
	fails(t, dir, "OTLP endpoint", "serve", "--listen", "127.0.0.1:0", "--otlp-endpoint", "ftp://collector:4318")
	fails(t, dir, "OTLP endpoint", "serve", "--listen", "127.0.0.1:0", "--otlp-endpoint", "collector:4318")
}
