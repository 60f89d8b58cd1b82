package directory

import "context"

// This file holds additions the graph package needs. They are additive:
// nothing here changes how the rest of the directory behaves.

// InTx runs fn with a Service whose every store call is part of one
// transaction, committed when fn returns nil and rolled back otherwise.
// The graph package uses it so that a change and its audit record (written
// through tx.Store()) commit together, and so that a check such as "the
// caller owns this application" and the change it allows see the same data.
func (s *Service) InTx(ctx context.Context, fn func(tx *Service) error) error {
	return s.inTx(ctx, fn)
}
