package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// writeLock holds the SQLite database's write lock from a second
// connection, as a long transaction of another writer would: every write
// of the server then waits its busy_timeout and fails with SQLITE_BUSY.
type writeLock struct {
	db *sql.DB
	mu sync.Mutex
	tx *sql.Tx
}

func lockDatabase(t *testing.T, path string) *writeLock {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_txlock=immediate") // waits out a background write of the server
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err := db.BeginTx(context.Background(), nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	l := &writeLock{db: db, tx: tx}
	t.Cleanup(l.release)
	return l
}

func (l *writeLock) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tx != nil {
		_ = l.tx.Rollback()
		l.tx = nil
	}
}

// TestStoreBusyIsRetriable: while another connection holds SQLite's write
// lock past busy_timeout, every surface answers a write with its own
// retriable "busy" error and a Retry-After (never a 500), and an azcore
// client retries through it once the lock is let go.
func TestStoreBusyIsRetriable(t *testing.T) {
	restore := sqlite.SetBusyTimeoutForTest(100 * time.Millisecond)
	r := start(t, server.Config{})
	restore()
	ctx := context.Background()
	tc := r.createTenant(t, "busy")
	v, err := r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: tc.TenantID, Name: "busy-kv", ResourceGroup: "app"})
	if err != nil {
		t.Fatal(err)
	}
	err = r.srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: tc.TenantID, ID: "5b0c7a4e-8f0d-4a55-9d38-0d6f1f8a2c11",
		Scope: v.ResourceID, RoleDefinitionID: rbac.RoleKeyVaultSecretsOfficer, PrincipalID: tc.Admin.ServicePrincipalID,
		PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	c := r.client()
	cred, err := azidentity.NewClientSecretCredential(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	var armAccess azcore.AccessToken
	token := func(scope string) string {
		tk, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil {
			t.Fatal(err)
		}
		armAccess = tk
		return tk.Token
	}
	graphToken, kvToken, armToken := token("https://graph.microsoft.com/.default"), token("https://vault.azure.net/.default"), token("https://management.azure.com/.default")

	lock := lockDatabase(t, filepath.Join(r.dir, "tenantbridge.db"))

	do := func(method, rawURL, bearer, contentType, body string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	jsonCode := func(b []byte, path ...string) string {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return ""
		}
		var cur any = m
		for _, p := range path {
			mm, ok := cur.(map[string]any)
			if !ok {
				return ""
			}
			cur = mm[p]
		}
		s, _ := cur.(string)
		return s
	}
	check := func(surface string, resp *http.Response, body []byte, status int, code string) {
		t.Helper()
		if resp.StatusCode != status || code == "" || resp.Header.Get("Retry-After") != store.BusyRetryAfter {
			t.Errorf("%s: %d %q Retry-After %q, want %d with Retry-After %s: %s", surface, resp.StatusCode, code,
				resp.Header.Get("Retry-After"), status, store.BusyRetryAfter, body)
		}
	}

	// Resource Manager: 429 TooManyRequests.
	resp, body := do("PUT", "https://management.azure.com/subscriptions/"+tc.SubscriptionID+"/resourcegroups/busy-rg?api-version=2021-04-01",
		armToken, "application/json", `{"location":"westeurope"}`)
	check("arm", resp, body, http.StatusTooManyRequests, jsonCode(body, "error", "code"))
	if got := jsonCode(body, "error", "code"); got != "TooManyRequests" {
		t.Errorf("arm: code %q, want TooManyRequests", got)
	}

	// Graph: 503 serviceNotAvailable.
	resp, body = do("POST", "https://graph.microsoft.com/v1.0/applications", graphToken, "application/json", `{"displayName":"busy app"}`)
	check("graph", resp, body, http.StatusServiceUnavailable, jsonCode(body, "error", "code"))
	if got := jsonCode(body, "error", "code"); got != "serviceNotAvailable" {
		t.Errorf("graph: code %q, want serviceNotAvailable", got)
	}

	// Key Vault: 429 Throttled.
	resp, body = do("PUT", "https://busy-kv.vault.azure.net/secrets/s1?api-version=7.5", kvToken, "application/json", `{"value":"v"}`)
	check("vault", resp, body, http.StatusTooManyRequests, jsonCode(body, "error", "code"))
	if got := jsonCode(body, "error", "code"); got != "Throttled" {
		t.Errorf("vault: code %q, want Throttled", got)
	}

	// The token service: a token whose audit record cannot be written is
	// not issued: 503 temporarily_unavailable.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {tc.Admin.ClientID},
		"client_secret": {tc.Admin.ClientSecret}, "scope": {"https://management.azure.com/.default"}}
	resp, body = do("POST", "https://login.microsoftonline.com/"+tc.TenantID+"/oauth2/v2.0/token", "", "application/x-www-form-urlencoded", form.Encode())
	check("sts", resp, body, http.StatusServiceUnavailable, jsonCode(body, "error"))
	if got := jsonCode(body, "error"); got != "temporarily_unavailable" {
		t.Errorf("sts: error %q, want temporarily_unavailable", got)
	}

	// azcore retries the 429 after its Retry-After; the lock is let go as
	// soon as the first 429 has been seen, and the retry succeeds.
	var mu sync.Mutex
	var statuses []int
	tr := transportFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := c.Do(req)
		if err == nil {
			mu.Lock()
			statuses = append(statuses, resp.StatusCode)
			mu.Unlock()
			if resp.StatusCode == http.StatusTooManyRequests {
				lock.release()
			}
		}
		return resp, err
	})
	// The client uses the token got before the lock: a token request
	// writes an audit record, so it too would wait for the lock.
	gc, err := armresources.NewResourceGroupsClient(tc.SubscriptionID, fixedToken(armAccess),
		&azarm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: tr, Cloud: cloud.AzurePublic}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gc.CreateOrUpdate(ctx, "busy-rg", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		t.Fatalf("create resource group through the contention: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) != 2 || statuses[0] != http.StatusTooManyRequests || statuses[1] != http.StatusCreated {
		t.Errorf("statuses seen by the client: %v, want [429 201]", statuses)
	}
}

// fixedToken is a credential that returns one access token.
type fixedToken azcore.AccessToken

func (f fixedToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken(f), nil
}

// transportFunc is a policy.Transporter from a function.
type transportFunc func(*http.Request) (*http.Response, error)

func (f transportFunc) Do(req *http.Request) (*http.Response, error) { return f(req) }
