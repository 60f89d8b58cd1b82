package fanout_test

import (
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/broker/wireonly"
)

// TestWireClientOnly: the broker talks to the cloud over the wire only (see
// package wireonly).
func TestWireClientOnly(t *testing.T) { wireonly.Check(t, ".") }
