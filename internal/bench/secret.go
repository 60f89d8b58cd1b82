package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// Resource Manager and Key Vault constants of the secret-get benchmark.
const (
	armEndpoint           = "https://management.azure.com"
	armScope              = "https://management.azure.com/.default"
	vaultScope            = "https://vault.azure.net/.default"
	vaultAPIVersion       = "7.5"
	armGroupAPIVersion    = "2021-04-01"
	armVaultAPIVersion    = "2023-07-01"
	armRoleAPIVersion     = "2022-04-01"
	roleSecretsOfficer    = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7" // Key Vault Secrets Officer
	roleSecretsUser       = "4633458b-17de-408a-b874-0445c86b69e6" // Key Vault Secrets User
	benchResourceGroup    = "bench"
	benchSecretName       = "bench-secret"
	benchVaultLocation    = "westeurope"
	tokenRefreshMargin    = 5 * time.Minute
	secretGetSamplesPerS  = 50000
	secretGetMaxCapPerWkr = 1 << 20
)

// SecretGetOptions says how to run the secret-get benchmark.
type SecretGetOptions struct {
	// Server is how to reach the running server (its operator.json).
	Server azclient.OperatorCredential
	// Concurrency is the number of goroutines reading back to back; 0
	// means DefaultConcurrency.
	Concurrency int
	// Duration is the measured window; 0 means DefaultDuration.
	Duration time.Duration
	// Warmup is how long the goroutines read, uncounted, before the
	// window; 0 for none.
	Warmup time.Duration
	// Keep leaves the bench tenant (and its vault) in place.
	Keep bool
	// TenantName names the bench tenant; empty for "bench" and random digits.
	TenantName string
	// Log receives progress lines; nil for none.
	Log io.Writer
}

// SecretGetReport is the result of RunSecretGet.
type SecretGetReport struct {
	Server      string // the server's base URL (its listen address)
	Tenant      string
	TenantID    string
	Vault       string // the vault's URI, https://NAME.vault.azure.net
	Secret      string // the secret's name
	Concurrency int
	Duration    time.Duration
	Warmup      time.Duration
	Protocol    string
	ClientCPUs  int
	// MemoryAtRest is the server's memory before the bench, MemoryAfter
	// after the load (before cleanup); MemoryNote says why they are missing.
	MemoryAtRest *ServerMemory
	MemoryAfter  *ServerMemory
	MemoryNote   string
	// Window is the measured time, Reads the authorized reads (HTTP 200
	// with the secret's value) in it, Failed the others, Errors those by
	// Key Vault error code and status (or transport failure).
	Window time.Duration
	Reads  int
	Failed int
	Errors map[string]int
	// Rate is Reads per second of Window.
	Rate    float64
	Latency Latency
	// Connections is how many connections were opened during the window.
	Connections int64
	// ClientCPU is the CPU time the load generator used during the window.
	ClientCPU time.Duration
	// TokenRefreshes counts the bearer tokens fetched after the first
	// (the run outlived one).
	TokenRefreshes int
	Notes          []string
	Interrupted    bool
	TenantDeleted  bool
	CleanupError   string
}

// RunSecretGet measures Key Vault secret reads through the public APIs: it
// creates a throwaway tenant (operator API), a resource group and a vault
// (Resource Manager), assigns the tenant's administrator Key Vault Secrets
// Officer to store one secret (data plane) and then Key Vault Secrets User
// alone, and has Concurrency goroutines read that secret back to back with
// one bearer token (refreshed if the run outlives it) over one kept-alive
// transport. It deletes the tenant (unless Keep) and reports. When ctx ends during
// the load what was measured is reported with Interrupted set, and the
// tenant is still deleted.
func RunSecretGet(ctx context.Context, opts SecretGetOptions) (rep SecretGetReport, err error) {
	topts := TokenOptions{Server: opts.Server, Kinds: []Kind{KindSecret}, Concurrency: opts.Concurrency, Duration: opts.Duration,
		Warmup: opts.Warmup, Log: opts.Log}.withDefaults()
	rep = SecretGetReport{Concurrency: topts.Concurrency, Duration: topts.Duration, Warmup: topts.Warmup, ClientCPUs: runtime.GOMAXPROCS(0),
		Secret: benchSecretName}
	var run tenantRun
	var sb *secretBench
	err = runInTenant(ctx, topts, opts.TenantName, opts.Keep, "-kv", &run, func(a *armAdmin) armBench {
		sb = &secretBench{armAdmin: a}
		return sb
	}, func() string { return rep.Vault }, func(ctx context.Context) {
		rep.Vault = sb.vaultURI
		sb.measure(ctx, &rep)
	})
	rep.Server, rep.Tenant, rep.TenantID, rep.Protocol, rep.MemoryNote, rep.CleanupError = run.Server, run.Tenant, run.TenantID, run.Protocol, run.MemoryNote, run.CleanupError
	rep.MemoryAtRest, rep.MemoryAfter, rep.TenantDeleted = run.MemoryAtRest, run.MemoryAfter, run.TenantDeleted
	return rep, err
}

// global is the vault: its name is global.
func (s *secretBench) global() (kind, name, id, apiVersion string) {
	return "vault", s.vaultName, s.vaultID, armVaultAPIVersion
}

// secretBench is one secret-get run's state.
type secretBench struct {
	*armAdmin
	vaultName string
	vaultID   string // ARM resource id
	vaultURI  string // https://NAME.vault.azure.net
	secretURL string // …/secrets/NAME/?api-version=7.5

	auth      atomic.Pointer[string] // "Bearer …" for the vault
	expires   time.Time
	refreshes int
}

// setup makes the vault, the grants and the secret, gets the vault token
// and checks with one read that it is authorized.
func (s *secretBench) setup(ctx context.Context, vaultName string) error {
	ten := s.tenant
	sub := "/subscriptions/" + ten.SubscriptionID
	rg := sub + "/resourceGroups/" + benchResourceGroup
	s.logf("Creating resource group %s and vault %s through Resource Manager...", benchResourceGroup, vaultName)
	if _, err := s.arm(ctx, http.MethodPut, rg, armGroupAPIVersion, map[string]any{"location": benchVaultLocation}, nil); err != nil {
		return fmt.Errorf("creating resource group %s: %w", benchResourceGroup, err)
	}
	var v struct {
		ID         string `json:"id"`
		Properties struct {
			VaultURI string `json:"vaultUri"`
		} `json:"properties"`
	}
	body := map[string]any{"location": benchVaultLocation, "properties": map[string]any{
		"tenantId": ten.TenantID, "sku": map[string]string{"family": "A", "name": "standard"}, "enableRbacAuthorization": true}}
	if _, err := s.arm(ctx, http.MethodPut, rg+"/providers/Microsoft.KeyVault/vaults/"+vaultName, armVaultAPIVersion, body, &v); err != nil {
		return fmt.Errorf("creating vault %s: %w", vaultName, err)
	}
	if v.ID == "" {
		return fmt.Errorf("creating vault %s: Resource Manager answered without the vault's id", vaultName)
	}
	s.vaultName, s.vaultID = vaultName, v.ID
	s.vaultURI = strings.TrimRight(v.Properties.VaultURI, "/")
	if s.vaultURI == "" {
		s.vaultURI = "https://" + vaultName + ".vault.azure.net"
	}

	// Key Vault Secrets Officer only to store the secret; the reads are
	// authorized by Key Vault Secrets User alone.
	officer, err := s.assignRole(ctx, s.vaultID, roleSecretsOfficer, "Key Vault Secrets Officer")
	if err != nil {
		return err
	}
	if _, err := s.assignRole(ctx, s.vaultID, roleSecretsUser, "Key Vault Secrets User"); err != nil {
		return err
	}
	if err := s.fetchToken(ctx); err != nil {
		return err
	}
	s.secretURL = s.vaultURI + "/secrets/" + url.PathEscape(benchSecretName) + "/?api-version=" + vaultAPIVersion
	setURL := s.vaultURI + "/secrets/" + url.PathEscape(benchSecretName) + "?api-version=" + vaultAPIVersion
	if status, raw, err := s.call(ctx, http.MethodPut, setURL, *s.auth.Load(), map[string]string{"value": "tenantbridge bench " + uuid.NewString()}); err != nil {
		return fmt.Errorf("storing the bench secret: %s", azclient.Describe(err))
	} else if status != http.StatusOK {
		return fmt.Errorf("storing the bench secret: %s", serviceError(status, raw))
	}
	if _, err := s.arm(ctx, http.MethodDelete, officer, armRoleAPIVersion, nil, nil); err != nil {
		return fmt.Errorf("removing Key Vault Secrets Officer after storing the secret: %w", err)
	}
	status, raw, err := s.call(ctx, http.MethodGet, s.secretURL, *s.auth.Load(), nil)
	switch {
	case err != nil:
		return fmt.Errorf("reading the bench secret: %s", azclient.Describe(err))
	case status != http.StatusOK || !bytes.Contains(raw, valueField):
		return fmt.Errorf("reading the bench secret with Key Vault Secrets User: %s", serviceError(status, raw))
	}
	s.logf("The administrator %s reads %s/secrets/%s as Key Vault Secrets User.", s.principal, s.vaultURI, benchSecretName)
	return nil
}

// fetchToken gets the admin's token for Key Vault (client credentials).
func (s *secretBench) fetchToken(ctx context.Context) error {
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	if err != nil {
		return fmt.Errorf("the administrator's token for Key Vault: %s", azclient.Describe(err))
	}
	h := "Bearer " + tok.Token
	s.auth.Store(&h)
	s.expires = tok.ExpiresOn
	return nil
}

// keepTokenFresh replaces the token before it expires, until ctx ends.
func (s *secretBench) keepTokenFresh(ctx context.Context) {
	for {
		wait := time.Until(s.expires.Add(-tokenRefreshMargin))
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		old := s.auth.Load()
		if err := s.fetchToken(ctx); err != nil {
			if ctx.Err() == nil {
				s.logf("refreshing the Key Vault token: %s", err)
			}
			continue
		}
		if s.auth.Load() != old && *s.auth.Load() != *old {
			s.refreshes++
		}
	}
}

var valueField = []byte(`"value"`)

// get reads the secret once: failure is "" for an authorized read with
// the value, else the key it is counted under.
func (s *secretBench) get(ctx context.Context, buf *bytes.Buffer) (failure string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.secretURL, nil)
	if err != nil {
		return "client: " + err.Error()
	}
	req.Header["Authorization"] = []string{*s.auth.Load()}
	req.Header["Accept"] = []string{"application/json"}
	resp, failure := s.load.exchange(req, buf)
	switch {
	case failure != "":
		return failure
	case resp.StatusCode != http.StatusOK:
		return serviceError(resp.StatusCode, buf.Bytes())
	case !bytes.Contains(buf.Bytes(), valueField):
		return "HTTP 200 without the secret's value"
	}
	return ""
}

// run has n workers read back to back for d (see target.run).
func (s *secretBench) run(ctx context.Context, n int, d time.Duration, capHint int) phase {
	return s.load.runWith(ctx, n, d, staticBody(nil), capHint, func(ctx context.Context, _ []byte, buf *bytes.Buffer) string {
		return s.get(ctx, buf)
	})
}

// measure runs the warm-up and the window, keeping the token fresh.
func (s *secretBench) measure(ctx context.Context, rep *SecretGetReport) {
	rctx, stop := context.WithCancel(ctx)
	refreshed := make(chan struct{})
	go func() { s.keepTokenFresh(rctx); close(refreshed) }()
	defer func() {
		stop()
		<-refreshed
		rep.TokenRefreshes = s.refreshes
		if s.refreshes > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the Key Vault token was refreshed %d times during the run", s.refreshes))
		}
	}()
	n := s.opts.Concurrency
	if s.opts.Warmup > 0 {
		s.logf("secret-get: warming up for %s...", s.opts.Warmup)
		s.run(ctx, n, s.opts.Warmup, 1024)
		if ctx.Err() != nil {
			rep.Interrupted = true
			rep.Notes = append(rep.Notes, "interrupted during the warm-up: nothing measured")
			return
		}
	}
	s.logf("secret-get: measuring for %s at concurrency %d...", s.opts.Duration, n)
	capHint := int(min(s.opts.Duration.Seconds()*secretGetSamplesPerS/float64(n), secretGetMaxCapPerWkr)) + 256
	cpu0, cpuOK := processCPU()
	p := s.run(ctx, n, s.opts.Duration, capHint)
	if cpu1, ok := processCPU(); ok && cpuOK {
		rep.ClientCPU = cpu1 - cpu0
	}
	rep.Window, rep.Reads, rep.Failed, rep.Errors, rep.Connections = p.elapsed, len(p.samples), p.failed, p.errors, p.dials
	if p.elapsed > 0 {
		rep.Rate = float64(len(p.samples)) / p.elapsed.Seconds()
	}
	rep.Latency = summarize(p.samples)
	if p.interrupted {
		rep.Interrupted = true
		rep.Notes = append(rep.Notes, fmt.Sprintf("interrupted after %s of %s", p.elapsed.Round(time.Millisecond), s.opts.Duration))
	}
	s.logf("secret-get: %d reads in %s (%.1f/s), %d errors", rep.Reads, p.elapsed.Round(time.Millisecond), rep.Rate, rep.Failed)
}

type secretGetJSON struct {
	Server         string         `json:"server"`
	Tenant         string         `json:"tenant,omitempty"`
	TenantID       string         `json:"tenantId,omitempty"`
	Vault          string         `json:"vault,omitempty"`
	Secret         string         `json:"secret"`
	Concurrency    int            `json:"concurrency"`
	DurationMs     float64        `json:"durationMs"`
	WarmupMs       float64        `json:"warmupMs"`
	Protocol       string         `json:"protocol,omitempty"`
	ClientCPUs     int            `json:"clientCpus"`
	MemoryAtRest   *ServerMemory  `json:"serverMemoryAtRest,omitempty"`
	MemoryAfter    *ServerMemory  `json:"serverMemoryAfter,omitempty"`
	MemoryNote     string         `json:"serverMemoryNote,omitempty"`
	WindowMs       float64        `json:"windowMs"`
	ReadsPerSec    float64        `json:"readsPerSecond"`
	Reads          int            `json:"reads"`
	Failed         int            `json:"errors"`
	Errors         map[string]int `json:"errorsBy,omitempty"`
	Latency        *Latency       `json:"latency,omitempty"`
	Connections    int64          `json:"connectionsOpened"`
	ClientCPU      float64        `json:"clientCpuMs"`
	TokenRefreshes int            `json:"tokenRefreshes"`
	Notes          []string       `json:"notes,omitempty"`
	Interrupted    bool           `json:"interrupted,omitempty"`
	TenantDeleted  bool           `json:"tenantDeleted"`
	CleanupError   string         `json:"cleanupError,omitempty"`
}

// MarshalJSON writes the report with durations in milliseconds.
func (r SecretGetReport) MarshalJSON() ([]byte, error) {
	v := secretGetJSON{Server: r.Server, Tenant: r.Tenant, TenantID: r.TenantID, Vault: r.Vault, Secret: r.Secret,
		Concurrency: r.Concurrency, DurationMs: ms(r.Duration), WarmupMs: ms(r.Warmup), Protocol: r.Protocol, ClientCPUs: r.ClientCPUs,
		MemoryAtRest: r.MemoryAtRest, MemoryAfter: r.MemoryAfter, MemoryNote: r.MemoryNote, WindowMs: ms(r.Window),
		ReadsPerSec: round1(r.Rate), Reads: r.Reads, Failed: r.Failed, Errors: r.Errors, Connections: r.Connections,
		ClientCPU: ms(r.ClientCPU), TokenRefreshes: r.TokenRefreshes, Notes: r.Notes, Interrupted: r.Interrupted,
		TenantDeleted: r.TenantDeleted, CleanupError: r.CleanupError}
	if r.Reads > 0 {
		v.Latency = &r.Latency
	}
	return json.Marshal(v)
}

// PrintSecretGet writes the report as a table ("" or "table") or as JSON
// ("json", durations in milliseconds).
func PrintSecretGet(w io.Writer, r SecretGetReport, format string) error {
	return printAs(w, r, format, func() error { return printSecretGetTable(w, r) })
}

func printSecretGetTable(w io.Writer, r SecretGetReport) error {
	tw, line := newTable(w)
	head := runHead{Server: r.Server, Protocol: r.Protocol, Tenant: r.Tenant, TenantID: r.TenantID, CleanupError: r.CleanupError,
		TenantDeleted: r.TenantDeleted, Interrupted: r.Interrupted, Concurrency: r.Concurrency, ClientCPUs: r.ClientCPUs,
		Warmup: r.Warmup, Duration: r.Duration, MemoryAtRest: r.MemoryAtRest, MemoryAfter: r.MemoryAfter,
		MemoryNote: r.MemoryNote}
	if r.Vault != "" {
		head.Subject = []string{"secret", r.Vault + "/secrets/" + r.Secret + " (Key Vault Secrets User)"}
	}
	head.write(line)
	line("READS/S", "COUNT", "ERRORS", "P50", "P90", "P99", "MAX", "CONNS", "CLIENT CPU")
	lat, cpu := measuredCells(r.Reads, r.Latency, r.ClientCPU, r.Window)
	line(append(append([]string{fmt.Sprintf("%.1f", r.Rate), fmt.Sprint(r.Reads), fmt.Sprint(r.Failed)}, lat...), fmt.Sprint(r.Connections), cpu)...)
	if err := tw.Flush(); err != nil {
		return err
	}
	var extra []string
	for _, code := range slices.Sorted(maps.Keys(r.Errors)) {
		extra = append(extra, fmt.Sprintf("%d × %s", r.Errors[code], code))
	}
	extra = append(extra, r.Notes...)
	printNotes(w, extra)
	return nil
}
