package publisher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

const bootstrap = "b00tstrap-s3cret"

// registrar serves a broker with the bootstrap secret (none when empty)
// at its own address, on the world's state file.
func (w *world) registrar(t testing.TB, secret string) (*publisher.Broker, string) {
	t.Helper()
	st, err := publisher.NewFileStore(w.statePath)
	must(t, err)
	b, err := publisher.New(publisher.Config{TenantID: w.pub.TenantID, Credential: w.pubCred, ClientOptions: w.opts,
		GroupID: w.groupID, NotificationSecret: sig, BootstrapSecret: secret, Subscriptions: []string{w.pub.SubscriptionID}, State: st,
		GroupBackoff: 10 * time.Millisecond, GroupAttempts: 2,
		Logger: slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	must(t, err)
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(srv.Close)
	return b, srv.URL + "/managedapp/register"
}

func callRegister(t testing.TB, url, auth string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestRegistrationEndpoint: the cloud's registration call, authenticated
// by the bootstrap secret, registers the installation (application,
// service principal, group membership, the client secret in the managed
// vault) with the identity the call names; a repeat is idempotent, and so
// is the Succeeded notification arriving after it; a wrong or missing
// secret is 401, a broker without one refuses everything, a malformed body
// is 400; a late repeat after the deletion does not revive it.
func TestRegistrationEndpoint(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	// The notifications of the install go nowhere: the call registers.
	w.mu.Lock()
	w.handler = http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusOK) })
	w.mu.Unlock()
	w.publish(t, "broker-offer", publisher.ModeSecret)
	appID, _ := w.install(t, "broker-offer", "reg1")
	_, app := w.arm(t, w.custCred, "GET", appID, nil)
	ident, _ := app["identity"].(map[string]any)
	principal, _ := ident["principalId"].(string)
	if principal == "" {
		t.Fatalf("the application has no identity: %v", app)
	}
	req := map[string]any{"applicationId": strings.ToUpper(appID),
		"plan":             map[string]any{"name": "standard", "publisher": w.pub.Domain, "product": "broker-offer", "version": "1.0.0"},
		"customerTenantId": w.cust.TenantID, "managedResourceGroupId": "/subscriptions/" + w.cust.SubscriptionID + "/resourceGroups/mrg-reg1",
		"identityPrincipalId": principal, "eventTime": time.Now().UTC().Format(time.RFC3339Nano)}
	body, _ := json.Marshal(req)

	// No bootstrap secret configured: refused, whatever the caller sends.
	b0, url0 := w.registrar(t, "")
	for _, auth := range []string{"", "Bootstrap ", "Bootstrap " + bootstrap} {
		if c, _ := callRegister(t, url0, auth, body); c != http.StatusServiceUnavailable {
			t.Errorf("unconfigured, %q: %d", auth, c)
		}
	}
	if w.installation(t, b0, appID) != nil {
		t.Fatal("an unconfigured broker registered")
	}

	b, url := w.registrar(t, bootstrap)
	for _, auth := range []string{"", "Bootstrap", "Bootstrap ", "Bootstrap wrong", "Bearer " + bootstrap, "Bootstrap " + bootstrap[:5], "Bootstrap " + bootstrap + "x"} {
		if c, _ := callRegister(t, url, auth, body); c != http.StatusUnauthorized {
			t.Errorf("auth %q: %d", auth, c)
		}
	}
	if w.installation(t, b, appID) != nil {
		t.Fatal("a refused call registered")
	}
	for _, bad := range []string{`not json`, `{}`, `{"applicationId":"/subscriptions/x"}`, string(body) + `{}`,
		strings.Replace(string(body), `"eventTime"`, `"extra":1,"eventTime"`, 1),
		strings.Replace(string(body), `"eventTime":"`, `"eventTime":"yesterday`, 1),
		`{"applicationId":"` + appID + `"}`,
		`{"applicationId":"` + appID + `","applicationDefinitionId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/x"}`} {
		if c, resp := callRegister(t, url, "Bootstrap "+bootstrap, []byte(bad)); c != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, c, resp)
		}
	}

	var first publisher.RegistrationResponse
	c, resp := callRegister(t, url, "Bootstrap "+bootstrap, body)
	if c != http.StatusOK {
		t.Fatalf("register: %d %s", c, resp)
	}
	must(t, json.Unmarshal([]byte(resp), &first))
	in := w.installation(t, b, appID)
	if in == nil || in.Status != "registered" || first.Outcome != publisher.OutcomeRegistered || first.ClientID != in.ClientID ||
		first.TenantID != w.pub.TenantID || first.CredentialMode != publisher.ModeSecret {
		t.Fatalf("registered %s, %+v", resp, in)
	}
	if in.IdentityObjectID != principal || in.CustomerTenantID != w.cust.TenantID || in.Key != publisher.NormalizeID(appID) {
		t.Errorf("identity %+v", in)
	}
	if _, err := w.graph.GetServicePrincipal(ctx, in.SPObjectID); err != nil {
		t.Fatal(err)
	}
	if !w.isMember(t, in.SPObjectID) {
		t.Fatal("the service principal is not in the group")
	}
	secret := w.vaultSecrets(t, appID)[publisher.DefaultSecretName]
	if secret == "" || strings.Contains(resp, secret) {
		t.Fatalf("the vault's secret %q, the answer %s", secret, resp)
	}

	// A repeat, and the Succeeded notification arriving late, change nothing.
	c, resp = callRegister(t, url, "Bootstrap "+bootstrap, body)
	var again publisher.RegistrationResponse
	must(t, json.Unmarshal([]byte(resp), &again))
	if c != http.StatusOK || again != first {
		t.Errorf("repeat: %d %s", c, resp)
	}
	w.mu.Lock()
	w.handler = b.Handler()
	w.mu.Unlock()
	ev := map[string]any{"eventType": "PUT", "applicationId": appID, "provisioningState": "Succeeded",
		"eventTime": time.Now().UTC().Format(time.RFC3339Nano), "plan": req["plan"]}
	if c, body := w.post(t, "?sig="+sig, ev); c != 200 || !strings.Contains(body, "registered") {
		t.Errorf("notification after the call: %d %s", c, body)
	}
	apps, err := w.graph.ListApplications(ctx, "displayName eq "+azclient.ODataString(in.DisplayName))
	must(t, err)
	got, err := w.graph.GetApplication(ctx, in.AppObjectID)
	must(t, err)
	if len(apps) != 1 || len(got.PasswordCredentials) != 1 || w.vaultSecrets(t, appID)[publisher.DefaultSecretName] != secret {
		t.Errorf("not idempotent: %d apps, %d passwords", len(apps), len(got.PasswordCredentials))
	}

	// Deleted: a late repeat of the call does not revive the installation.
	if c, _ := w.arm(t, w.custCred, "DELETE", appID, nil); c != 200 {
		t.Fatalf("delete %d", c)
	}
	waitFor(t, "deprovisioning", func() bool { return w.installation(t, b, appID).Status == "deleted" })
	if c, resp := callRegister(t, url, "Bootstrap "+bootstrap, body); c != http.StatusGone {
		t.Errorf("repeat after delete: %d %s", c, resp)
	}
	if w.installation(t, b, appID).Status != "deleted" {
		t.Error("revived")
	}
}
