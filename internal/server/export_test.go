package server

import (
	"context"
	"time"
)

// RefreshKeysAt runs one round of the background key maintenance at now.
func (s *Server) RefreshKeysAt(ctx context.Context, now time.Time) { s.refreshKeys(ctx, now) }
