//go:build unix

package main

import (
	"os/exec"
	"syscall"
	"time"
)

// boundTool makes cmd, a real tool the test drives (az, node --test), the
// leader of a process group of its own and, when its context ends, kills
// the whole group, not only the direct child: az's Python and node's
// test-file workers would otherwise live on and hold the output pipes
// open, so that Wait, and the test, outlast the context's deadline.
// WaitDelay bounds the wait for the pipes in any case.
func boundTool(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
}
