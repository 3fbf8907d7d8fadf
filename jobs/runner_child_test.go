package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
)

// childMode makes the test binary act as a job's command (see child)
// instead of running tests: the runner tests run real processes.
const childMode = "JOBS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childMode); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// childCommand is the command line that runs the test binary as child mode.
func childCommand(t *testing.T, mode string, args ...string) ([]string, []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A race-enabled child would sleep 1s at exit to let other threads
	// report; it has nothing to report.
	env := append(os.Environ(), childMode+"="+mode, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	return append([]string{exe}, args...), env
}

// mixedOutput is what child mode "mixed" writes to stdout and stderr, in
// several writes: terminators of every kind, unicode, invalid UTF-8, a line
// longer than MaxLineBytes with a multibyte character across the cut, and
// no final newline.
func mixedOutput() (stdout, stderr []string) {
	long := strings.Repeat("x", jobs.MaxLineBytes-1) + "€" + strings.Repeat("y", 1000) + "\n"
	stdout = []string{
		"first line\n", "crlf line\r\n", "10%\r", "50%\r", "100%\n",
		"unicode: héllo wörld 😀\n", "invalid: \xff\xfe\xe2\x82\n",
		long, "partial ", "then the rest\n", "no final newline",
	}
	stderr = []string{
		"warning: one\n", "err\r\n", "\n", "progress 1\rprogress 2\r", "done\n", "tail without newline",
	}
	return stdout, stderr
}

// child runs a child mode and returns its exit code.
func child(mode string) int {
	switch mode {
	case "mixed":
		out, errs := mixedOutput()
		for i := range max(len(out), len(errs)) {
			if i < len(out) {
				os.Stdout.WriteString(out[i])
			}
			if i < len(errs) {
				os.Stderr.WriteString(errs[i])
			}
		}
		return 0
	case "exit":
		fmt.Println("exiting with", os.Args[1])
		var code int
		fmt.Sscan(os.Args[1], &code)
		return code
	case "sigterm":
		fmt.Println("killing myself")
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(time.Minute)
		return 1
	case "sleep":
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return 0
	case "ignore":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return 0
	case "grandchild":
		// A grandchild that inherits stdout and outlives the child, as a
		// daemon started without redirecting its output would.
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childMode+"=sleep")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("grandchild %d\n", cmd.Process.Pid)
		return 0
	case "env":
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "JOBRUN_") {
				fmt.Println(kv)
			}
		}
		return 0
	case "twophase":
		// A line, then another once stdin has a line.
		fmt.Println("one")
		var s string
		fmt.Scanln(&s)
		fmt.Println("two")
		return 0
	case "pidsleep":
		fmt.Printf("pid %d\n", os.Getpid())
		time.Sleep(time.Minute)
		return 0
	case "ttyread":
		// Run on a terminal: report whether we are its foreground process
		// group, then read a line from it.
		pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
		fmt.Printf("foreground %v\n", err == nil && pgrp == unix.Getpgrp())
		fmt.Print("name? ")
		var name string
		fmt.Scanln(&name)
		fmt.Printf("hello %s\n", name)
		return 0
	case "progress", "progressfrag", "progressbar", "progressquiet":
		return progressChild(mode)
	case "ptyinfo", "ptycat", "ptywinch", "ptykeys":
		return ptyChild(mode)
	case "runner":
		return runner()
	case "cat":
		io.Copy(os.Stdout, os.Stdin)
		return 0
	case "shortlines":
		// os.Args[1] lines "ab\n" in one write: three bytes each, so that
		// most reads end inside a line (a fragment, which arms the
		// recorder's flush timer).
		var n int
		fmt.Sscan(os.Args[1], &n)
		os.Stdout.Write(bytes.Repeat([]byte("ab\n"), n))
		return 0
	case "tinylines":
		// os.Args[1] lines "a\n" in one write: many events, few bytes.
		var n int
		fmt.Sscan(os.Args[1], &n)
		os.Stdout.Write(bytes.Repeat([]byte("a\n"), n))
		return 0
	case "flood":
		// os.Args[1] lines of 60 bytes, in writes of about 64 KiB.
		var n int
		fmt.Sscan(os.Args[1], &n)
		os.Stdout.Write(floodOutput(n))
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	return 2
}

// runner is child mode "runner": a jobrun of its own, so that tests can
// give it a terminal or kill it. It runs the test binary in child mode
// $JOBS_TEST_JOB_MODE as a job in the database $JOBS_TEST_DB, with its own
// stdin, stdout and stderr, and reports how the job ended and whether it
// got the terminal's foreground back.
func runner() int {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, os.Getenv("JOBS_TEST_DB"), sqlite.Options{Host: "testhost"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	r := &jobs.Runner{Store: db, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ErrOut: os.Stderr,
		PTY: os.Getenv("JOBS_TEST_PTY") != ""}
	before, _ := unix.IoctlGetTermios(0, unix.TCGETS)
	if os.Getenv("JOBS_TEST_BACKGROUND") != "" {
		// Give the terminal's foreground to another process group, as a
		// shell does to the job after "jobrun ... &".
		fg := exec.Command(os.Args[0])
		fg.Env = append(os.Environ(), childMode+"=sleep")
		fg.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := fg.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer fg.Process.Kill()
		if err := unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, fg.Process.Pid); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	env := append(os.Environ(), childMode+"="+os.Getenv("JOBS_TEST_JOB_MODE"))
	run, err := r.Start(ctx, jobs.Spec{Command: []string{os.Args[0]}, Env: env})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := run.Wait()
	fmt.Printf("result %s %d\n", res.Status, res.ExitCode)
	if after, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil && before != nil {
		fmt.Printf("terminal restored %v\n", *after == *before)
	}
	if pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil {
		fmt.Printf("foreground back %v\n", pgrp == unix.Getpgrp())
	}
	return 0
}

// floodOutput is what child mode "flood" writes: n numbered 60-byte lines.
func floodOutput(n int) []byte {
	tail := strings.Repeat("z", 50) + "\n"
	b := make([]byte, 0, n*60)
	for i := range n {
		b = fmt.Appendf(b, "%08d ", i)
		b = append(b, tail...)
	}
	return b
}
