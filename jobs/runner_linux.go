package jobs

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// setPdeathsig makes the kernel kill the child when jobrun dies, even by
// SIGKILL. Strictly, the signal comes when the thread that started the
// child ends, which is why startOnLockedThread keeps that thread.
// Grandchildren that start their own session or process group on purpose
// are not covered.
func setPdeathsig(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

// startOnLockedThread starts cmd from a goroutine locked to its OS thread
// and keeps the thread until release is closed (when the child has
// exited). Go ends a thread when a goroutine exits while locked to it
// (golang/go#27505); if that were the thread that forked the child, the
// parent-death signal would kill a healthy child. A thread held here can
// be ended by nobody else.
func startOnLockedThread(cmd *exec.Cmd, release <-chan struct{}) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread() // unlocked, the thread goes back to the pool
		err := cmd.Start()
		errc <- err
		if err == nil {
			<-release
		}
	}()
	return <-errc
}

// waitExited blocks until the process pid has exited, without reaping it:
// until it is reaped its pid, and so its process group id, cannot be
// reused, which makes signaling the group safe. It reports whether it
// waited.
func waitExited(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return err == nil
		}
	}
}
