package server_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// TestOneServerPerDataDirectory: a second server on a data directory in
// use is refused with one line naming the first; once the first has
// stopped, the directory is free again.
func TestOneServerPerDataDirectory(t *testing.T) {
	r := start(t, server.Config{})
	_, err := server.New(context.Background(), server.Config{DataDir: r.dir, Listen: "127.0.0.1:0"})
	want := fmt.Sprintf("another tenantbridge server (process %d) is running on %s", os.Getpid(), r.dir)
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a second server on the data directory: %v; want one line with %q", err, want)
	}
	r.stop()
	again := start(t, server.Config{DataDir: r.dir})
	if again.dir != r.dir {
		t.Fatalf("restarted on %s", again.dir)
	}
}
