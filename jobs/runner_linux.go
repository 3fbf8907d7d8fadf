package jobs

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// setPdeathsig makes the kernel kill the child when jobrun dies, even by
// SIGKILL. (Strictly, when the thread that started it ends; Go does not
// end its threads while the process runs.) Grandchildren that start their
// own session or process group on purpose are not covered.
func setPdeathsig(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

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
