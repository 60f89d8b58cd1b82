package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// armAdmin is the bench tenant's administrator, setting up what a data
// plane benchmark needs through Resource Manager and reading it back
// through the data plane, with its client-secret credential.
type armAdmin struct {
	*bench
	tenant    *azclient.Tenant
	cred      azcore.TokenCredential
	principal string // the administrator's service principal object id
}

// newARMAdmin signs in as the bench tenant's administrator.
func newARMAdmin(ctx context.Context, b *bench, ten *azclient.Tenant) (*armAdmin, error) {
	if ten.Admin == nil || ten.Admin.ClientID == "" || ten.Admin.ClientSecret == "" {
		return nil, errors.New("the operator API created the bench tenant without an administrator credential")
	}
	if ten.SubscriptionID == "" {
		return nil, errors.New("the operator API created the bench tenant without a subscription")
	}
	local, err := b.cred.Local()
	if err != nil {
		return nil, err
	}
	copts, err := local.ClientOptions()
	if err != nil {
		return nil, err
	}
	cred, err := azclient.NewClientSecretCredential(b.authority, ten.TenantID, ten.Admin.ClientID, ten.Admin.ClientSecret, copts)
	if err != nil {
		return nil, err
	}
	a := &armAdmin{bench: b, tenant: ten, cred: cred, principal: ten.Admin.ServicePrincipalID}
	if a.principal == "" {
		g, err := azclient.NewGraph(azclient.GraphEndpoint, cred, &copts)
		if err != nil {
			return nil, err
		}
		sp, err := g.GetServicePrincipal(ctx, ten.Admin.ClientID)
		if err != nil {
			return nil, fmt.Errorf("finding the administrator's service principal through Graph: %s", azclient.Describe(err))
		}
		a.principal = sp.ID
	}
	return a, nil
}

// arm sends one Resource Manager request as the administrator; a non-2xx
// answer is an error with ARM's code and message.
func (a *armAdmin) arm(ctx context.Context, method, path, apiVersion string, in, out any) (int, error) {
	tok, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{armScope}})
	if err != nil {
		return 0, fmt.Errorf("the administrator's token for Resource Manager: %s", azclient.Describe(err))
	}
	u := armEndpoint + (&url.URL{Path: path}).EscapedPath() + "?api-version=" + apiVersion
	status, raw, err := a.call(ctx, method, u, "Bearer "+tok.Token, in)
	if err != nil {
		return 0, errors.New(azclient.Describe(err))
	}
	if status/100 != 2 {
		return status, fmt.Errorf("%s %s: %s", method, path, serviceError(status, raw))
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return status, fmt.Errorf("%s %s: malformed JSON: %w", method, path, err)
		}
	}
	return status, nil
}

// call sends one JSON request over the setup client.
func (a *armAdmin) call(ctx context.Context, method, u, auth string, in any) (int, []byte, error) {
	var rd io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.setupHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, raw, err
}

// assignRole gives the administrator's service principal a role at scope
// and returns the assignment's id.
func (a *armAdmin) assignRole(ctx context.Context, scope, role, roleName string) (string, error) {
	id := scope + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
	body := map[string]any{"properties": map[string]any{
		"roleDefinitionId": "/subscriptions/" + a.tenant.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
		"principalId":      a.principal, "principalType": "ServicePrincipal"}}
	if _, err := a.arm(ctx, http.MethodPut, id, armRoleAPIVersion, body, nil); err != nil {
		return "", fmt.Errorf("assigning %s at %s: %w", roleName, scope, err)
	}
	return id, nil
}

// armBench is a data plane benchmark set up by a bench tenant's
// administrator.
type armBench interface {
	// setup makes what the benchmark needs, name naming its resource.
	setup(ctx context.Context, name string) error
	// global is the resource whose name is global, "" id until made.
	global() (kind, name, id, apiVersion string)
}

// tenantRun is what a data plane benchmark reports of its server and
// throwaway tenant.
type tenantRun struct {
	Server, Tenant, TenantID, Protocol, MemoryNote, CleanupError string
	MemoryAtRest, MemoryAfter                                    *ServerMemory
	TenantDeleted                                                bool
}

// runInTenant creates a throwaway tenant, signs in as its administrator,
// has newBench's benchmark set up (its resource named after the tenant and
// suffix) and then measure, and deletes the tenant, freeing the global
// resource first (unless keep; kept names what is left besides the tenant).
func runInTenant(ctx context.Context, topts TokenOptions, tenantName string, keep bool, suffix string, run *tenantRun,
	newBench func(*armAdmin) armBench, kept func() string, measure func(context.Context)) error {
	b, err := openBench(topts)
	if err != nil {
		return err
	}
	run.Server = b.authority
	run.MemoryAtRest, run.MemoryNote = b.serverMemory(ctx)
	ten, name, err := b.createTenant(ctx, tenantName)
	if err != nil {
		return err
	}
	run.Tenant, run.TenantID = ten.Name, ten.TenantID
	admin, err := newARMAdmin(ctx, b, ten)
	if err != nil {
		return err
	}
	bm := newBench(admin)
	defer func() {
		kind, gname, id, apiVersion := bm.global()
		if keep {
			b.logf("Keeping bench tenant %s (%s) and %s %s.", ten.Name, ten.TenantID, kind, kept())
			return
		}
		run.TenantDeleted, run.CleanupError = b.deleteTenant(ctx, ten, func(cctx context.Context) {
			if id != "" { // the name is global: free it even if deleting the tenant would not
				if _, err := admin.arm(cctx, http.MethodDelete, id, apiVersion, nil, nil); err != nil {
					b.logf("Could not delete bench %s %s: %s", kind, gname, err)
				}
			}
		})
	}()
	if err := bm.setup(ctx, name+suffix); err != nil {
		return interrupted(ctx, err)
	}
	measure(ctx)
	run.Protocol, run.MemoryAfter = b.finish(ctx, run.MemoryAtRest)
	return nil
}
