package arm

// Nested deployments (a Microsoft.Resources/deployments resource in a
// template) are deployments of their own in Resource Manager: the
// deployer needs Microsoft.Resources/deployments/write at the nested
// deployment's scope, and once it ran, its record (state, parameters
// without secure values, outputs, error) is read by GET and list at that
// scope like any deployment's
// (learn.microsoft.com/azure/azure-resource-manager/templates/linked-templates).
// The record is written when the nested deployment ends; its resources'
// operations are the parent's.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/armtemplate"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// nestedScope splits a nested deployment's id into its subscription and
// resource group ("" at subscription scope); ok is false for another shape.
func nestedScope(id string) (sub, rg, name string, ok bool) {
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	switch {
	case len(segs) == 6 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "providers"):
		return segs[1], "", segs[5], true
	case len(segs) == 8 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "resourceGroups") && strings.EqualFold(segs[4], "providers"):
		return segs[1], segs[3], segs[7], true
	}
	return "", "", "", false
}

// NestedStart refuses a nested deployment the caller may not write at
// its scope (armtemplate.NestedObserver).
func (x *run) NestedStart(ctx context.Context, r *armtemplate.PlannedResource) error {
	ok, err := x.h.callerMay(ctx, x.c, actionDeploymentWrite, r.ID)
	if err != nil {
		return err
	}
	if !ok {
		return &armtemplate.Error{Code: "AuthorizationFailed", Target: r.ID,
			Message: fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid.",
				rp.SafeText(x.c.claims.ObjectID), rp.SafeText(x.c.claims.ObjectID), actionDeploymentWrite, rp.SafeText(r.ID))}
	}
	return nil
}

// NestedEnd records the nested deployment at its scope, unless a
// deployment of that name still runs there (armtemplate.NestedObserver).
// A failure to record is logged: the parent's outcome does not depend on it.
func (x *run) NestedEnd(ctx context.Context, r *armtemplate.PlannedResource, res *armtemplate.Result, runErr error) {
	if err := x.recordNested(ctx, r, res, runErr); err != nil {
		x.h.log.Error("arm: recording a nested deployment failed", "deployment", r.ID, "err", err)
	}
}

func (x *run) recordNested(ctx context.Context, r *armtemplate.PlannedResource, res *armtemplate.Result, runErr error) error {
	sub, rg, name, ok := nestedScope(r.ID)
	if !ok {
		return fmt.Errorf("not a deployment id: %s", r.ID)
	}
	tenantID := x.rec.TenantID
	if !strings.EqualFold(sub, x.rec.SubscriptionID) {
		ts, err := x.h.st.TenantsBySubscription(ctx, sub)
		if err != nil || len(ts) != 1 {
			return fmt.Errorf("the tenant of subscription %s: %v", sub, err)
		}
		tenantID = ts[0]
	}
	ctx = context.WithoutCancel(ctx)
	if old, err := x.h.st.GetDeployment(ctx, sub, rg, name); err == nil {
		od, err := decodeDeployment(old)
		if err != nil {
			return err
		}
		if !terminal(od.Properties.ProvisioningState) || !strings.EqualFold(old.TenantID, tenantID) {
			return fmt.Errorf("a deployment %s exists and runs or is another tenant's", r.ID)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := x.h.now().UTC()
	d := &deploymentDoc{ID: r.ID, Name: name, RunID: x.doc.RunID,
		Properties: deploymentProps{CorrelationID: x.doc.Properties.CorrelationID, Timestamp: stamp(now), Duration: duration(now.Sub(x.start)),
			Mode: "Incremental", Parameters: map[string]any{}}}
	if props, _ := r.Body["properties"].(map[string]any); props != nil {
		if m, _ := props["mode"].(string); strings.EqualFold(m, "complete") {
			d.Properties.Mode = "Complete"
		}
		if t, err := json.Marshal(props["template"]); err == nil {
			d.Template = t
		}
	}
	if r.Nested != nil {
		d.Properties.TemplateHash = r.Nested.TemplateHash()
		for _, v := range r.Nested.Parameters {
			pv := map[string]any{"type": armtemplate.TypeName(v.Type)}
			if !v.Secure {
				pv["value"] = v.Value
			}
			d.Properties.Parameters[v.Name] = pv
		}
	}
	if runErr != nil {
		d.Properties.ProvisioningState, d.Properties.Error = "Failed", templateError(runErr).Envelope()
	} else {
		d.Properties.ProvisioningState, d.Properties.Outputs = "Succeeded", map[string]any{}
		if res != nil {
			for _, o := range res.Outputs {
				d.Properties.Outputs[o.Name] = map[string]any{"type": o.Type, "value": o.Value}
			}
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return x.h.st.PutDeployment(ctx, store.Deployment{TenantID: tenantID, SubscriptionID: sub, ResourceGroup: rg, Name: name,
		State: d.Properties.ProvisioningState, Document: b, Created: now, Updated: now})
}

var _ armtemplate.NestedObserver = (*run)(nil)
