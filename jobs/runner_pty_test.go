package jobs_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/jobrun/jobrun/jobs"
)

// ptyChild is the child modes run on a pseudo-terminal.
func ptyChild(mode string) int {
	switch mode {
	case "ptyinfo":
		// What the child sees of its terminal, on stdout and stderr, then a
		// \r bar.
		ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
		if err != nil {
			fmt.Println("no window size:", err)
			return 1
		}
		fmt.Printf("tty %v %v %v\n", term.IsTerminal(0), term.IsTerminal(1), term.IsTerminal(2))
		fmt.Printf("TERM=%s size %dx%d\n", os.Getenv("TERM"), ws.Col, ws.Row)
		fmt.Fprintln(os.Stderr, "on stderr")
		for i := 0; i <= 100; i += 25 {
			fmt.Printf("\r[%-4s] %d%%", strings.Repeat("#", i/25), i)
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Println()
	case "ptycat":
		// Lines from the terminal until its end of file.
		sc := bufio.NewScanner(os.Stdin)
		n := 0
		for sc.Scan() {
			n++
			fmt.Printf("got %q\n", sc.Text())
		}
		fmt.Printf("eof after %d lines\n", n)
	case "ptywinch":
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		fmt.Println("ready")
		select {
		case <-winch:
		case <-time.After(time.Minute):
		}
		ws, _ := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
		fmt.Printf("winch %dx%d\n", ws.Col, ws.Row)
	case "ptykeys":
		// A line typed on jobrun's terminal, then Ctrl-C.
		fmt.Print("name? ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Printf("hello %s\n", strings.TrimSpace(line))
		time.Sleep(time.Minute)
	}
	return 0
}

// envWithout is the test's child environment for mode without name.
func envWithout(t *testing.T, mode, name string) ([]string, []string) {
	cmd, env := childCommand(t, mode)
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return cmd, out
}

func TestRunPTY(t *testing.T) {
	for _, tc := range []struct {
		name, term, wantTerm string
		cols, rows           int
		wantSize             string
	}{
		{"defaults", "", "xterm-256color", 0, 0, "80x24"},
		{"own TERM and size", "vt100", "vt100", 100, 30, "100x30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := openDB(t)
			var echo bytes.Buffer
			cmd, env := envWithout(t, "ptyinfo", "TERM")
			if tc.term != "" {
				env = append(env, "TERM="+tc.term)
			}
			r := &jobs.Runner{Store: db, PTY: true, Cols: tc.cols, Rows: tc.rows, Stdout: &echo, ProgressInterval: -1}
			run, err := r.Start(ctx, jobs.Spec{Command: cmd, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			res := wait(ctx, t, run)
			evs := allEvents(ctx, t, db, run.Job().ID)
			exit := checkLog(t, evs)
			checkExit(t, res, exit, jobs.StatusSucceeded, 0, "")
			for _, e := range evs {
				if e.Type == jobs.TypeLine && e.Stream != jobs.StreamTTY {
					t.Fatalf("seq %d on stream %s, want only tty", e.Seq, e.Stream)
				}
			}
			out := string(streamBytes(evs, jobs.StreamTTY))
			for _, want := range []string{
				"tty true true true\r\n", // the terminal turns "\n" into "\r\n"
				"TERM=" + tc.wantTerm + " size " + tc.wantSize + "\r\n",
				"on stderr\r\n",
				"\r[####] 100%\r\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output %q lacks %q", out, want)
				}
			}
			if echo.String() != out {
				t.Errorf("echo %q differs from the stored output %q", echo.String(), out)
			}
			if got := fmt.Sprint(percents(evs)); got != "[0 25 50 75 100]" {
				t.Errorf("progress %s, want the bar's [0 25 50 75 100]", got)
			}
		})
	}
}

func TestRunPTYInput(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	in, err := os.CreateTemp(t.TempDir(), "in")
	if err != nil {
		t.Fatal(err)
	}
	in.WriteString("one\ntwo\nno newline")
	in.Seek(0, 0)
	defer in.Close()
	for _, tc := range []struct {
		name  string
		stdin *os.File
		want  []string
	}{
		{"file", in, []string{`got "one"`, `got "two"`, `got "no newline"`, "eof after 3 lines"}},
		{"none", nil, []string{"eof after 0 lines"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := start(ctx, t, &jobs.Runner{Store: db, PTY: true, Stdin: tc.stdin}, "ptycat")
			res := wait(ctx, t, run)
			evs := allEvents(ctx, t, db, run.Job().ID)
			checkExit(t, res, checkLog(t, evs), jobs.StatusSucceeded, 0, "")
			out := string(streamBytes(evs, jobs.StreamTTY))
			for _, want := range tc.want {
				if !strings.Contains(out, want+"\r\n") {
					t.Errorf("output %q lacks %q", out, want)
				}
			}
		})
	}
}

func TestRunPTYResize(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	run := start(ctx, t, &jobs.Runner{Store: db, PTY: true}, "ptywinch")
	waitFor(ctx, t, db, run.Job().ID, "ready", contains(jobs.StreamTTY, "ready"))
	if err := run.Resize(120, 40); err != nil {
		t.Fatal(err)
	}
	wait(ctx, t, run)
	if out := streamBytes(allEvents(ctx, t, db, run.Job().ID), jobs.StreamTTY); !bytes.Contains(out, []byte("winch 120x40")) {
		t.Errorf("output %q, want the child to see SIGWINCH and 120x40", out)
	}
	if err := run.Resize(10, 10); err != nil {
		t.Errorf("Resize after the end: %v, want nothing done", err)
	}
	pipeRun := start(ctx, t, &jobs.Runner{Store: db}, "exit", "0")
	if err := pipeRun.Resize(10, 10); err == nil {
		t.Error("Resize of a job without a terminal: no error")
	}
	wait(ctx, t, pipeRun)
}

// TestRunPTYSignals: signals sent to jobrun reach the PTY job's process
// group and escalate after KillAfter, as in pipe mode.
func TestRunPTYSignals(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		code       int
		signal     string
	}{
		{"SIGTERM", "sleep", 128 + 15, "SIGTERM"},
		{"ignored SIGTERM escalates", "ignore", 128 + 9, "SIGKILL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := openDB(t)
			run := start(ctx, t, &jobs.Runner{Store: db, PTY: true, KillAfter: 200 * time.Millisecond}, tc.mode)
			waitFor(ctx, t, db, run.Job().ID, "ready", contains(jobs.StreamTTY, "ready"))
			run.Cancel()
			res := wait(ctx, t, run)
			checkExit(t, res, checkLog(t, allEvents(ctx, t, db, run.Job().ID)), jobs.StatusCanceled, tc.code, tc.signal)
		})
	}
}

// TestRunPTYOnTerminal: jobrun on a terminal runs a PTY job: its terminal
// is raw while the job runs, so a typed line and Ctrl-C reach the job's
// own terminal (Ctrl-C kills the job there, not jobrun), and it is
// restored afterwards.
func TestRunPTYOnTerminal(t *testing.T) {
	t.Setenv("JOBS_TEST_PTY", "1")
	ctx := testCtx(t)
	ptmx, screen := startOnTerminal(t, "ptykeys")
	waitScreen(ctx, t, screen, "name? ")
	ptmx.WriteString("alice\r") // Enter sends CR; the job's terminal maps it to NL
	waitScreen(ctx, t, screen, "hello alice")
	ptmx.Write([]byte{3}) // ^C
	waitScreen(ctx, t, screen, "terminal restored")
	for _, want := range []string{"result canceled 130", "terminal restored true"} {
		if !strings.Contains(screen.String(), want) {
			t.Errorf("terminal shows %q, want %q in it", screen.String(), want)
		}
	}
}

// TestRunPTYInBackground: jobrun in the background of its terminal leaves
// the terminal alone (reading it or making it raw would stop jobrun with
// SIGTTIN or SIGTTOU): the job reads an end of file.
func TestRunPTYInBackground(t *testing.T) {
	t.Setenv("JOBS_TEST_PTY", "1")
	t.Setenv("JOBS_TEST_BACKGROUND", "1")
	ctx := testCtx(t)
	_, screen := startOnTerminal(t, "ptycat")
	waitScreen(ctx, t, screen, "terminal restored")
	for _, want := range []string{"eof after 0 lines", "result succeeded 0", "terminal restored true"} {
		if !strings.Contains(screen.String(), want) {
			t.Errorf("terminal shows %q, want %q in it", screen.String(), want)
		}
	}
}
