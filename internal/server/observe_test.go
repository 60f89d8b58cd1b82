package server_test

// What operators watch the server with, driven through the real SDKs:
// the Prometheus metrics (every family present and moving under load), the
// request log lines in JSON (surface, tenant, principal, error code), and
// the health endpoints (/healthz alive, /readyz 503 once the store is
// closed).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// scrape is one scrape of /metrics, parsed by Prometheus's own parser
// (prometheus/common/expfmt): the families by name.
type scrape map[string]*dto.MetricFamily

// sum adds the values of name's series whose labels include every one of
// labels (each `key="value"`). name may be a histogram's "…_count", the
// count of its observations.
func (sc scrape) sum(name string, labels ...string) float64 {
	mf, count := sc[name], false
	if mf == nil {
		if base, ok := strings.CutSuffix(name, "_count"); ok && sc[base].GetType() == dto.MetricType_HISTOGRAM {
			mf, count = sc[base], true
		}
	}
	total := 0.0
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			ok = ok && have[k] == strings.Trim(v, `"`)
		}
		if !ok {
			continue
		}
		switch {
		case count:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// has reports whether name has any series.
func (sc scrape) has(name string) bool { return len(sc[name].GetMetric()) > 0 }

func parseScrape(t *testing.T, body []byte) scrape {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics exposition: %v", err)
	}
	return scrape(fams)
}

// scrapeMetrics reads /metrics on the HTTPS listener with the operator key.
func scrapeMetrics(t *testing.T, r *running) scrape {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+r.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+r.srv.Operator().Key)
	resp, err := r.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	return parseScrape(t, body)
}

// busREST sends one Service Bus REST request with the administrator's
// token for https://servicebus.azure.net.
func (w *busWorld) busREST(t *testing.T, method, path, body string) *http.Response {
	t.Helper()
	tok, err := w.adminCredential(t).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, "https://"+w.fqdn+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := w.r.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestMetricsMoveUnderLoad drives a little of everything and checks that
// every family is present, moved and documented; on both stores, whose
// queue depth, outbox backlog and latencies come from different SQL.
func TestMetricsMoveUnderLoad(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testMetricsMoveUnderLoad(t, "") })
	t.Run("postgres", func(t *testing.T) { testMetricsMoveUnderLoad(t, storetest.PostgresSchemaDSN(t)) })
}

func testMetricsMoveUnderLoad(t *testing.T, storeURL string) {
	logs := &browserOutput{} // a buffer safe for the server's goroutines
	w := newBusWorldConfig(t, server.Config{AMQPListen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", StoreURL: storeURL,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	r, tc := w.r, w.tc
	ctx := context.Background()
	before := scrapeMetrics(t, r)

	// Graph: a list, and an object that does not exist.
	tok, err := w.adminCredential(t).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	missing := uuid.NewString()
	for path, want := range map[string]int{"/v1.0/applications": 200, "/v1.0/applications/" + missing: 404} {
		req, _ := http.NewRequest("GET", "https://graph.microsoft.com"+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := r.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("Graph %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	// A token by client certificate (azidentity's certificate credential:
	// a private_key_jwt assertion), beside the secret ones above.
	certificateToken(t, w)

	// ARM: a resource group that does not exist, and a queue whose locks
	// last 5 s (the shortest Service Bus allows).
	if status, body := armCall(t, r, w.armCred, "GET", "/subscriptions/"+tc.SubscriptionID+"/resourceGroups/nowhere?api-version=2021-04-01", ""); status != 404 {
		t.Fatalf("ARM missing group: %d %s", status, body)
	}
	w.arm(t, "PUT", w.namespaceID()+"/queues/short", `{"properties":{"lockDuration":"PT5S","maxDeliveryCount":5}}`)

	// Key Vault, through azsecrets: refused before a data role, then set
	// and read.
	v, err := r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: tc.TenantID, Name: "metrics-kv", ResourceGroup: "rg"})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := azsecrets.NewClient("https://metrics-kv.vault.azure.net", w.adminCredential(t),
		&azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	value := "s3cret"
	var re *azcore.ResponseError
	if _, err := secrets.SetSecret(ctx, "db", azsecrets.SetSecretParameters{Value: &value}, nil); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("set without a data role: %v", err)
	}
	if err := r.srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: tc.TenantID, ID: uuid.NewString(), Scope: v.ResourceID,
		RoleDefinitionID: rbac.RoleKeyVaultSecretsOfficer, PrincipalID: tc.Admin.ServicePrincipalID,
		PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.SetSecret(ctx, "db", azsecrets.SetSecretParameters{Value: &value}, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := secrets.GetSecret(ctx, "db", "", nil); err != nil {
			t.Fatal(err)
		}
	}

	// Service Bus over REST: two sends, a receive-and-delete; a peek-lock
	// on "short" whose lock lapses, so that its complete is refused and the
	// message is delivered again.
	for range 2 {
		if resp := w.busREST(t, "POST", "/orders/messages", "hello"); resp.StatusCode != 201 {
			t.Fatalf("REST send: %d", resp.StatusCode)
		}
	}
	if resp := w.busREST(t, "DELETE", "/orders/messages/head?timeout=5", ""); resp.StatusCode != 200 {
		t.Fatalf("REST receive: %d", resp.StatusCode)
	}
	if resp := w.busREST(t, "POST", "/short/messages", "late"); resp.StatusCode != 201 {
		t.Fatalf("REST send to short: %d", resp.StatusCode)
	}
	locked := w.busREST(t, "POST", "/short/messages/head?timeout=5", "")
	var bp struct {
		LockToken      string
		SequenceNumber int64
	}
	if locked.StatusCode != 201 || json.Unmarshal([]byte(locked.Header.Get("BrokerProperties")), &bp) != nil || bp.LockToken == "" {
		t.Fatalf("REST peek-lock: %d %q", locked.StatusCode, locked.Header.Get("BrokerProperties"))
	}
	time.Sleep(5500 * time.Millisecond)
	if resp := w.busREST(t, "DELETE", "/short/messages/"+strconv.FormatInt(bp.SequenceNumber, 10)+"/"+bp.LockToken, ""); resp.StatusCode != 404 {
		t.Fatalf("complete after the lock lapsed: %d", resp.StatusCode)
	}
	if resp := w.busREST(t, "DELETE", "/short/messages/head?timeout=5", ""); resp.StatusCode != 200 {
		t.Fatalf("REST receive of the redelivered message: %d", resp.StatusCode)
	}

	// Service Bus over AMQP, through azservicebus: sends, a complete and a
	// dead-letter.
	_, sender, receiver := w.ordersClient(t)
	for _, body := range []string{"one", "two"} {
		mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(body)}, nil))
	}
	got := map[string]*azservicebus.ReceivedMessage{}
	for len(got) < 3 {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ms, err := receiver.ReceiveMessages(rctx, 3-len(got), nil)
		cancel()
		mustBus(t, err)
		for _, m := range ms {
			got[string(m.Body)] = m
		}
	}
	mustBus(t, receiver.CompleteMessage(ctx, got["one"], nil))
	mustBus(t, receiver.CompleteMessage(ctx, got["hello"], nil))
	mustBus(t, receiver.DeadLetterMessage(ctx, got["two"], nil))

	// A managed application whose notifications reach its publisher: the
	// outbox delivers them.
	// The publisher's endpoint is down at first (503, retry in a
	// second): the notifications wait in the backlog, then go.
	var hits, refused atomic.Int32
	var up atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			refused.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		hits.Add(1)
	}))
	defer hook.Close()
	sub := "/subscriptions/" + tc.SubscriptionID
	def := sub + "/resourceGroups/rg/providers/Microsoft.Solutions/applicationDefinitions/watched"
	if status, body := armCall(t, r, w.armCred, "PUT", def+"?api-version=2021-07-01", `{"location":"westeurope","properties":{"lockLevel":"ReadOnly","displayName":"Watched",`+
		`"authorizations":[{"principalId":"`+tc.Admin.ServicePrincipalID+`","roleDefinitionId":"b24988ac-6180-42a0-ab88-20f7382dd24c"}],`+
		`"notificationPolicy":{"notificationEndpoints":[{"uri":"`+hook.URL+`/hooks"}]},"deploymentSpec":{"vaults":[{"name":"kv{uniqueSuffix}"}]}}}`); status/100 != 2 {
		t.Fatalf("definition: %d %s", status, body)
	}
	if status, body := armCall(t, r, w.armCred, "PUT", sub+"/resourceGroups/rg/providers/Microsoft.Solutions/applications/watched1?api-version=2021-07-01",
		`{"location":"westeurope","kind":"ServiceCatalog","properties":{"applicationDefinitionId":"`+def+`","managedResourceGroupId":"`+sub+`/resourceGroups/mrg-watched1"}}`); status/100 != 2 {
		t.Fatalf("install: %d %s", status, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mid := scrapeMetrics(t, r)
		if refused.Load() > 0 && mid.sum("tenantbridge_outbox_attempts_total", `result="retry"`) > before.sum("tenantbridge_outbox_attempts_total", `result="retry"`) {
			if got := mid.sum("tenantbridge_outbox_pending_messages"); got < 1 {
				t.Errorf("outbox backlog with the endpoint down: %v, want at least 1", got)
			}
			if got := mid.sum("tenantbridge_outbox_oldest_pending_age_seconds"); got <= 0 {
				t.Errorf("oldest pending notification's age with the endpoint down: %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refused attempt counted as a retry in 30 s (%d refused)", refused.Load())
		}
	}
	up.Store(true)
	for deadline := time.Now().Add(30 * time.Second); hits.Load() < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the outbox delivered %d notifications in 30 s, want 2", hits.Load())
		}
	}

	after := scrapeMetrics(t, r)
	queue := func(name string) string {
		return `queue="` + strings.ToLower(w.namespaceID()+"/queues/"+name) + `"`
	}
	moved := []struct {
		what   string
		name   string
		labels []string
	}{
		{"Graph's 200", "tenantbridge_http_requests_total", []string{`surface="graph"`, `status="200"`}},
		{"Graph's 404 by code", "tenantbridge_http_requests_total", []string{`surface="graph"`, `status="404"`, `error_code="Request_ResourceNotFound"`}},
		{"ARM's 404 by code", "tenantbridge_http_requests_total", []string{`surface="arm"`, `status="404"`, `error_code="ResourceGroupNotFound"`}},
		{"Key Vault's 403 by code", "tenantbridge_http_requests_total", []string{`surface="keyvault"`, `status="403"`, `error_code="Forbidden"`}},
		{"Service Bus REST", "tenantbridge_http_requests_total", []string{`surface="servicebus"`, `status="201"`}},
		{"the token endpoint", "tenantbridge_http_requests_total", []string{`surface="token"`, `status="200"`}},
		{"request latency", "tenantbridge_http_request_duration_seconds_count", []string{`surface="graph"`}},
		{"tokens by grant and credential", "tenantbridge_tokens_issued_total", []string{`grant="client_credentials"`, `credential="secret"`}},
		{"tokens by certificate", "tenantbridge_tokens_issued_total", []string{`grant="client_credentials"`, `credential="certificate"`}},
		{"RBAC allowed", "tenantbridge_rbac_decisions_total", []string{`result="allowed"`}},
		{"RBAC denied", "tenantbridge_rbac_decisions_total", []string{`result="denied"`}},
		{"RBAC cache hits", "tenantbridge_rbac_decisions_total", []string{`cache="hit"`}},
		{"RBAC cache misses", "tenantbridge_rbac_decisions_total", []string{`cache="miss"`}},
		{"sends", "tenantbridge_servicebus_messages_sent_total", []string{queue("orders")}},
		{"receives", "tenantbridge_servicebus_messages_received_total", []string{queue("orders")}},
		{"redeliveries", "tenantbridge_servicebus_redeliveries_total", []string{queue("short")}},
		{"lock expiries", "tenantbridge_servicebus_lock_expired_total", []string{queue("short")}},
		{"lost locks", "tenantbridge_servicebus_lock_lost_total", []string{queue("short")}},
		{"dead-letters", "tenantbridge_servicebus_dead_lettered_total", []string{queue("orders")}},
		{"outbox attempts", "tenantbridge_outbox_attempts_total", []string{`result="delivered"`}},
		{"outbox retries", "tenantbridge_outbox_attempts_total", []string{`result="retry"`}},
		{"store latency of queue commits", "tenantbridge_store_operation_duration_seconds_count", []string{`op="ApplyQueueOps"`}},
		{"store latency of secrets", "tenantbridge_store_operation_duration_seconds_count", []string{`op="GetSecret"`}},
		{"store latency of transactions", "tenantbridge_store_operation_duration_seconds_count", []string{`op="InTx"`}},
		{"audit commit latency", "tenantbridge_audit_commit_duration_seconds_count", nil},
		{"AMQP connections", "tenantbridge_amqp_connections_total", nil},
		{"AMQP links", "tenantbridge_amqp_links_total", []string{`role="sender"`}},
		{"AMQP receiving links", "tenantbridge_amqp_links_total", []string{`role="receiver"`}},
		{"AMQP connections open", "tenantbridge_amqp_connections", nil},
		{"AMQP links open", "tenantbridge_amqp_links", []string{`role="receiver"`}},
		{"a queue's dead-letter depth", "tenantbridge_servicebus_queue_messages", []string{queue("orders"), `state="deadletter"`}},
		{"a queue's size", "tenantbridge_servicebus_queue_size_bytes", []string{queue("orders")}},
	}
	for _, m := range moved {
		if a, b := after.sum(m.name, m.labels...), before.sum(m.name, m.labels...); a <= b {
			t.Errorf("%s: %s%v did not move (%v, then %v)", m.what, m.name, m.labels, b, a)
		}
	}
	// Gauges read at the scrape.
	if got := after.sum("tenantbridge_servicebus_queue_messages", queue("orders"), `state="deadletter"`); got != 1 {
		t.Errorf("orders' dead-letter depth: %v, want 1", got)
	}
	if got := after.sum("tenantbridge_servicebus_queue_messages", queue("orders"), `state="active"`); got != 0 {
		t.Errorf("orders' active depth: %v, want 0", got)
	}
	// Every family is present; the ones that cannot move in a healthy
	// run (the outbox drained, its backlog seen above; no audit failure)
	// at least so. Every
	// tenantbridge family the server exports is one of these, and
	// docs/operations.md describes each.
	families := map[string]bool{"tenantbridge_outbox_pending_messages": true, "tenantbridge_outbox_oldest_pending_age_seconds": true,
		"tenantbridge_audit_failures_total": true}
	for _, m := range moved {
		name, _ := strings.CutSuffix(m.name, "_count")
		families[name] = true
	}
	docs, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range families {
		if !after.has(name) {
			t.Errorf("%s is missing", name)
		}
	}
	for name := range after {
		if !strings.HasPrefix(name, "tenantbridge_") {
			continue
		}
		if !families[name] {
			t.Errorf("%s is exported but not checked here", name)
		}
		if !bytes.Contains(docs, []byte("`"+name+"`")) {
			t.Errorf("%s is not in docs/operations.md", name)
		}
	}
	if !after.has("go_goroutines") || !after.has("process_resident_memory_bytes") {
		t.Errorf("Go's and the process's own metrics are missing")
	}
	if got := after.sum("tenantbridge_amqp_links", `role="receiver"`); got < 1 {
		t.Errorf("open receiving links: %v, want at least the test's receiver", got)
	}

	// The plain-HTTP metrics listener serves the same registry without a
	// key; the HTTPS /metrics refuses a wrong one.
	resp, err := http.Get("http://" + r.srv.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("tenantbridge_http_requests_total")) {
		t.Fatalf("metrics listener: %d %.200s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", "https://"+r.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tc.Admin.ClientSecret)
	if resp, err := r.client().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics with a tenant's secret as the key: %v %v", resp, err)
	}

	// The request log: JSON lines naming surface, tenant, principal and
	// error code; no trace id, tracing being off.
	if bytes.Contains(logs.Bytes(), []byte(`"trace_id"`)) {
		t.Errorf("a request log line has a trace_id with tracing off")
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(logs.Bytes())), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if rec["msg"] == "request" {
			lines = append(lines, rec)
		}
	}
	find := func(what string, match func(map[string]any) bool) {
		t.Helper()
		for _, l := range lines {
			if match(l) {
				return
			}
		}
		t.Errorf("no request log line for %s among %d", what, len(lines))
	}
	admin := func(l map[string]any) bool {
		return l["tenant"] == tc.TenantID && l["principal"] == tc.Admin.ServicePrincipalID
	}
	find("Graph's 404", func(l map[string]any) bool {
		return l["surface"] == "graph" && l["status"] == 404.0 && l["error_code"] == "Request_ResourceNotFound" && admin(l)
	})
	find("Key Vault's 403", func(l map[string]any) bool {
		return l["surface"] == "keyvault" && l["status"] == 403.0 && l["error_code"] == "Forbidden" && admin(l)
	})
	find("a token issued", func(l map[string]any) bool {
		return l["surface"] == "token" && l["status"] == 200.0 && l["error_code"] == "" && admin(l)
	})
	find("a Service Bus REST send", func(l map[string]any) bool {
		return l["surface"] == "servicebus" && l["status"] == 201.0 && admin(l)
	})
	find("a lapsed lock's complete", func(l map[string]any) bool {
		return l["surface"] == "servicebus" && l["status"] == 404.0 && l["error_code"] == "404"
	})
}

// certificateToken gets a Graph token for the administrator's application
// with a client certificate registered on it a moment before.
func certificateToken(t *testing.T, w *busWorld) {
	t.Helper()
	ctx := context.Background()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "metrics"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := w.r.srv.Directory()
	app, err := dir.ApplicationByAppID(ctx, w.tc.Admin.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := directory.NewKeyCredential(der, "metrics", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.AddApplicationKey(ctx, w.tc.TenantID, app.ID, kc); err != nil {
		t.Fatal(err)
	}
	cred, err := azidentity.NewClientCertificateCredential(w.tc.TenantID, w.tc.Admin.ClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
		t.Fatalf("token by certificate: %v", err)
	}
}

// A refused token request is counted and logged with Entra's AADSTS code.
func TestTokenRefusalCodes(t *testing.T) {
	logs := &browserOutput{} // a buffer safe for the server's goroutines
	r := start(t, server.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	tc := r.createTenant(t, "refused")
	resp, err := r.client().PostForm("https://login.microsoftonline.com/"+tc.TenantID+"/oauth2/v2.0/token", map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {tc.Admin.ClientID}, "client_secret": {"wrong"},
		"scope": {"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	sc := scrapeMetrics(t, r)
	// AADSTS7000215: Invalid client secret provided.
	if got := sc.sum("tenantbridge_http_requests_total", `surface="token"`, `status="401"`, `error_code="AADSTS7000215"`); got != 1 {
		t.Errorf("refused token requests with AADSTS7000215: %v", got)
	}
	if !strings.Contains(string(logs.Bytes()), `"error_code":"AADSTS7000215"`) {
		t.Errorf("no log line with AADSTS7000215")
	}
}

// /healthz answers while the process serves; /readyz answers 503 with a
// reason once the store is gone, on the HTTPS listener and the metrics
// listener alike.
func TestReadinessFollowsTheStore(t *testing.T) {
	r := start(t, server.Config{MetricsListen: "127.0.0.1:0"})
	get := func(url string, c *http.Client) (int, map[string]any) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		return resp.StatusCode, doc
	}
	bases := map[string]*http.Client{"https://" + r.addr: r.client(), "http://" + r.srv.MetricsAddr(): http.DefaultClient}
	for base, c := range bases {
		if status, doc := get(base+"/readyz", c); status != 200 || doc["status"] != "ok" {
			t.Fatalf("%s/readyz: %d %v", base, status, doc)
		}
	}
	if err := r.srv.Store().Close(); err != nil {
		t.Fatal(err)
	}
	for base, c := range bases {
		status, doc := get(base+"/readyz", c)
		checks, _ := doc["checks"].(map[string]any)
		if status != 503 || doc["status"] != "unavailable" || !strings.Contains(doc["reason"].(string), "store") || checks["store"] != "unreachable" {
			t.Errorf("%s/readyz with the store closed: %d %v", base, status, doc)
		}
		if status, doc := get(base+"/healthz", c); status != 200 || doc["status"] != "ok" {
			t.Errorf("%s/healthz with the store closed: %d %v", base, status, doc)
		}
	}
}
