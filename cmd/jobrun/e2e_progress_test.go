package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// TestExecPTYProgress runs a script that draws a \r bar under --pty and
// checks the progress events a WebSocket viewer receives, the job's
// progress in GET /api/jobs/{id}, and jobrun ls.
func TestExecPTYProgress(t *testing.T) {
	script, _ := filepath.Abs("testdata/bar.sh")
	db := filepath.Join(t.TempDir(), "jobrun.db")
	t0 := time.Now()
	p := startJobrun(t, db, "exec", "--pty", "--addr", "127.0.0.1:0", "--linger", "10s", "--", script)
	base := p.baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	evs, status := readStream(ctx, t, base, 1, 0, 0)
	elapsed := time.Since(t0)
	if status != websocket.StatusNormalClosure {
		t.Errorf("stream closed with %v, want 1000", status)
	}
	checkContiguous(t, evs, 1)
	var prs []jobs.Event
	for i, e := range evs {
		switch e.Type {
		case jobs.TypeLine:
			if e.Stream != jobs.StreamTTY {
				t.Fatalf("seq %d on stream %q, want tty", e.Seq, e.Stream)
			}
		case jobs.TypeProgress:
			if i == 0 || evs[i-1].Type == jobs.TypeExit {
				t.Fatalf("progress event at seq %d does not follow output", e.Seq)
			}
			prs = append(prs, e)
		}
	}
	out := rebuild(evs, jobs.StreamTTY)
	if !bytes.Contains(out, []byte("downloading\r\n")) || !bytes.Contains(out, []byte("\r[##########] 100%\r\n")) {
		t.Errorf("tty output %q lacks the script's lines (with the terminal's \\r\\n) and final bar", out)
	}
	if len(prs) == 0 {
		t.Fatal("no progress event over the WebSocket")
	}
	// The first value follows the line event it was found in.
	first := prs[0]
	if prev := evs[first.Seq-2]; prev.Type != jobs.TypeLine || !strings.Contains(string(prev.Data), fmt.Sprintf("%d%%", int(first.Progress.Percent))) {
		t.Errorf("first progress %v follows %q, want the bar line it was found in", first.Progress.Percent, prev.Data)
	}
	// Coalesced: at most about four a second, the last value kept.
	if bound := int(elapsed/progress.DefaultInterval) + 2; len(prs) > bound {
		t.Errorf("%d progress events in %v, want at most %d", len(prs), elapsed, bound)
	}
	for i, e := range prs {
		if e.Progress.Source != progress.SourceAuto || e.Progress.State != progress.StateNormal {
			t.Errorf("progress %+v: want source auto, state normal", e.Progress)
		}
		if i > 0 && e.Progress.Percent < prs[i-1].Progress.Percent {
			t.Errorf("progress goes down: %v then %v", prs[i-1].Progress.Percent, e.Progress.Percent)
		}
	}
	if last := prs[len(prs)-1].Progress.Percent; last != 100 {
		t.Errorf("last progress %v, want 100", last)
	}

	// The job's JSON has the final progress (exec has exited: serve the
	// database).
	p.wait(t)
	resp, err := http.Get(serveDB(t, db) + "/api/jobs/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var job struct {
		Status   string
		Progress *struct {
			Percent float64  `json:"percent"`
			Message *string  `json:"message"`
			Time    string   `json:"time"`
			State   string   `json:"state"`
			ETA     *float64 `json:"eta_seconds"`
		} `json:"progress"`
	}
	if err := json.Unmarshal(body, &job); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/jobs/1: %d %s: %v", resp.StatusCode, body, err)
	}
	if job.Status != "succeeded" || job.Progress == nil || job.Progress.Percent != 100 || job.Progress.State != "normal" ||
		job.Progress.Message == nil || job.Progress.Time == "" || job.Progress.ETA != nil {
		t.Errorf("job JSON %s: want succeeded with progress 100, normal, a message and a time, no ETA", body)
	}

	p.cmd.Process.Signal(os.Interrupt) // end the linger early
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d; stderr %q", code, p.stderrString())
	}
	if !bytes.Equal(p.stdout.Bytes(), out) {
		t.Errorf("terminal passthrough (%d bytes) differs from the stored tty stream (%d bytes)", p.stdout.Len(), len(out))
	}
	ls, _ := jobrunOutput(t, db, "ls")
	if lines := strings.Split(strings.TrimSpace(string(ls)), "\n"); len(lines) != 2 ||
		!strings.HasSuffix(lines[0], "PROGRESS") || !strings.HasSuffix(lines[1], "100%") {
		t.Errorf("jobrun ls:\n%s\nwant a PROGRESS column showing 100%%", ls)
	}
	lsJSON, _ := jobrunOutput(t, db, "ls", "--json")
	if !bytes.Contains(lsJSON, []byte(`"progress":{"percent":100,`)) {
		t.Errorf("ls --json %s lacks the progress", lsJSON)
	}
}

func TestProgressCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"45"}, "::progress 45\n"},
		{[]string{"45.5%", "compiling", "foo.c"}, "::progress 45.5 compiling foo.c\n"},
		{[]string{"3/10", "step", "three"}, "::progress 3/10 step three\n"},
		{[]string{"0"}, "::progress 0\n"},
		{[]string{"100", "--", "-x"}, "::progress 100 -- -x\n"},
		{[]string{"7/7", "multi\nline   message"}, "::progress 7/7 multi line message\n"},
	} {
		out, code := jobrunOutput(t, db, append([]string{"progress"}, tc.args...)...)
		if code != 0 || string(out) != tc.want {
			t.Errorf("jobrun progress %q: exit %d, %q; want %q", tc.args, code, out, tc.want)
		}
	}
	for _, args := range [][]string{{}, {"101"}, {"-5"}, {"abc"}, {"3/0"}, {"4/3"}, {"45x"}, {"1e2"}} {
		cmd := exec.Command(binary, append([]string{"progress"}, args...)...)
		cmd.Env = append(os.Environ(), "JOBRUN_DB="+db)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || len(out) != 0 || !strings.HasPrefix(stderr.String(), "jobrun: progress: ") {
			t.Errorf("jobrun progress %q: %v, stdout %q, stderr %q; want exit 2 and a message", args, err, out, stderr.String())
		}
	}
}

// TestProgressCommandInJob: `jobrun progress` inside a job makes a
// directive line followed by its progress event; the stored log stays
// byte-exact.
func TestProgressCommandInJob(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	script := `echo start; "$0" progress 3/10 step three; echo end`
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c", script, binary)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderrString())
	}
	raw, _ := jobrunOutput(t, db, "logs", "1")
	if want := "start\n::progress 3/10 step three\nend\n"; string(raw) != want {
		t.Errorf("logs: %q, want %q", raw, want)
	}
	js, _ := jobrunOutput(t, db, "logs", "--json", "1")
	var evs []jobs.Event
	sc := bufio.NewScanner(bytes.NewReader(js))
	for sc.Scan() {
		var e jobs.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if len(evs) != 5 || !evs[1].Directive || evs[2].Type != jobs.TypeProgress || evs[2].Progress.Percent != 30 ||
		evs[2].Progress.Message != "step three" || evs[2].Progress.Source != "explicit" || evs[0].Directive {
		t.Errorf("events %s: want start, the directive line, its progress (30%%, step three), end, exit", js)
	}
}

// TestLogsFollowProgressBar: on a terminal, logs -f keeps a progress bar
// under the output; progress events are never written as output.
func TestLogsFollowProgressBar(t *testing.T) {
	dir := t.TempDir()
	db, gate := filepath.Join(dir, "jobrun.db"), filepath.Join(dir, "gate")
	// The job waits at 50% until the test has seen the bar.
	script := `echo one; echo "::progress 50 half way"; while [ ! -e "$0" ]; do sleep 0.02; done
echo two; echo "::progress 100"; sleep 0.3; echo three`
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c", script, gate)
	p.baseURL(t)

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	pty.Setsize(ptmx, &pty.Winsize{Cols: 60, Rows: 20})
	cmd := exec.Command(binary, "logs", "-f", "1")
	cmd.Env = append(os.Environ(), "JOBRUN_DB="+db)
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen syncBuffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&screen, ptmx) // ends with EIO when logs exits
		close(copied)
	}()
	waitFor(t, func() bool { return strings.Contains(screen.String(), "50% · half way") })
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("logs -f: %v; screen %q", err, screen.String())
	}
	<-copied
	p.wait(t)
	got := screen.String()
	for _, want := range []string{
		"\x1b[7m[##########----------] 50% · half way\x1b[0m", // the bar, in reverse video
		"\r\x1b[2K", // cleared before output
		"[####################] 100%",
		"three\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("screen %q lacks %q", got, want)
		}
	}
	if strings.HasSuffix(got, "\x1b[0m") {
		t.Errorf("screen %q ends with the bar: it should be cleared at the end", got)
	}
	// Without a terminal: the exact bytes, no bar.
	out, code := jobrunOutput(t, db, "logs", "-f", "1")
	if want := "one\n::progress 50 half way\ntwo\n::progress 100\nthree\n"; code != 0 || string(out) != want {
		t.Errorf("logs -f into a pipe: %d %q, want %q", code, out, want)
	}
}

// TestExecPTYOnTerminal: jobrun exec --pty on a terminal: the job's
// terminal has the size of jobrun's and follows its resizes, what is typed
// reaches the job through raw mode, jobrun's own lines still start at the
// left margin, and the terminal's mode is restored at the end.
func TestExecPTYOnTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	pty.Setsize(ptmx, &pty.Winsize{Cols: 100, Rows: 30})
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "jobrun.db")
	script := `stty size; i=0; while [ $i -lt 400 ]; do s=$(stty size); [ "$s" = "40 120" ] && break; sleep 0.05; i=$((i+1)); done
echo "resized to $s"; printf 'name? '; read x; echo "hello $x"; exit 3`
	cmd := exec.Command(binary, "exec", "--pty", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "JOBRUN_DB="+db)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var screen syncBuffer
	go io.Copy(&screen, ptmx)
	waitScreen := func(s string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(screen.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("terminal never showed %q; it shows %q", s, screen.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitScreen("30 100\r\n")
	pty.Setsize(ptmx, &pty.Winsize{Cols: 120, Rows: 40}) // SIGWINCH to jobrun
	waitScreen("resized to 40 120")
	waitScreen("name? ")
	ptmx.WriteString("alice\r")
	waitScreen("hello alice\r\n")
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("jobrun exit: %v, want 3", err)
	}
	if !regexp.MustCompile(`jobrun: job 1: http://\S+/jobs/1\r\n`).MatchString(screen.String()) {
		t.Errorf("jobrun's own line does not end with \\r\\n in raw mode: %q", screen.String())
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil || *after != *before {
		t.Errorf("terminal mode after jobrun: %+v, want it restored to %+v (%v)", after, before, err)
	}
	tty.Close()
	out, _ := jobrunOutput(t, db, "logs", "1")
	if !bytes.Contains(out, []byte("name? alice\r\nhello alice\r\n")) {
		t.Errorf("stored tty stream %q lacks the echoed input and the answer", out)
	}
}
