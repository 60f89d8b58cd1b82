package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// clientAssertionType is RFC 7523's client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// adminClient is the bench tenant's bootstrap administrator: Graph through
// azclient, and its token for the Graph calls azclient does not have.
type adminClient struct {
	graph *azclient.Graph
	cred  azcore.TokenCredential
}

// setupTenant registers the bench application and its service principal
// in the new tenant, as the tenant's administrator, through Graph.
func (b *bench) setupTenant(ctx context.Context, ten *azclient.Tenant) error {
	b.tenant = ten
	if ten.Admin == nil || ten.Admin.ClientID == "" || ten.Admin.ClientSecret == "" {
		return errors.New("the operator API created the bench tenant without an administrator credential")
	}
	local, err := b.cred.Local()
	if err != nil {
		return err
	}
	opts, err := local.ClientOptions()
	if err != nil {
		return err
	}
	cred, err := azclient.NewClientSecretCredential(b.authority, ten.TenantID, ten.Admin.ClientID, ten.Admin.ClientSecret, opts)
	if err != nil {
		return err
	}
	g, err := azclient.NewGraph(azclient.GraphEndpoint, cred, &opts)
	if err != nil {
		return err
	}
	b.admin = &adminClient{graph: g, cred: cred}
	b.logf("Registering the bench application...")
	if b.app, err = g.CreateApplication(ctx, azclient.Application{DisplayName: "tenantbridge bench"}); err != nil {
		return fmt.Errorf("registering the bench application through Graph: %s", azclient.Describe(err))
	}
	if _, err := g.CreateServicePrincipal(ctx, b.app.AppID); err != nil {
		return fmt.Errorf("creating the bench application's service principal: %s", azclient.Describe(err))
	}
	b.endpoint = b.authority + "/" + url.PathEscape(ten.TenantID) + "/oauth2/v2.0/token"
	b.load.url = b.endpoint
	return nil
}

// unsupported is the error of a kind the server cannot do.
func unsupported(kind Kind, format string, args ...any) error {
	return fmt.Errorf("the server does not support %s credentials yet: %s", kind, fmt.Sprintf(format, args...))
}

// setupKind gives the application the kind's credential, checks with one
// request that the token service accepts it, and returns the source of
// the kind's request bodies.
func (b *bench) setupKind(ctx context.Context, kind Kind, res *KindResult) (bodySource, error) {
	prefix := b.formPrefix()
	switch kind {
	case KindSecret:
		res.Mode = "client_secret"
		pw, err := b.admin.graph.AddPassword(ctx, b.app.ID, azclient.PasswordCredential{DisplayName: "bench"})
		if err != nil {
			return nil, fmt.Errorf("adding a client secret through Graph: %s", azclient.Describe(err))
		}
		body := []byte(prefix + "&client_secret=" + url.QueryEscape(pw.SecretText))
		if err := b.probe(ctx, kind, body); err != nil {
			return nil, err
		}
		return staticBody(body), nil

	case KindCertificate:
		res.Mode = "signed per request"
		if b.opts.Presign {
			res.Mode = "presigned"
		}
		cert, err := newCertificate(time.Now())
		if err != nil {
			return nil, err
		}
		if err := b.addKey(ctx, cert.der); err != nil {
			return nil, err
		}
		s, err := newSigner(cert, b.app.AppID, b.endpoint)
		if err != nil {
			return nil, err
		}
		// An assertion is base64url and dots: it needs no escaping.
		prefix += "&client_assertion_type=" + url.QueryEscape(clientAssertionType) + "&client_assertion="
		probe, err := s.sign([]byte(prefix))
		if err != nil {
			return nil, err
		}
		if err := b.probe(ctx, kind, probe); err != nil {
			return nil, err
		}
		if !b.opts.Presign {
			return signedBodies([]byte(prefix), s), nil
		}
		p, err := b.presign(ctx, []byte(prefix), s, res)
		if err != nil {
			return nil, err
		}
		return p.source(), nil

	case KindFederated:
		res.Mode = "reused managed identity token"
		assertion, err := b.federate(ctx)
		if err != nil {
			return nil, err
		}
		body := []byte(prefix + "&client_assertion_type=" + url.QueryEscape(clientAssertionType) + "&client_assertion=" + url.QueryEscape(assertion))
		if err := b.probe(ctx, kind, body); err != nil {
			return nil, err
		}
		return staticBody(body), nil
	}
	return nil, fmt.Errorf("credential kind %q is not known", kind)
}

// probe sends one token request with the kind's credential and turns a
// refusal into a setup error.
func (b *bench) probe(ctx context.Context, kind Kind, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := b.setupHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s credentials: the token request failed: %s", kind, azclient.Describe(err))
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(data, &out)
	if resp.StatusCode == http.StatusOK && out.AccessToken != "" {
		return nil
	}
	return unsupported(kind, "the token request was refused: %s", tokenRefusal(resp.StatusCode, out.Error, out.Description))
}

// tokenRefusal renders a token endpoint's refusal on one line, without
// Entra's trace and correlation ids.
func tokenRefusal(status int, oauthErr, desc string) string {
	for _, marker := range []string{"Trace ID:", "Correlation ID:", "Timestamp:"} {
		if i := strings.Index(desc, marker); i >= 0 {
			desc = desc[:i]
		}
	}
	desc = oneLine(desc)
	if desc == "" {
		desc = oauthErr
	}
	if desc == "" {
		desc = http.StatusText(status)
	}
	return fmt.Sprintf("%s (HTTP %d)", desc, status)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// addKey registers the application's first certificate with Graph's
// Update application (PATCH keyCredentials), which azclient does not wrap:
// Graph's addKey needs a proof signed by a certificate the application
// already has, so the first one is added by update, as Graph's addKey page
// says.
func (b *bench) addKey(ctx context.Context, der []byte) error {
	body := map[string]any{
		"keyCredentials": []any{map[string]any{
			"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(der), "displayName": "bench",
		}},
	}
	u := azclient.GraphEndpoint + "/applications/" + url.PathEscape(b.app.ID)
	status, msg, err := b.graphCall(ctx, http.MethodPatch, u, body)
	switch {
	case err != nil:
		return fmt.Errorf("adding a certificate through Graph: %s", azclient.Describe(err))
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		return unsupported(KindCertificate, "Graph cannot add a certificate: %s", msg)
	case status/100 != 2:
		return fmt.Errorf("adding a certificate through Graph: %s", msg)
	}
	return nil
}

// graphCall sends one JSON request to Graph as the tenant's administrator;
// msg is a non-2xx answer's code and message on one line.
func (b *bench) graphCall(ctx context.Context, method, u string, in any) (status int, msg string, err error) {
	tok, err := b.admin.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
	if err != nil {
		return 0, "", err
	}
	data, err := json.Marshal(in)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(data))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := b.setupHTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, "", nil
	}
	return resp.StatusCode, serviceError(resp.StatusCode, raw), nil
}

// serviceError renders {"error":{"code","message"}} (Graph, the operator
// API) or App Service's {"statusCode","message"} on one line.
func serviceError(status int, raw []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &e)
	msg := oneLine(e.Error.Message)
	if msg == "" {
		msg = oneLine(e.Message)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	if e.Error.Code != "" {
		return fmt.Sprintf("%s: %s (HTTP %d)", e.Error.Code, msg, status)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, status)
}

// federate makes the application trust a managed identity of the tenant:
// it creates a user-assigned identity and a workload running as it (the
// operator API), gets the identity's token for api://AzureADTokenExchange
// from the managed-identity endpoint, and adds to the application a
// federated credential for that token's issuer and subject. The token is
// the assertion.
func (b *bench) federate(ctx context.Context) (string, error) {
	tid := b.tenant.TenantID
	id, err := b.op.CreateIdentity(ctx, tid, "bench-identity", "")
	if err != nil {
		if azclient.IsNotFound(err) {
			return "", unsupported(KindFederated, "the operator API cannot create managed identities: %s", azclient.Describe(err))
		}
		return "", fmt.Errorf("creating a managed identity: %s", azclient.Describe(err))
	}
	wl, err := b.op.CreateWorkload(ctx, tid, azclient.NewWorkload{Name: "bench-workload", Identities: []string{id.PrincipalID}})
	if err != nil {
		return "", fmt.Errorf("creating a workload for the managed identity: %s", azclient.Describe(err))
	}
	if wl.IdentityHeader == "" {
		return "", errors.New("the operator API created the workload without an identity header")
	}
	endpoint, err := b.cred.IdentityEndpoint(tid)
	if err != nil {
		return "", err
	}
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {azclient.TokenExchangeAudience}, "client_id": {id.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-IDENTITY-HEADER", wl.IdentityHeader)
	req.Header.Set("Metadata", "true")
	resp, err := b.setupHTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("the managed-identity endpoint: %s", azclient.Describe(err))
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var mi struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &mi) != nil || mi.AccessToken == "" {
		if resp.StatusCode == http.StatusNotFound && !bytes.Contains(raw, []byte("Tenant")) {
			return "", unsupported(KindFederated, "there is no managed-identity endpoint: %s", serviceError(resp.StatusCode, raw))
		}
		return "", fmt.Errorf("the managed identity's token for %s: %s", azclient.TokenExchangeAudience, serviceError(resp.StatusCode, raw))
	}
	claims, err := azclient.UnverifiedClaims(mi.AccessToken)
	if err != nil {
		return "", fmt.Errorf("the managed identity's token: %w", err)
	}
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	if iss == "" || sub == "" {
		return "", errors.New("the managed identity's token has no iss or sub")
	}
	if exp, ok := expiry(claims); ok {
		if need := time.Now().Add(b.opts.Warmup + b.opts.Duration + time.Minute); exp.Before(need) {
			return "", fmt.Errorf("the managed identity's token expires at %s, before the run would end: shorten --duration", exp.UTC().Format(time.RFC3339))
		}
	}
	_, err = b.admin.graph.AddFederatedCredential(ctx, b.app.ID, azclient.FederatedCredential{Name: "bench-identity", Issuer: iss, Subject: sub,
		Audiences: []string{azclient.TokenExchangeAudience}, Description: "tenantbridge bench: trusts the bench tenant's managed identity"})
	if err != nil {
		if azclient.IsNotFound(err) {
			return "", unsupported(KindFederated, "Graph cannot add federated identity credentials: %s", azclient.Describe(err))
		}
		return "", fmt.Errorf("adding the federated credential through Graph: %s", azclient.Describe(err))
	}
	b.logf("federated: the application trusts %s for %s", iss, sub)
	return mi.AccessToken, nil
}

// presign makes the certificate kind's request bodies before the clock
// starts, on every CPU.
func (b *bench) presign(ctx context.Context, prefix []byte, s *signer, res *KindResult) (*presignedBodies, error) {
	secs := (b.opts.Warmup + b.opts.Duration).Seconds()
	n := int(min(math.Ceil(secs*float64(b.opts.PresignRate)), MaxPresigned))
	n = max(n, 1)
	b.logf("certificate: presigning %d assertions (%s × %d/s)...", n, b.opts.Warmup+b.opts.Duration, b.opts.PresignRate)
	p := &presignedBodies{bodies: make([][]byte, n)}
	start := time.Now()
	cpu0, cpuOK := processCPU()
	workers := runtime.GOMAXPROCS(0)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if ctx.Err() != nil {
					return
				}
				body, err := s.sign(append(make([]byte, 0, len(prefix)+1024), prefix...))
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
					return
				}
				p.bodies[i] = body
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Presigned = n
	note := fmt.Sprintf("presigned %d assertions in %s on %d CPUs", n, time.Since(start).Round(time.Millisecond), workers)
	if cpu1, ok := processCPU(); ok && cpuOK {
		note += fmt.Sprintf(" (%.2f ms of CPU each)", float64((cpu1-cpu0).Microseconds())/1000/float64(n))
	}
	res.Notes = append(res.Notes, note)
	return p, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// serverMemory asks the operator API for the server's memory; when it
// cannot, note says why.
func (b *bench) serverMemory(ctx context.Context) (mem *ServerMemory, note string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.authority+"/_operator/v1/stats", nil)
	if err != nil {
		return nil, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+b.cred.Key)
	req.Header.Set("Accept", "application/json")
	resp, err := b.setupHTTP.Do(req)
	if err != nil {
		return nil, "server memory unknown: " + azclient.Describe(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, "the server does not report its memory (GET /_operator/v1/stats: 404)"
	case resp.StatusCode != http.StatusOK:
		return nil, "server memory unknown: GET /_operator/v1/stats: " + serviceError(resp.StatusCode, raw)
	}
	var m ServerMemory
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, "server memory unknown: GET /_operator/v1/stats answered malformed JSON"
	}
	return &m, ""
}
