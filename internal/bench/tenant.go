package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// openBench validates opts and opens the bench on them.
func openBench(opts TokenOptions) (*bench, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return newBench(opts)
}

// createTenant creates the bench tenant named name (a random name when
// empty) and says which name it asked for.
func (b *bench) createTenant(ctx context.Context, name string) (*azclient.Tenant, string, error) {
	if name == "" {
		name = randomTenantName()
	}
	b.logf("Creating bench tenant %s...", name)
	ten, err := b.op.CreateTenant(ctx, name)
	if err != nil {
		return nil, name, fmt.Errorf("creating the bench tenant %s: %s", name, azclient.Describe(err))
	}
	return ten, name, nil
}

// deleteTenant deletes the bench tenant, even when ctx has ended (Ctrl-C),
// after first (if any) has freed what must go before it. It says whether
// the tenant was deleted and, if not, why.
func (b *bench) deleteTenant(ctx context.Context, ten *azclient.Tenant, first func(context.Context)) (deleted bool, cleanupErr string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if first != nil {
		first(cctx)
	}
	if err := b.op.DeleteTenant(cctx, ten.TenantID); err != nil {
		cleanupErr = azclient.Describe(err)
		b.logf("Could not delete bench tenant %s: %s", ten.Name, cleanupErr)
		return false, cleanupErr
	}
	b.logf("Deleted bench tenant %s.", ten.Name)
	return true, ""
}

// releaseTenant ends a run in the bench tenant: it keeps the tenant,
// saying so, when keep, and otherwise deletes it (deleteTenant).
func (b *bench) releaseTenant(ctx context.Context, ten *azclient.Tenant, keep bool) (deleted bool, cleanupErr string) {
	if keep {
		b.logf("Keeping bench tenant %s (%s).", ten.Name, ten.TenantID)
		return false, ""
	}
	return b.deleteTenant(ctx, ten, nil)
}

// finish returns the protocol the transport negotiated and, when the
// server reported its memory at rest, its memory after the load.
func (b *bench) finish(ctx context.Context, atRest *ServerMemory) (protocol string, after *ServerMemory) {
	if p := b.load.proto.Load(); p != nil {
		protocol = *p
	}
	if atRest != nil {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		after, _ = b.serverMemory(mctx)
		cancel()
	}
	return protocol, after
}
