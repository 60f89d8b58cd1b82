//go:build !unix

package main

import (
	"os/exec"
	"time"
)

// boundTool bounds the wait for the output pipes of cmd's descendants
// once its context ends (process groups are unix's; see the unix
// version).
func boundTool(cmd *exec.Cmd) { cmd.WaitDelay = 10 * time.Second }
