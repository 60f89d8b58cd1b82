package azclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// OperatorCredential is the content of a tenantbridge data directory's
// operator.json: where the server is, which CA to trust, and the operator's
// bearer key.
type OperatorCredential struct {
	URL    string `json:"url"`
	CAFile string `json:"caFile"`
	Key    string `json:"key"`
	// ProxyURL is the server's HTTPS proxy (http://ADDR), if it runs one.
	ProxyURL string `json:"proxyUrl,omitempty"`
	// Spread are more addresses of the same fleet to spread connections
	// over (Local.Spread); never read from or written to the file.
	Spread []string `json:"-"`
}

// ReadOperatorCredential reads an operator.json file.
func ReadOperatorCredential(file string) (OperatorCredential, error) {
	var c OperatorCredential
	data, err := os.ReadFile(file)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("operator credential %s is malformed: %w", file, err)
	}
	if c.URL == "" || c.CAFile == "" {
		return c, fmt.Errorf("operator credential %s lacks url or caFile", file)
	}
	return c, nil
}

// Local returns how to reach the server the credential names: its address
// (an unspecified listen address such as 0.0.0.0 is reached on loopback) and
// its CA.
func (c OperatorCredential) Local() (Local, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return Local{}, fmt.Errorf("operator credential url %q is not an https URL", c.URL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return Local{Address: net.JoinHostPort(host, port), CAFile: c.CAFile, Spread: c.Spread}, nil
}

// AuthorityURL is the base URL for the token service at the listen address
// (c.URL, with an unspecified address replaced by loopback).
func (c OperatorCredential) AuthorityURL() (string, error) {
	l, err := c.Local()
	if err != nil {
		return "", err
	}
	return "https://" + l.Address, nil
}

// IdentityEndpoint is the managed-identity endpoint of a tenant
// (IDENTITY_ENDPOINT for workloads): https://LISTEN/{tenantId}/msi/token, at
// the listen address, which clients reach directly (never through a proxy).
func (c OperatorCredential) IdentityEndpoint(tenantID string) (string, error) {
	base, err := c.AuthorityURL()
	if err != nil {
		return "", err
	}
	return base + "/" + url.PathEscape(tenantID) + "/msi/token", nil
}

// Operator is a client of tenantbridge's operator API
// (https://LISTEN/_operator/v1/).
type Operator struct {
	base string
	key  string
	hc   *http.Client
}

// NewOperator returns a client of the operator API at baseURL (the server's
// listen URL, e.g. https://127.0.0.1:8443) using the bearer key. hc must
// trust the server's CA (see Local.HTTPClient).
func NewOperator(baseURL, key string, hc *http.Client) *Operator {
	return &Operator{base: strings.TrimRight(baseURL, "/") + "/_operator/v1", key: key, hc: hc}
}

// NewOperatorFromCredential returns an operator client for the server and
// key an operator.json names.
func NewOperatorFromCredential(c OperatorCredential) (*Operator, error) {
	l, err := c.Local()
	if err != nil {
		return nil, err
	}
	hc, err := l.HTTPClient()
	if err != nil {
		return nil, err
	}
	return NewOperator("https://"+l.Address, c.Key, hc), nil
}

// Tenant is a tenant as the operator API shows it.
type Tenant struct {
	TenantID       string       `json:"tenantId"`
	Name           string       `json:"name"`
	Domain         string       `json:"domain"`
	SubscriptionID string       `json:"subscriptionId"`
	Created        time.Time    `json:"created"`
	Admin          *TenantAdmin `json:"admin,omitempty"`
}

// TenantAdmin is a new tenant's bootstrap administrator application, with
// its client secret (returned only when the tenant is created).
type TenantAdmin struct {
	ClientID           string    `json:"clientId"`
	ClientSecret       string    `json:"clientSecret"`
	ObjectID           string    `json:"objectId,omitempty"`
	ServicePrincipalID string    `json:"servicePrincipalId,omitempty"`
	SecretExpires      time.Time `json:"secretExpires,omitzero"`
}

// AuditRecord is one entry of the audit log.
type AuditRecord struct {
	Seq          int64     `json:"seq"`
	Time         time.Time `json:"time"`
	Actor        string    `json:"actor"`
	ActorTenant  string    `json:"actorTenant"`
	TargetTenant string    `json:"targetTenant"`
	Action       string    `json:"action"`
	Target       string    `json:"target"`
	Result       string    `json:"result"`
	ClientAddr   string    `json:"clientAddr,omitempty"`
	RequestID    string    `json:"requestId,omitempty"`
	Detail       string    `json:"detail,omitempty"`
}

// AuditQuery selects audit records: those involving Tenant (name, domain or
// id; empty for all), with a sequence number above After, at most Limit (0
// for the server's default).
type AuditQuery struct {
	Tenant string
	// ByTenant narrows the records to what principals of this other
	// tenant did in Tenant.
	ByTenant string
	After    int64
	Limit    int
}

// CreateTenant creates a tenant with its bootstrap administrator.
func (o *Operator) CreateTenant(ctx context.Context, name string) (*Tenant, error) {
	var t Tenant
	return &t, o.do(ctx, http.MethodPost, "/tenants", map[string]string{"name": name}, &t)
}

// ListTenants lists the tenants.
func (o *Operator) ListTenants(ctx context.Context) ([]Tenant, error) {
	var out struct {
		Value []Tenant `json:"value"`
	}
	return out.Value, o.do(ctx, http.MethodGet, "/tenants", nil, &out)
}

// GetTenant finds a tenant by name, domain or id.
func (o *Operator) GetTenant(ctx context.Context, ref string) (*Tenant, error) {
	if ref == "" {
		return nil, errors.New("a tenant name, domain or id is required")
	}
	var t Tenant
	return &t, o.do(ctx, http.MethodGet, "/tenants/"+url.PathEscape(ref), nil, &t)
}

// DeleteTenant deletes a tenant and everything in it.
func (o *Operator) DeleteTenant(ctx context.Context, ref string) error {
	if ref == "" {
		return errors.New("a tenant name, domain or id is required")
	}
	return o.do(ctx, http.MethodDelete, "/tenants/"+url.PathEscape(ref), nil, nil)
}

// Audit reads audit records.
func (o *Operator) Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	v := url.Values{}
	if q.Tenant != "" {
		v.Set("tenant", q.Tenant)
	}
	if q.ByTenant != "" {
		v.Set("byTenant", q.ByTenant)
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	p := "/audit"
	if len(v) > 0 {
		p += "?" + v.Encode()
	}
	var out struct {
		Value []AuditRecord `json:"value"`
	}
	return out.Value, o.do(ctx, http.MethodGet, p, nil, &out)
}

// SigningKey is a token-signing key as the operator API shows it.
type SigningKey struct {
	KeyID          string    `json:"kid"`
	State          string    `json:"state"` // pending, active or retired
	Activates      time.Time `json:"activates"`
	Retires        time.Time `json:"retires,omitzero"`
	RemovableAfter time.Time `json:"removableAfter,omitzero"`
}

// ListKeys lists the server's token-signing keys, newest activation first.
func (o *Operator) ListKeys(ctx context.Context) ([]SigningKey, error) {
	var out struct {
		Value []SigningKey `json:"value"`
	}
	return out.Value, o.do(ctx, http.MethodGet, "/keys", nil, &out)
}

// RotateKeys makes a new token-signing key, published at once and signing
// publishAhead later (0 for at once; the server rounds up to whole seconds).
func (o *Operator) RotateKeys(ctx context.Context, publishAhead time.Duration) (*SigningKey, error) {
	if publishAhead < 0 {
		return nil, errors.New("publish-ahead must not be negative")
	}
	var k SigningKey
	return &k, o.do(ctx, http.MethodPost, "/keys/rotate", map[string]string{"publishAhead": publishAhead.String()}, &k)
}

// Identity is a user-assigned managed identity.
type Identity struct {
	Name          string    `json:"name"`
	ResourceGroup string    `json:"resourceGroup,omitempty"`
	ClientID      string    `json:"clientId"`
	PrincipalID   string    `json:"principalId"`
	TenantID      string    `json:"tenantId"`
	ResourceID    string    `json:"resourceId"`
	Created       time.Time `json:"created,omitzero"`
}

// WorkloadIdentity is one identity a workload runs as.
type WorkloadIdentity struct {
	Name        string `json:"name,omitempty"`
	ClientID    string `json:"clientId"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId,omitempty"`
}

// Workload is something that runs as managed identities. IdentityHeader
// is set only in the result of CreateWorkload.
type Workload struct {
	ID                     string             `json:"id"`
	Name                   string             `json:"name"`
	ResourceGroup          string             `json:"resourceGroup,omitempty"`
	TenantID               string             `json:"tenantId"`
	ResourceID             string             `json:"resourceId"`
	SystemAssignedIdentity *WorkloadIdentity  `json:"systemAssignedIdentity,omitempty"`
	UserAssignedIdentities []WorkloadIdentity `json:"userAssignedIdentities"`
	Created                time.Time          `json:"created,omitzero"`
	IdentityHeader         string             `json:"identityHeader,omitempty"`
}

// NewWorkload is what CreateWorkload takes. Identities name user-assigned
// identities by name, client id, principal id or resource id.
type NewWorkload struct {
	Name           string   `json:"name"`
	ResourceGroup  string   `json:"resourceGroup,omitempty"`
	SystemAssigned bool     `json:"systemAssigned"`
	Identities     []string `json:"identities,omitempty"`
}

func tenantPath(tenant string) (string, error) {
	if tenant == "" {
		return "", errors.New("a tenant name, domain or id is required")
	}
	return "/tenants/" + url.PathEscape(tenant), nil
}

// CreateIdentity creates a user-assigned managed identity in a tenant
// (name, domain or id); an empty resource group takes the server's default.
func (o *Operator) CreateIdentity(ctx context.Context, tenant, name, resourceGroup string) (*Identity, error) {
	p, err := tenantPath(tenant)
	if err != nil {
		return nil, err
	}
	var out Identity
	body := map[string]string{"name": name}
	if resourceGroup != "" {
		body["resourceGroup"] = resourceGroup
	}
	return &out, o.do(ctx, http.MethodPost, p+"/identities", body, &out)
}

// ListIdentities lists a tenant's user-assigned identities.
func (o *Operator) ListIdentities(ctx context.Context, tenant string) ([]Identity, error) {
	p, err := tenantPath(tenant)
	if err != nil {
		return nil, err
	}
	var out struct {
		Value []Identity `json:"value"`
	}
	return out.Value, o.do(ctx, http.MethodGet, p+"/identities", nil, &out)
}

// GetIdentity finds a user-assigned identity by name, client id, principal
// id or resource id.
func (o *Operator) GetIdentity(ctx context.Context, tenant, ref string) (*Identity, error) {
	p, err := tenantPath(tenant)
	if err != nil {
		return nil, err
	}
	if ref == "" {
		return nil, errors.New("an identity name, client id, principal id or resource id is required")
	}
	var out Identity
	return &out, o.do(ctx, http.MethodGet, p+"/identities/"+url.PathEscape(ref), nil, &out)
}

// DeleteIdentity deletes a user-assigned identity.
func (o *Operator) DeleteIdentity(ctx context.Context, tenant, ref string) error {
	p, err := tenantPath(tenant)
	if err != nil {
		return err
	}
	if ref == "" {
		return errors.New("an identity name, client id, principal id or resource id is required")
	}
	return o.do(ctx, http.MethodDelete, p+"/identities/"+url.PathEscape(ref), nil, nil)
}

// CreateWorkload creates a workload; the result carries its identity
// header, which the server never shows again.
func (o *Operator) CreateWorkload(ctx context.Context, tenant string, w NewWorkload) (*Workload, error) {
	p, err := tenantPath(tenant)
	if err != nil {
		return nil, err
	}
	var out Workload
	return &out, o.do(ctx, http.MethodPost, p+"/workloads", w, &out)
}

// ListWorkloads lists a tenant's workloads.
func (o *Operator) ListWorkloads(ctx context.Context, tenant string) ([]Workload, error) {
	p, err := tenantPath(tenant)
	if err != nil {
		return nil, err
	}
	var out struct {
		Value []Workload `json:"value"`
	}
	return out.Value, o.do(ctx, http.MethodGet, p+"/workloads", nil, &out)
}

// GetWorkload finds a workload by name or id.
func (o *Operator) GetWorkload(ctx context.Context, tenant, ref string) (*Workload, error) {
	p, err := tenantPath(tenant)
	if err != nil {
		return nil, err
	}
	if ref == "" {
		return nil, errors.New("a workload name or id is required")
	}
	var out Workload
	return &out, o.do(ctx, http.MethodGet, p+"/workloads/"+url.PathEscape(ref), nil, &out)
}

// DeleteWorkload deletes a workload and its system-assigned identity.
func (o *Operator) DeleteWorkload(ctx context.Context, tenant, ref string) error {
	p, err := tenantPath(tenant)
	if err != nil {
		return err
	}
	if ref == "" {
		return errors.New("a workload name or id is required")
	}
	return o.do(ctx, http.MethodDelete, p+"/workloads/"+url.PathEscape(ref), nil, nil)
}

// RotateWorkloadHeader gives a workload a new identity header and returns
// it; the old one stops working at once.
func (o *Operator) RotateWorkloadHeader(ctx context.Context, tenant, ref string) (string, error) {
	p, err := tenantPath(tenant)
	if err != nil {
		return "", err
	}
	if ref == "" {
		return "", errors.New("a workload name or id is required")
	}
	var out struct {
		IdentityHeader string `json:"identityHeader"`
	}
	if err := o.do(ctx, http.MethodPost, p+"/workloads/"+url.PathEscape(ref)+"/rotateHeader", nil, &out); err != nil {
		return "", err
	}
	if out.IdentityHeader == "" {
		return "", errors.New("operator API: rotateHeader returned no identity header")
	}
	return out.IdentityHeader, nil
}

// maxOperatorBody bounds a response from the operator API.
const maxOperatorBody = 32 << 20

func (o *Operator) do(ctx context.Context, method, p string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.base+p, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := o.hc.Do(req)
	if err != nil {
		return fmt.Errorf("operator API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return newResponseError(resp, data, nil)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxOperatorBody+1))
	if err != nil {
		return fmt.Errorf("operator API: %w", err)
	}
	if len(data) > maxOperatorBody {
		return errors.New("operator API: response too large")
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("operator API %s %s: malformed response: %w", method, p, err)
	}
	return nil
}

// Authenticator is a user's new TOTP authenticator: the otpauth:// URI an
// authenticator app takes and its base32 secret, shown only here.
type Authenticator struct {
	UserID            string `json:"userId"`
	UserPrincipalName string `json:"userPrincipalName"`
	OtpauthURI        string `json:"otpauthUri"`
	Secret            string `json:"secret"`
}

// EnrollAuthenticator gives a user (object id or user principal name) of a
// tenant a new TOTP authenticator. A user who has one keeps it unless
// replace is set; replacing stops the old one's codes at once.
func (o *Operator) EnrollAuthenticator(ctx context.Context, tenant, user string, replace bool) (*Authenticator, error) {
	p, err := tenantPath(tenant)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(user) == "" {
		return nil, errors.New("a user object id or user principal name is required")
	}
	var out Authenticator
	if err := o.do(ctx, http.MethodPost, p+"/users/"+url.PathEscape(user)+"/authenticator", map[string]bool{"replace": replace}, &out); err != nil {
		return nil, err
	}
	if out.OtpauthURI == "" || out.Secret == "" {
		return nil, errors.New("operator API: the enrolment returned no authenticator")
	}
	return &out, nil
}
