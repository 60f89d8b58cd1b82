package azclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// Graph's public endpoint and the scope of its application permissions.
const (
	GraphEndpoint = "https://graph.microsoft.com/v1.0"
	GraphScope    = "https://graph.microsoft.com/.default"
)

const (
	moduleName    = "tenantbridge/azclient"
	moduleVersion = "v0.1.0"
	maxPages      = 1000
)

// Graph is a small Microsoft Graph client: the objects and calls the
// tenantbridge CLI and broker need, on Graph's wire format, so that it works
// the same against tenantbridge and against Microsoft Graph.
type Graph struct {
	endpoint string
	base     *url.URL
	pl       runtime.Pipeline
}

// NewGraph returns a client for the Graph endpoint (e.g. GraphEndpoint) that
// authenticates with cred for GraphScope. opts may be nil; set its Transport
// to reach a local tenantbridge (see Local).
func NewGraph(endpoint string, cred azcore.TokenCredential, opts *policy.ClientOptions) (*Graph, error) {
	endpoint = strings.TrimRight(endpoint, "/")
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("graph endpoint %q is not an https URL", endpoint)
	}
	if cred == nil {
		return nil, errors.New("graph: a credential is required")
	}
	bearer := runtime.NewBearerTokenPolicy(cred, []string{GraphScope}, nil)
	pl := runtime.NewPipeline(moduleName, moduleVersion, runtime.PipelineOptions{PerRetry: []policy.Policy{bearer}}, opts)
	return &Graph{endpoint: endpoint, base: u, pl: pl}, nil
}

// Endpoint returns the endpoint the client calls, e.g. https://graph.microsoft.com/v1.0.
func (g *Graph) Endpoint() string { return g.endpoint }

// Application is an application registration.
type Application struct {
	ID                  string               `json:"id,omitempty"`
	AppID               string               `json:"appId,omitempty"`
	DisplayName         string               `json:"displayName,omitempty"`
	Description         string               `json:"description,omitempty"`
	SignInAudience      string               `json:"signInAudience,omitempty"`
	IdentifierURIs      []string             `json:"identifierUris,omitempty"`
	PublisherDomain     string               `json:"publisherDomain,omitempty"`
	PasswordCredentials []PasswordCredential `json:"passwordCredentials,omitempty"`
	// Web and PublicClient hold the redirect URIs of the web and
	// public-client (mobile and desktop) platforms.
	Web          *RedirectURIs `json:"web,omitempty"`
	PublicClient *RedirectURIs `json:"publicClient,omitempty"`
	// RequiredResourceAccess are the API permissions the application
	// asks for; consent grants them.
	RequiredResourceAccess []RequiredResourceAccess `json:"requiredResourceAccess,omitempty"`
	CreatedDateTime        time.Time                `json:"createdDateTime,omitzero"`
}

// PasswordCredential is a client secret. SecretText is set only in the
// result of AddPassword.
type PasswordCredential struct {
	KeyID         string    `json:"keyId,omitempty"`
	DisplayName   string    `json:"displayName,omitempty"`
	Hint          string    `json:"hint,omitempty"`
	StartDateTime time.Time `json:"startDateTime,omitzero"`
	EndDateTime   time.Time `json:"endDateTime,omitzero"`
	SecretText    string    `json:"secretText,omitempty"`
}

// ServicePrincipal is an application's identity in one tenant.
type ServicePrincipal struct {
	ID                     string    `json:"id,omitempty"`
	AppID                  string    `json:"appId,omitempty"`
	DisplayName            string    `json:"displayName,omitempty"`
	AppDisplayName         string    `json:"appDisplayName,omitempty"`
	AppOwnerOrganizationID string    `json:"appOwnerOrganizationId,omitempty"`
	ServicePrincipalType   string    `json:"servicePrincipalType,omitempty"`
	ServicePrincipalNames  []string  `json:"servicePrincipalNames,omitempty"`
	SignInAudience         string    `json:"signInAudience,omitempty"`
	AccountEnabled         *bool     `json:"accountEnabled,omitempty"`
	CreatedDateTime        time.Time `json:"createdDateTime,omitzero"`
	// AppRoles and OAuth2PermissionScopes are what the principal's API
	// offers: application permissions and delegated scopes.
	AppRoles               []AppRole         `json:"appRoles,omitempty"`
	OAuth2PermissionScopes []PermissionScope `json:"oauth2PermissionScopes,omitempty"`
}

// Group is a security group.
type Group struct {
	ID              string    `json:"id,omitempty"`
	DisplayName     string    `json:"displayName,omitempty"`
	Description     string    `json:"description,omitempty"`
	MailNickname    string    `json:"mailNickname,omitempty"`
	MailEnabled     bool      `json:"mailEnabled"`
	SecurityEnabled bool      `json:"securityEnabled"`
	CreatedDateTime time.Time `json:"createdDateTime,omitzero"`
}

// User is a user account.
type User struct {
	ID                string           `json:"id,omitempty"`
	DisplayName       string           `json:"displayName,omitempty"`
	UserPrincipalName string           `json:"userPrincipalName,omitempty"`
	MailNickname      string           `json:"mailNickname,omitempty"`
	Mail              string           `json:"mail,omitempty"`
	AccountEnabled    *bool            `json:"accountEnabled,omitempty"`
	PasswordProfile   *PasswordProfile `json:"passwordProfile,omitempty"`
}

// PasswordProfile sets a new user's password.
type PasswordProfile struct {
	Password                      string `json:"password"`
	ForceChangePasswordNextSignIn bool   `json:"forceChangePasswordNextSignIn"`
}

// ODataString quotes s as an OData string literal for $filter.
func ODataString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// --- applications ---

// CreateApplication registers an application; app needs at least a DisplayName.
func (g *Graph) CreateApplication(ctx context.Context, app Application) (*Application, error) {
	var out Application
	return &out, g.do(ctx, http.MethodPost, "/applications", nil, app, &out)
}

// ListApplications lists the tenant's applications; filter is an OData
// $filter expression, or empty for all.
func (g *Graph) ListApplications(ctx context.Context, filter string) ([]Application, error) {
	return list[Application](ctx, g, "/applications", filter)
}

// GetApplication finds an application by object id or by appId (client id).
func (g *Graph) GetApplication(ctx context.Context, idOrAppID string) (*Application, error) {
	var out Application
	err := g.do(ctx, http.MethodGet, "/applications/"+url.PathEscape(idOrAppID), nil, nil, &out)
	if !isNotFound(err) || !looksLikeGUID(idOrAppID) {
		return &out, err
	}
	apps, lerr := g.ListApplications(ctx, "appId eq "+ODataString(idOrAppID))
	if lerr != nil || len(apps) == 0 {
		return nil, err // the original not-found
	}
	return &apps[0], nil
}

// DeleteApplication deletes an application by object id.
func (g *Graph) DeleteApplication(ctx context.Context, id string) error {
	return g.do(ctx, http.MethodDelete, "/applications/"+url.PathEscape(id), nil, nil, nil)
}

// AddPassword adds a client secret to the application with the object id;
// cred may set DisplayName, StartDateTime and EndDateTime. The result
// carries SecretText, which Graph never shows again.
func (g *Graph) AddPassword(ctx context.Context, appObjectID string, cred PasswordCredential) (*PasswordCredential, error) {
	var out PasswordCredential
	body := map[string]any{"passwordCredential": cred}
	return &out, g.do(ctx, http.MethodPost, "/applications/"+url.PathEscape(appObjectID)+"/addPassword", nil, body, &out)
}

// RemovePassword removes the client secret with keyID from the application.
func (g *Graph) RemovePassword(ctx context.Context, appObjectID, keyID string) error {
	return g.do(ctx, http.MethodPost, "/applications/"+url.PathEscape(appObjectID)+"/removePassword", nil,
		map[string]string{"keyId": keyID}, nil)
}

// FederatedCredential is a federated identity credential: the application
// trusts tokens of Issuer for Subject, with one of Audiences.
type FederatedCredential struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
	Audiences   []string `json:"audiences"`
	Description string   `json:"description,omitempty"`
}

// TokenExchangeAudience is the audience Entra expects in a federated
// assertion by default.
const TokenExchangeAudience = "api://AzureADTokenExchange"

// AddFederatedCredential adds a federated identity credential to the
// application with the object id.
func (g *Graph) AddFederatedCredential(ctx context.Context, appObjectID string, f FederatedCredential) (*FederatedCredential, error) {
	var out FederatedCredential
	return &out, g.do(ctx, http.MethodPost, "/applications/"+url.PathEscape(appObjectID)+"/federatedIdentityCredentials", nil, f, &out)
}

// ListFederatedCredentials lists the application's federated identity credentials.
func (g *Graph) ListFederatedCredentials(ctx context.Context, appObjectID string) ([]FederatedCredential, error) {
	return list[FederatedCredential](ctx, g, "/applications/"+url.PathEscape(appObjectID)+"/federatedIdentityCredentials", "")
}

// --- service principals ---

// CreateServicePrincipal creates the service principal of the application
// appID in the caller's tenant. For another tenant's multi-tenant
// application this is what admin consent does.
func (g *Graph) CreateServicePrincipal(ctx context.Context, appID string) (*ServicePrincipal, error) {
	var out ServicePrincipal
	return &out, g.do(ctx, http.MethodPost, "/servicePrincipals", nil, map[string]string{"appId": appID}, &out)
}

// ListServicePrincipals lists service principals; filter is an OData
// $filter expression, or empty for all.
func (g *Graph) ListServicePrincipals(ctx context.Context, filter string) ([]ServicePrincipal, error) {
	return list[ServicePrincipal](ctx, g, "/servicePrincipals", filter)
}

// GetServicePrincipal finds a service principal by object id or by appId.
func (g *Graph) GetServicePrincipal(ctx context.Context, idOrAppID string) (*ServicePrincipal, error) {
	var out ServicePrincipal
	err := g.do(ctx, http.MethodGet, "/servicePrincipals/"+url.PathEscape(idOrAppID), nil, nil, &out)
	if !isNotFound(err) || !looksLikeGUID(idOrAppID) {
		return &out, err
	}
	sps, lerr := g.ListServicePrincipals(ctx, "appId eq "+ODataString(idOrAppID))
	if lerr != nil || len(sps) == 0 {
		return nil, err
	}
	return &sps[0], nil
}

// DeleteServicePrincipal deletes a service principal by object id.
func (g *Graph) DeleteServicePrincipal(ctx context.Context, id string) error {
	return g.do(ctx, http.MethodDelete, "/servicePrincipals/"+url.PathEscape(id), nil, nil, nil)
}

// --- groups ---

// CreateGroup creates a group. A security group has SecurityEnabled true
// and MailEnabled false.
func (g *Graph) CreateGroup(ctx context.Context, grp Group) (*Group, error) {
	var out Group
	return &out, g.do(ctx, http.MethodPost, "/groups", nil, grp, &out)
}

// ListGroups lists groups; filter is an OData $filter expression, or empty.
func (g *Graph) ListGroups(ctx context.Context, filter string) ([]Group, error) {
	return list[Group](ctx, g, "/groups", filter)
}

// GetGroup gets a group by object id.
func (g *Graph) GetGroup(ctx context.Context, id string) (*Group, error) {
	var out Group
	return &out, g.do(ctx, http.MethodGet, "/groups/"+url.PathEscape(id), nil, nil, &out)
}

// AddGroupMember adds the directory object memberID (a user, service
// principal or group) to the group.
func (g *Graph) AddGroupMember(ctx context.Context, groupID, memberID string) error {
	ref := map[string]string{"@odata.id": g.endpoint + "/directoryObjects/" + url.PathEscape(memberID)}
	return g.do(ctx, http.MethodPost, "/groups/"+url.PathEscape(groupID)+"/members/$ref", nil, ref, nil)
}

// --- users ---

// CreateUser creates a user; Graph requires AccountEnabled, DisplayName,
// MailNickname, UserPrincipalName and PasswordProfile.
func (g *Graph) CreateUser(ctx context.Context, u User) (*User, error) {
	var out User
	return &out, g.do(ctx, http.MethodPost, "/users", nil, u, &out)
}

// ListUsers lists users; filter is an OData $filter expression, or empty.
func (g *Graph) ListUsers(ctx context.Context, filter string) ([]User, error) {
	return list[User](ctx, g, "/users", filter)
}

// GetUser gets a user by object id or user principal name.
func (g *Graph) GetUser(ctx context.Context, idOrUPN string) (*User, error) {
	var out User
	return &out, g.do(ctx, http.MethodGet, "/users/"+url.PathEscape(idOrUPN), nil, nil, &out)
}

// --- plumbing ---

// do sends one request to endpoint+path and decodes a 2xx JSON body into
// out (if out is non-nil and there is a body).
func (g *Graph) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := g.endpoint + path
	if len(query) > 0 {
		u += "?" + encodeQuery(query)
	}
	return g.send(ctx, method, u, body, out)
}

func (g *Graph) send(ctx context.Context, method, u string, body, out any) error {
	req, err := runtime.NewRequest(ctx, method, u)
	if err != nil {
		return err
	}
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return err
		}
	}
	resp, err := g.pl.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		runtime.Drain(resp)
		return nil
	}
	if err := runtime.UnmarshalAsJSON(resp, out); err != nil {
		return fmt.Errorf("graph %s %s: %w", method, urlPath(u), err)
	}
	return nil
}

func urlPath(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return u
}

// page is one page of a Graph collection.
type page[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}

// list reads a whole collection, following @odata.nextLink. A next link
// must stay on the endpoint's own scheme and host, so that the bearer token
// never goes anywhere else.
func list[T any](ctx context.Context, g *Graph, p, filter string) ([]T, error) {
	q := url.Values{}
	if filter != "" {
		q.Set("$filter", filter)
	}
	u := g.endpoint + p
	if len(q) > 0 {
		u += "?" + encodeQuery(q)
	}
	var out []T
	seen := map[string]bool{}
	for range maxPages {
		var pg page[T]
		if err := g.send(ctx, http.MethodGet, u, nil, &pg); err != nil {
			return nil, err
		}
		out = append(out, pg.Value...)
		if pg.NextLink == "" {
			return out, nil
		}
		next, err := url.Parse(pg.NextLink)
		if err != nil || next.Scheme != g.base.Scheme || !strings.EqualFold(next.Host, g.base.Host) {
			return nil, fmt.Errorf("graph: refusing @odata.nextLink to another host: %q", pg.NextLink)
		}
		if seen[pg.NextLink] {
			return nil, errors.New("graph: @odata.nextLink repeats itself")
		}
		seen[pg.NextLink] = true
		u = pg.NextLink
	}
	return nil, fmt.Errorf("graph: more than %d pages of results", maxPages)
}

// encodeQuery encodes OData query options the way Graph documents them:
// "$filter=" with the value percent-encoded (spaces as %20).
func encodeQuery(q url.Values) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[k] {
			parts = append(parts, k+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	return strings.Join(parts, "&")
}

func isNotFound(err error) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// IsNotFound reports whether err is a 404 from the service.
func IsNotFound(err error) bool { return isNotFound(err) }

// looksLikeGUID reports whether s has the 8-4-4-4-12 hex form of object and application ids.
func looksLikeGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// IsGUID reports whether s looks like an object or application id.
func IsGUID(s string) bool { return looksLikeGUID(s) }
