//go:build unix

package jobs

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// procAttr puts the child in its own process group, so that signals reach
// its whole tree. When stdin is the terminal and jobrun is its foreground
// process group, the child's group takes the foreground, as in a shell: it
// can read the terminal and Ctrl-C goes to it. It returns the terminal's
// fd in that case, else -1.
func procAttr(stdin *os.File) (*syscall.SysProcAttr, int) {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(attr)
	if stdin == nil {
		return attr, -1
	}
	fd := int(stdin.Fd())
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || pgrp != unix.Getpgrp() {
		return attr, -1
	}
	attr.Foreground = true
	attr.Ctty = fd
	return attr, fd
}

// reclaimForeground makes jobrun's process group the terminal's foreground
// again after the child's group had it. jobrun is then a background group,
// which the terminal would stop with SIGTTOU unless it is ignored.
func reclaimForeground(fd int) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, unix.Getpgrp())
}

// signalName is the name of a signal as in the exit event: "SIGTERM".
func signalName(s syscall.Signal) string {
	if name := unix.SignalName(s); name != "" {
		return name
	}
	return "SIG" + s.String()
}
