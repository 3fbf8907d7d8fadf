package jobs_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// startRunner starts child mode "runner" (a jobrun of its own) running
// job mode jobMode, with a database in a temporary directory.
func startRunner(t *testing.T, jobMode string, setup func(*exec.Cmd)) *exec.Cmd {
	t.Helper()
	args, env := childCommand(t, "runner")
	cmd := exec.Command(args[0])
	cmd.Env = append(env, "JOBS_TEST_DB="+filepath.Join(t.TempDir(), "jobrun.db"), "JOBS_TEST_JOB_MODE="+jobMode)
	setup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// startOnTerminal starts a runner whose stdin, stdout and stderr are a new
// terminal of which it is the controlling process, as a shell's job is,
// and returns the terminal's other side and everything it shows.
func startOnTerminal(t *testing.T, jobMode string) (*os.File, *syncBuffer) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	startRunner(t, jobMode, func(cmd *exec.Cmd) {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	})
	tty.Close()
	var screen syncBuffer
	go io.Copy(&screen, ptmx) // ends with EIO when the runner is gone
	return ptmx, &screen
}

// waitScreen waits until the terminal shows s.
func waitScreen(ctx context.Context, t *testing.T, screen *syncBuffer, s string) {
	t.Helper()
	for !strings.Contains(screen.String(), s) {
		select {
		case <-ctx.Done():
			t.Fatalf("terminal never showed %q; it shows %q", s, screen.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestRunTerminalForeground: on a terminal, the job's process group gets
// the foreground, so it can read the terminal (an interactive prompt);
// jobrun takes the foreground back when the job ends.
func TestRunTerminalForeground(t *testing.T) {
	ctx := testCtx(t)
	ptmx, screen := startOnTerminal(t, "ttyread")
	waitScreen(ctx, t, screen, "name? ")
	if !strings.Contains(screen.String(), "foreground true") {
		t.Errorf("the job is not the terminal's foreground process group: %q", screen.String())
	}
	ptmx.WriteString("alice\n")
	waitScreen(ctx, t, screen, "foreground back")
	for _, want := range []string{"hello alice", "result succeeded 0", "foreground back true"} {
		if !strings.Contains(screen.String(), want) {
			t.Errorf("terminal shows %q, want %q in it", screen.String(), want)
		}
	}
}

// TestRunTerminalCtrlC: Ctrl-C on the terminal stops the job as in a
// shell: it dies of SIGINT and counts as canceled.
func TestRunTerminalCtrlC(t *testing.T) {
	ctx := testCtx(t)
	ptmx, screen := startOnTerminal(t, "sleep")
	waitScreen(ctx, t, screen, "ready")
	ptmx.Write([]byte{3}) // ^C
	waitScreen(ctx, t, screen, "foreground back")
	for _, want := range []string{"result canceled 130", "foreground back true"} {
		if !strings.Contains(screen.String(), want) {
			t.Errorf("terminal shows %q, want %q in it", screen.String(), want)
		}
	}
}

// TestRunnerKilled: when jobrun dies of SIGKILL, its child dies too
// (parent-death signal).
func TestRunnerKilled(t *testing.T) {
	ctx := testCtx(t)
	var out io.ReadCloser
	runner := startRunner(t, "pidsleep", func(cmd *exec.Cmd) {
		var err error
		if out, err = cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	var pid int
	if _, serr := fmt.Sscanf(line, "pid %d\n", &pid); err != nil || serr != nil {
		t.Fatalf("runner output %q: %v %v", line, err, serr)
	}
	runner.Process.Kill()
	runner.Wait()
	for alive(pid) {
		select {
		case <-ctx.Done():
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("job process %d outlived its killed runner", pid)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// alive reports whether process pid exists and is not a zombie (a zombie
// is dead; only its parent, here whoever adopted it, has not reaped it).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
