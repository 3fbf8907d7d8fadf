//go:build unix

package jobs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// PTY mode (Runner.PTY): the child runs on a new pseudo-terminal, of which
// it is the session leader, so that tools that draw progress only on a
// terminal draw it. jobrun reads the terminal's output (one stream,
// StreamTTY), and writes what it reads from Runner.Stdin to the
// terminal's input. When Stdin is itself a terminal, it is put in raw mode
// for the job's life, so that every key (Ctrl-C included) reaches the
// child's terminal as typed and the child's line discipline acts on it;
// it is restored once the job's output has been echoed (in Wait), since
// that output was made for a raw terminal.

// Default window size of a job's pseudo-terminal.
const (
	DefaultCols = 80
	DefaultRows = 24
)

// defaultTerm is the child's TERM when its environment has none.
const defaultTerm = "xterm-256color"

// ptyIO is a job's pseudo-terminal: jobrun's side (master) and the child's
// (tty, closed once the child has its copies).
type ptyIO struct {
	master, tty *os.File
}

// openPTY opens a pseudo-terminal of cols x rows (0: the defaults).
func openPTY(cols, rows int) (*ptyIO, error) {
	if cols < 0 || rows < 0 || cols > 0xffff || rows > 0xffff {
		return nil, fmt.Errorf("window size %dx%d: %w", cols, rows, ErrInvalid)
	}
	master, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open a pseudo-terminal: %w", err)
	}
	if err := setSize(master, cols, rows); err != nil {
		master.Close()
		tty.Close()
		return nil, err
	}
	return &ptyIO{master: master, tty: tty}, nil
}

func setSize(master *os.File, cols, rows int) error {
	if cols == 0 {
		cols = DefaultCols
	}
	if rows == 0 {
		rows = DefaultRows
	}
	if err := pty.Setsize(master, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		return fmt.Errorf("set the window size: %w", err)
	}
	return nil
}

// ptyProcAttr makes the child the leader of a new session whose
// controlling terminal is its stdin, the pseudo-terminal. Being a session
// leader, it also leads a process group of its own, which signals reach
// as in pipe mode.
func ptyProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	setPdeathsig(attr)
	return attr
}

// ptyEnv sets TERM in env unless it is set.
func ptyEnv(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "TERM=") && kv != "TERM=" {
			return env
		}
	}
	return append(env, "TERM="+defaultTerm)
}

// ptyInput is what a PTY job's input comes from: in, unless in is a
// terminal of which jobrun is not the foreground process group (jobrun
// runs in the background of a shell), where reading or setting raw mode
// would stop jobrun (SIGTTIN, SIGTTOU): then nothing.
func ptyInput(in *os.File) *os.File {
	if in == nil {
		return nil
	}
	fd, ok := fileFd(in)
	if !ok || !term.IsTerminal(fd) {
		return in
	}
	if pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || pgrp != unix.Getpgrp() {
		return nil
	}
	return in
}

// makeRaw puts the terminal in raw mode if in is one, and remembers how to
// restore it (RestoreTerminal).
func (run *Run) makeRaw(in *os.File) error {
	fd, ok := fileFd(in)
	if !ok || !term.IsTerminal(fd) {
		return nil
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("raw mode on the terminal: %w", err)
	}
	run.termFd, run.termState = fd, state
	run.rawMode.Store(true)
	return nil
}

// RestoreTerminal restores the terminal that a PTY job put in raw mode,
// at once; Wait does it anyway. It is safe to call at
// any time, more than once, from any goroutine: callers put it on their
// exit paths (a deferred call, a signal handler).
func (run *Run) RestoreTerminal() {
	run.restoreOnce.Do(func() {
		if run.termState != nil {
			term.Restore(run.termFd, run.termState)
			run.rawMode.Store(false)
		}
	})
}

// Resize sets the window size of a PTY job's terminal; the child gets
// SIGWINCH. It is an error wrapping ErrInvalid for a job without one, and
// does nothing once the job's output is read to the end.
func (run *Run) Resize(cols, rows int) error {
	if run.pty == nil {
		return fmt.Errorf("resize job %d: it has no terminal: %w", run.job.ID, ErrInvalid)
	}
	if cols <= 0 || rows <= 0 || cols > 0xffff || rows > 0xffff {
		return fmt.Errorf("resize job %d to %dx%d: %w", run.job.ID, cols, rows, ErrInvalid)
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.ptyClosed {
		return nil
	}
	return setSize(run.pty.master, cols, rows)
}

// closePTY closes jobrun's side of the terminal once its output is read.
func (run *Run) closePTY() {
	run.mu.Lock()
	defer run.mu.Unlock()
	if !run.ptyClosed {
		run.ptyClosed = true
		run.pty.master.Close()
	}
}

// startInput starts the goroutine that copies Stdin to the terminal, or,
// without Stdin, gives the child an end of file on its terminal at once
// (as /dev/null would). stopInput ends it.
func (run *Run) startInput(in *os.File) error {
	if in == nil {
		run.pty.master.Write([]byte{ctrlD})
		return nil
	}
	stopR, stopW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	run.inputStop, run.inputDone = stopW, make(chan struct{})
	go func() {
		defer close(run.inputDone)
		defer stopR.Close()
		defer run.guard()
		run.copyInput(in, stopR)
	}()
	return nil
}

// stopInput ends the input goroutine and waits for it.
func (run *Run) stopInput() {
	if run.inputStop == nil {
		return
	}
	run.inputStop.Close()
	run.pty.master.SetWriteDeadline(time.Now()) // a child that never read its input
	<-run.inputDone
}

const ctrlD = 4 // VEOF: end of file for a terminal in canonical mode

// copyInput copies in to the terminal until in ends or stop is closed.
// It waits with poll(2) on both, so that it never blocks in a read that
// nothing could interrupt (jobrun's stdin is usually a blocking
// terminal, shared with the shell). When in ends, the child gets an end
// of file: VEOF, twice if a partial line must first be pushed through.
func (run *Run) copyInput(in, stop *os.File) {
	inFd, ok1 := fileFd(in)
	stopFd, ok2 := fileFd(stop)
	if !ok1 || !ok2 {
		return
	}
	buf := make([]byte, 32<<10)
	last := byte('\n')
	fds := []unix.PollFd{{Fd: int32(inFd), Events: unix.POLLIN}, {Fd: int32(stopFd), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(inFd, buf)
		if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
			continue
		}
		if n > 0 {
			if _, werr := run.pty.master.Write(buf[:n]); werr != nil {
				return
			}
			last = buf[n-1]
		}
		if n <= 0 || err != nil {
			eof := []byte{ctrlD}
			if last != '\n' {
				eof = append(eof, ctrlD)
			}
			run.pty.master.Write(eof)
			return
		}
	}
}

// fileFd returns f's descriptor without switching it to blocking mode as
// f.Fd() would. The caller keeps f open while it uses the descriptor.
func fileFd(f *os.File) (int, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd := -1
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}
