package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// TestManagedAppNotificationsDelivered: a publisher's notification
// endpoint that is down when an application is installed receives every
// lifecycle event once it is back, in order, with its sig kept; the
// publisher reads the delivery log through Resource Manager.
func TestManagedAppNotificationsDelivered(t *testing.T) {
	r := start(t, server.Config{})
	tc := r.createTenant(t, "publisher")

	var mu sync.Mutex
	var got []map[string]any
	var paths []string
	down := true
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var ev map[string]any
		b, _ := io.ReadAll(req.Body)
		_ = json.Unmarshal(b, &ev)
		got = append(got, ev)
		paths = append(paths, req.URL.RequestURI())
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()

	c := r.client()
	tok := armToken(t, c, tc)
	put := func(path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, b)
		}
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		return doc
	}
	sub := "/subscriptions/" + tc.SubscriptionID
	put(sub+"/resourceGroups/defs", `{"location":"westeurope"}`)
	put(sub+"/resourceGroups/apps", `{"location":"westeurope"}`)
	def := sub + "/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/broker"
	put(def, `{"location":"westeurope","properties":{"lockLevel":"ReadOnly","displayName":"Broker","authorizations":[{"principalId":"`+
		tc.Admin.ServicePrincipalID+`","roleDefinitionId":"b24988ac-6180-42a0-ab88-20f7382dd24c"}],`+
		`"notificationPolicy":{"notificationEndpoints":[{"uri":"`+hook.URL+`/hooks?sig=s3cret"}]},"deploymentSpec":{"vaults":[{"name":"kv{uniqueSuffix}"}]}}}`)
	app := put(sub+"/resourceGroups/apps/providers/Microsoft.Solutions/applications/broker1", `{"location":"westeurope","kind":"ServiceCatalog",`+
		`"identity":{"type":"SystemAssigned"},"properties":{"applicationDefinitionId":"`+def+`","managedResourceGroupId":"`+sub+`/resourceGroups/mrg-broker1"}}`)
	if p, _ := app["properties"].(map[string]any); p["provisioningState"] != "Succeeded" {
		t.Fatalf("install: %v", app)
	}

	// The endpoint comes back; the deliverer retries with its backoff
	// (5 s at first) and delivers both events in order.
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	down = false
	mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d events in 30 s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if got[0]["provisioningState"] != "Accepted" || got[1]["provisioningState"] != "Succeeded" || got[0]["eventType"] != "PUT" ||
		!strings.HasSuffix(got[1]["applicationId"].(string), "/applications/broker1") || got[1]["applicationDefinitionId"] == nil {
		t.Fatalf("events: %v", got)
	}
	if paths[0] != "/hooks/resource?sig=s3cret" {
		t.Fatalf("delivered to %q", paths[0])
	}
}

// armToken is the tenant administrator's token for Resource Manager.
func armToken(t *testing.T, c *http.Client, tc tenantCreated) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {tc.Admin.ClientID}, "client_secret": {tc.Admin.ClientSecret},
		"scope": {"https://management.azure.com/.default"}}
	resp, err := c.PostForm("https://login.microsoftonline.com/"+tc.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("ARM token: %d %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}
