//go:build unix && !linux

package jobs

import (
	"os/exec"
	"syscall"
)

// setPdeathsig: only Linux has a parent-death signal.
func setPdeathsig(*syscall.SysProcAttr) {}

// waitExited cannot wait without reaping here; the child is marked exited
// after it is reaped, which leaves a tiny window in which a signal could
// reach a reused process group id.
func waitExited(int) bool { return false }

// startOnLockedThread starts cmd; without a parent-death signal the thread
// that starts it does not matter.
func startOnLockedThread(cmd *exec.Cmd, _ <-chan struct{}) error { return cmd.Start() }
