package arm

// The deployment history of a scope is bounded as Azure bounds it
// (learn.microsoft.com/azure/azure-resource-manager/templates/deployment-history-deletions):
// a resource group or subscription keeps at most 800 deployments; once a
// new deployment would make more than 700, the oldest are deleted until
// 600 remain (with the new one), under the deployer's identity, which
// needs Microsoft.Resources/deployments/delete, and never while a lock
// is on the scope or above it, nor a deployment that still runs. A scope
// already at 800 refuses the next deployment (DeploymentQuotaExceeded);
// the cleanup runs at once, so a retry may succeed.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const (
	// MaxDeploymentHistory is the most deployments one scope keeps.
	MaxDeploymentHistory = 800
	// deploymentHistoryHigh is the count a new deployment may not pass
	// without the oldest being deleted, down to deploymentHistoryLow.
	deploymentHistoryHigh = 700
	deploymentHistoryLow  = 600
)

// makeRoomInHistory is called before a new deployment (a name the scope
// does not hold) is stored at the request's scope: it deletes the oldest
// finished deployments when the new one would exceed the high mark and
// the caller may, and refuses the deployment when the scope is full.
func (h *Handler) makeRoomInHistory(rq *rp.Request, tenantID string) error {
	list, err := h.st.ListDeployments(rq.Ctx, rq.Path.Sub, rq.Path.RG)
	if err != nil {
		return rp.InternalError(err)
	}
	n := len(list)
	if n+1 <= deploymentHistoryHigh {
		return nil
	}
	scope := "/subscriptions/" + rq.Path.Sub
	if rq.Path.RG != "" {
		scope += "/resourceGroups/" + rq.Path.RG
	}
	deleted := 0
	if ok, err := h.mayGroom(rq, scope); err != nil {
		return err
	} else if ok {
		if deleted, err = h.deleteOldest(rq.Ctx, rq, tenantID, scope, list, n+1-deploymentHistoryLow); err != nil {
			return err
		}
	}
	if n >= MaxDeploymentHistory {
		// Azure fails this deployment even as the cleanup starts.
		return rp.NewError(http.StatusBadRequest, "DeploymentQuotaExceeded",
			"Creating the deployment '%s' would exceed the quota of '%d'. The current deployment count is '%d'. Please delete some deployments before creating a new one, or see https://aka.ms/800LimitFix for information on managing deployment limits.",
			rp.SafeText(rq.Path.Name), MaxDeploymentHistory, n-deleted)
	}
	return nil
}

// mayGroom reports whether the deployer may delete deployments at scope
// and no management lock at or above it stops the deletion.
func (h *Handler) mayGroom(rq *rp.Request, scope string) (bool, error) {
	d, err := rq.Decide(actionDeploymentDelete, scope)
	if err != nil || !d.Allowed {
		return false, err
	}
	locks, err := h.st.ListManagementLocks(rq.Ctx, rq.Path.Sub)
	if err != nil {
		return false, rp.InternalError(err)
	}
	key := strings.ToLower(scope)
	for _, l := range locks {
		if underOrAt(key, strings.ToLower(l.Scope)) {
			return false, nil
		}
	}
	return true, nil
}

// deleteOldest deletes up to want of the oldest finished deployments of
// list (by their last change), in one transaction with an audit record
// of the deployer, and answers how many went.
func (h *Handler) deleteOldest(ctx context.Context, rq *rp.Request, tenantID, scope string, list []store.Deployment, want int) (int, error) {
	done := slices.DeleteFunc(slices.Clone(list), func(d store.Deployment) bool {
		return !strings.EqualFold(d.TenantID, tenantID) || slices.Contains(store.DeploymentUnfinished, d.State)
	})
	slices.SortStableFunc(done, func(a, b store.Deployment) int { return a.Updated.Compare(b.Updated) })
	if want > len(done) {
		want = len(done)
	}
	if want <= 0 {
		return 0, nil
	}
	err := h.dir.InTx(ctx, func(dir *directory.Service) error {
		tx := dir.Store()
		for _, d := range done[:want] {
			if err := tx.DeleteDeployment(ctx, d.SubscriptionID, d.ResourceGroup, d.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		rec := h.auditRecord(rq, tenantID, audit.Success)
		rec.Action, rec.Target = actionDeploymentDelete, scope
		rec.Detail = fmt.Sprintf("%s; automatic deletion of the %d oldest deployments of the history", rec.Detail, want)
		return audit.New(tx, h.log).Record(ctx, rec)
	})
	if err != nil {
		return 0, rp.InternalError(err)
	}
	return want, nil
}
