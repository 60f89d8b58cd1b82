package publisher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// rest is a JSON client of one Azure REST surface (Resource Manager, or
// the parts of Graph azclient.Graph lacks), authenticated with the
// broker's credential for scope.
type rest struct {
	endpoint string
	pl       runtime.Pipeline
}

func newREST(endpoint string, cred azcore.TokenCredential, scope string, opts policy.ClientOptions) *rest {
	bearer := runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)
	return &rest{endpoint: strings.TrimRight(endpoint, "/"),
		pl: runtime.NewPipeline("tenantbridge/broker/publisher", "v0.1.0", runtime.PipelineOptions{PerRetry: []policy.Policy{bearer}}, &opts)}
}

// statusError is a non-2xx answer.
type statusError struct {
	Status int
	Method string
	Path   string
	Body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.Path, e.Status, strings.Join(strings.Fields(e.Body), " "))
}

func statusOf(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.Status
	}
	var re *azclient.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	var ae *azcore.ResponseError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

func isNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

func (c *rest) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.endpoint + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
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
	resp, err := c.pl.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := runtime.Payload(resp)
		if len(b) > 512 {
			b = b[:512]
		}
		return &statusError{Status: resp.StatusCode, Method: method, Path: path, Body: string(b)}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		runtime.Drain(resp)
		return nil
	}
	return runtime.UnmarshalAsJSON(resp, out)
}

const armAPIVersion = "2021-07-01"

// registrationSpec is the deployment spec's registration section.
type registrationSpec struct {
	Endpoint       string `json:"endpoint"`
	CredentialMode string `json:"credentialMode"`
	Vault          string `json:"vault"`
}

type definition struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		DeploymentSpec *struct {
			Registration *registrationSpec `json:"registration"`
		} `json:"deploymentSpec"`
	} `json:"properties"`
}

func (d *definition) registration() *registrationSpec {
	if d.Properties.DeploymentSpec == nil {
		return nil
	}
	return d.Properties.DeploymentSpec.Registration
}

// getDefinition reads an application definition of the publisher.
func (c *rest) getDefinition(ctx context.Context, id string) (*definition, error) {
	var d definition
	if err := c.do(ctx, http.MethodGet, id, url.Values{"api-version": {armAPIVersion}}, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// findDefinition finds the definition named product in the subscriptions
// (a marketplace offer's definition).
func (c *rest) findDefinition(ctx context.Context, subscriptions []string, product string) (*definition, error) {
	for _, s := range subscriptions {
		var page struct {
			Value []definition `json:"value"`
		}
		if err := c.do(ctx, http.MethodGet, "/subscriptions/"+url.PathEscape(s)+"/providers/Microsoft.Solutions/applicationDefinitions",
			url.Values{"api-version": {armAPIVersion}}, nil, &page); err != nil {
			return nil, err
		}
		for i := range page.Value {
			if strings.EqualFold(page.Value[i].Name, product) {
				return &page.Value[i], nil
			}
		}
	}
	return nil, nil
}

// listedToken is one token of listTokens; both casings are read (the
// docs' snake_case and the 2021-07-01 swagger's camelCase).
type listedToken struct {
	AccessToken  string `json:"access_token"`
	AccessToken2 string `json:"accessToken"`
	ExpiresOn    string `json:"expires_on"`
	ExpiresOn2   string `json:"expiresOn"`
}

// listToken returns a token for audience (POST {application}/listTokens)
// of the managed application's system-assigned identity or, when uami is
// not empty, of that user-assigned identity of its managed resource group
// (the request's userAssignedIdentities; seed 001: "if there is a
// user-assigned managed identity in the managed resource group that is
// authorized to do whatever you want, you can also supply the
// userAssignedIdentities").
func (c *rest) listToken(ctx context.Context, appID, audience, uami string) (azcore.AccessToken, error) {
	var out struct {
		Value []listedToken `json:"value"`
	}
	body := map[string]any{"authorizationAudience": audience}
	if uami != "" {
		body["userAssignedIdentities"] = []string{uami}
	}
	if err := c.do(ctx, http.MethodPost, appID+"/listTokens", url.Values{"api-version": {armAPIVersion}}, body, &out); err != nil {
		return azcore.AccessToken{}, err
	}
	if len(out.Value) == 0 {
		return azcore.AccessToken{}, errors.New("listTokens returned no token")
	}
	t := out.Value[0]
	tok := azcore.AccessToken{Token: firstOf(t.AccessToken, t.AccessToken2), ExpiresOn: time.Now().Add(5 * time.Minute)}
	if tok.Token == "" {
		return azcore.AccessToken{}, errors.New("listTokens returned an empty token")
	}
	var sec int64
	if _, err := fmt.Sscan(firstOf(t.ExpiresOn, t.ExpiresOn2), &sec); err == nil && sec > 0 {
		tok.ExpiresOn = time.Unix(sec, 0)
	}
	return tok, nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// application is what the broker reads of a managed application (GET, as
// one of its definition's authorized principals): where the installation
// is and what its package answered.
type application struct {
	Identity *struct {
		PrincipalID string `json:"principalId"`
	} `json:"identity"`
	Properties struct {
		ManagedResourceGroupID string `json:"managedResourceGroupId"`
		ProvisioningState      string `json:"provisioningState"`
		Outputs                map[string]struct {
			Value any `json:"value"`
		} `json:"outputs"`
	} `json:"properties"`
}

func (c *rest) getApplication(ctx context.Context, appID string) (*application, error) {
	var a application
	if err := c.do(ctx, http.MethodGet, appID, url.Values{"api-version": {armAPIVersion}}, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// staticToken is a TokenCredential that returns one token (from listTokens).
type staticToken azcore.AccessToken

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken(s), nil
}

// groupMember reports whether memberID is a direct member of the group.
func (c *rest) groupMember(ctx context.Context, groupID, memberID string) (bool, error) {
	u := "/groups/" + url.PathEscape(groupID) + "/members"
	for range 100 {
		var page struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
			Next string `json:"@odata.nextLink"`
		}
		if err := c.do(ctx, http.MethodGet, u, nil, nil, &page); err != nil {
			return false, err
		}
		for _, m := range page.Value {
			if strings.EqualFold(m.ID, memberID) {
				return true, nil
			}
		}
		if page.Next == "" || !strings.HasPrefix(page.Next, c.endpoint+"/") {
			return false, nil
		}
		u = strings.TrimPrefix(page.Next, c.endpoint)
	}
	return false, nil
}

// removeGroupMember removes memberID from the group; absent is fine.
func (c *rest) removeGroupMember(ctx context.Context, groupID, memberID string) error {
	err := c.do(ctx, http.MethodDelete, "/groups/"+url.PathEscape(groupID)+"/members/"+url.PathEscape(memberID)+"/$ref", nil, nil, nil)
	if isNotFound(err) {
		return nil
	}
	return err
}

const identityAPIVersion = "2023-01-31"

// installationIdentity reads the principal id of the user-assigned
// identity name in the managed resource group mrg.
func (c *rest) installationIdentity(ctx context.Context, mrg, name string) (string, error) {
	var id struct {
		Properties struct {
			PrincipalID string `json:"principalId"`
		} `json:"properties"`
	}
	if err := c.do(ctx, http.MethodGet, strings.TrimRight(mrg, "/")+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"+url.PathEscape(name),
		url.Values{"api-version": {identityAPIVersion}}, nil, &id); err != nil {
		return "", err
	}
	if id.Properties.PrincipalID == "" {
		return "", errors.New("the identity has no principal id")
	}
	return id.Properties.PrincipalID, nil
}
