package arm

import (
	"log/slog"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// door is the Handler as the providers see it (rp.Door).
type door struct{ h *Handler }

func (d door) Store() store.Store            { return d.h.st }
func (d door) Directory() *directory.Service { return d.h.dir }
func (d door) Now() time.Time                { return d.h.now() }
func (d door) Logger() *slog.Logger          { return d.h.log }
func (d door) PageSize() int                 { return d.h.pageSize }

func (d door) ScopeTenant(rq *rp.Request) (string, error) { return d.h.scopeTenant(rq) }

func (d door) Decide(rq *rp.Request, action, scope string) (rbac.Decision, error) {
	if dec, ok := platformDecision(rq, scope); ok { // a managed application's installation (deployments_run.go)
		return dec, nil
	}
	return d.h.decide(rq, action, scope)
}

func (d door) Change(rq *rp.Request, tenantID string, fn func(tx store.Store, dir *directory.Service) error) error {
	return d.h.change(rq, tenantID, fn)
}

func (d door) Record(rq *rp.Request, tenantID, result string) {
	_ = d.h.audit.Record(rq.Ctx, d.h.auditRecord(rq, tenantID, result))
}

// DeleteGroupResources runs every provider's DeleteGroup hook.
func (d door) DeleteGroupResources(rq *rp.Request, tx store.Store, dir *directory.Service, g store.ResourceGroup) error {
	for _, p := range d.h.providers {
		if p.DeleteGroup == nil {
			continue
		}
		if err := p.DeleteGroup(rq, tx, dir, g); err != nil {
			return err
		}
	}
	return deleteGroupLocks(rq, tx, g) // locks.go
}
