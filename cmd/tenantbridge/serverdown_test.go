package main

import (
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// TestServerNotRunning: once the server of a data directory has stopped,
// every kind of command (operator API, Graph, Resource Manager, the
// audit log) fails with one line naming the address and asking whether
// tenantbridge serve runs, not with a credential's or a dialer's words.
func TestServerNotRunning(t *testing.T) {
	dir, stop := startStoppable(t, server.Config{})
	ok(t, dir, "tenant", "create", "acme")
	stop()
	for _, args := range [][]string{
		{"tenant", "list"},
		{"ad", "app", "list", "--tenant", "acme"},
		{"keyvault", "list", "--tenant", "acme"},
		{"audit", "--tenant", "acme"},
	} {
		fails(t, dir, "does not answer: is tenantbridge serve running?", args...)
	}
	// A usage error stays a usage error.
	fails(t, dir, "required flag", "login", "--tenant", "acme")
}

// TestUnknownSubcommand: a typo below a group fails with cobra's
// suggestion, as a typo at the root does, instead of printing help and
// exiting 0.
func TestUnknownSubcommand(t *testing.T) {
	dir := t.TempDir()
	fails(t, dir, `unknown command "ap" for "tenantbridge ad"; did you mean app?`, "ad", "ap", "list")
	fails(t, dir, `unknown command "queu" for "tenantbridge servicebus"; did you mean queue?`, "servicebus", "queu", "list")
	fails(t, dir, `unknown command "frob" for "tenantbridge ad app"`, "ad", "app", "frob")
	if out := ok(t, dir, "ad"); !strings.Contains(out, "Available Commands") {
		t.Errorf("tenantbridge ad alone: %s", out)
	}
}
