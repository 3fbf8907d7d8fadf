package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/postgres/pgtest"
)

// binary is the jobrun executable built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == crashChildArg {
		os.Exit(crashChild(os.Args[2]))
	}
	dir, err := os.MkdirTemp("", "jobrun-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "jobrun")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building jobrun:", err)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running jobrun process whose stderr is captured.
type proc struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	mu     sync.Mutex
	stderr bytes.Buffer
	urlCh  chan string
	done   chan struct{}

	waitOnce sync.Once
	waitErr  error
}

var urlRE = regexp.MustCompile(`jobrun: job (\d+): (http://\S+)/jobs/\d+\n`)

// startJobrun starts the jobrun binary with args and a fresh environment
// whose database is db.
func startJobrun(t *testing.T, db string, args ...string) *proc {
	t.Helper()
	p := &proc{urlCh: make(chan string, 1), done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(os.Environ(), "JOBRUN_DB="+db, "JOBRUN_TOKEN=secret-should-not-leak")
	if len(args) > 0 && args[0] == "serve" {
		// serve takes JOBRUN_TOKEN as its token: only the tests that
		// want one give it one.
		p.cmd.Env = append(p.cmd.Env, "JOBRUN_TOKEN=")
	}
	p.cmd.Stdout = &p.stdout
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		buf := make([]byte, 64<<10)
		sent := false
		for {
			n, err := errPipe.Read(buf)
			p.mu.Lock()
			p.stderr.Write(buf[:n])
			if !sent {
				if m := urlRE.FindSubmatch(p.stderr.Bytes()); m != nil {
					p.urlCh <- string(m[2])
					sent = true
				}
			}
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.waitOnce.Do(func() { p.waitErr = p.cmd.Wait() })
	})
	return p
}

// baseURL waits for the "jobrun: job N: URL" line.
func (p *proc) baseURL(t *testing.T) string {
	t.Helper()
	select {
	case u := <-p.urlCh:
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("no URL printed; stderr so far: %q", p.stderrString())
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }

func (b *syncBuffer) Len() int { return len(b.Bytes()) }

func (p *proc) stderrString() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// wait waits for the process and returns its exit code; it may be called
// more than once.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	<-p.done
	p.waitOnce.Do(func() { p.waitErr = p.cmd.Wait() })
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	if p.waitErr != nil {
		t.Fatal(p.waitErr)
	}
	return 0
}

// jobrunOutput runs a jobrun command to completion.
func jobrunOutput(t *testing.T, db string, args ...string) (stdout []byte, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "JOBRUN_DB="+db)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("jobrun %v: %v (stderr %q)", args, err, errb.String())
	}
	return out, 0
}

// reference runs the script directly and returns what it writes.
func reference(t *testing.T, script string) (stdout, stderr []byte, code int) {
	t.Helper()
	cmd := exec.Command(script)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.Bytes(), e.Bytes(), code
}

// readStream reads a job's stream from after until the server closes it,
// returning the events and the close status.
func readStream(ctx context.Context, t *testing.T, base string, id jobs.ID, after jobs.Seq, maxMsgs int) ([]jobs.Event, websocket.StatusCode) {
	t.Helper()
	url := strings.Replace(base, "http://", "ws://", 1) + fmt.Sprintf("/api/jobs/%d/stream?after=%d", id, after)
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(256 << 20)
	defer c.CloseNow()
	var evs []jobs.Event
	for n := 0; maxMsgs <= 0 || n < maxMsgs; n++ {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return evs, websocket.CloseStatus(err)
		}
		var batch []jobs.Event
		if err := json.Unmarshal(msg, &batch); err != nil {
			t.Fatalf("bad message %q: %v", msg, err)
		}
		evs = append(evs, batch...)
	}
	c.Close(websocket.StatusNormalClosure, "enough")
	return evs, -1
}

// rebuild concatenates the bytes of one stream's line events.
func rebuild(evs []jobs.Event, s jobs.Stream) []byte {
	var b bytes.Buffer
	for _, e := range evs {
		if e.Type == jobs.TypeLine && e.Stream == s {
			b.Write(e.Data)
			b.WriteString(e.EOL)
		}
	}
	return b.Bytes()
}

func TestExecEndToEnd(t *testing.T) {
	script, _ := filepath.Abs("testdata/mixed.sh")
	wantOut, wantErr, wantCode := reference(t, script)
	db := filepath.Join(t.TempDir(), "jobrun.db")

	p := startJobrun(t, db, "exec", "--addr", "127.0.0.1:0", "--linger", "10s", "--", script)
	base := p.baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A viewer connected while the job runs gets every event once, then 1000.
	evs, status := readStream(ctx, t, base, 1, 0, 0)
	if status != websocket.StatusNormalClosure {
		t.Errorf("stream closed with %v, want 1000", status)
	}
	checkContiguous(t, evs, 1)
	if got := rebuild(evs, jobs.StreamStdout); !bytes.Equal(got, wantOut) {
		t.Errorf("stdout rebuilt from WebSocket events differs: got %d bytes, want %d", len(got), len(wantOut))
	}
	if got := rebuild(evs, jobs.StreamStderr); !bytes.Equal(got, wantErr) {
		t.Errorf("stderr rebuilt from WebSocket events differs: got %q, want %q", got, wantErr)
	}
	last := evs[len(evs)-1]
	if last.Type != jobs.TypeExit || last.ExitCode == nil || *last.ExitCode != wantCode || last.Status != jobs.StatusFailed {
		t.Errorf("last event = %+v, want exit failed %d", last, wantCode)
	}

	// The only viewer got the exit event: exec exits at once, no linger.
	if code := p.wait(t); code != wantCode {
		t.Errorf("jobrun exit code = %d, want %d", code, wantCode)
	}
	if !bytes.Equal(p.stdout.Bytes(), wantOut) {
		t.Errorf("terminal stdout passthrough differs: got %d bytes, want %d", p.stdout.Len(), len(wantOut))
	}
	gotErr := urlRE.ReplaceAllString(p.stderrString(), "")
	if gotErr != string(wantErr) {
		t.Errorf("terminal stderr passthrough = %q, want %q", gotErr, wantErr)
	}

	for _, tc := range []struct {
		stream string
		want   []byte
	}{{"stdout", wantOut}, {"stderr", wantErr}} {
		got, code := jobrunOutput(t, db, "logs", "1", "--stream", tc.stream)
		if code != 0 || !bytes.Equal(got, tc.want) {
			t.Errorf("jobrun logs --stream %s: code %d, %d bytes; want code 0 and %d exact bytes", tc.stream, code, len(got), len(tc.want))
		}
	}

	out, code := jobrunOutput(t, db, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	if err := json.Unmarshal(out, &list); err != nil || code != 0 {
		t.Fatalf("ls --json: code %d, %v: %q", code, err, out)
	}
	if len(list.Jobs) != 1 || list.Jobs[0].Status != jobs.StatusFailed || list.Jobs[0].ExitCode == nil || *list.Jobs[0].ExitCode != 7 {
		t.Errorf("ls --json = %+v, want one failed job with exit 7", list.Jobs)
	}
}

func TestExecEnvironment(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`echo "id=$JOBRUN_JOB_ID"; echo "uid=${#JOBRUN_JOB_UID}"; echo "token=${JOBRUN_TOKEN:-none}"`)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, p.stderrString())
	}
	if got, want := p.stdout.String(), "id=1\nuid=26\ntoken=none\n"; got != want {
		t.Errorf("child environment: got %q, want %q", got, want)
	}
}

func TestExecExitCodes(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "notexec.sh")
	os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o644)
	for _, tc := range []struct {
		name string
		argv []string
		want int
	}{
		{"success", []string{"true"}, 0},
		{"exit code", []string{"sh", "-c", "exit 42"}, 42},
		{"killed by signal", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{"not found", []string{"./no-such-command-here"}, 127},
		{"not executable", []string{notExec}, 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "jobrun.db")
			args := append([]string{"exec", "--addr", "127.0.0.1:0", "--linger", "0", "--"}, tc.argv...)
			_, code := jobrunOutput(t, db, args...)
			if code != tc.want {
				t.Errorf("exit code = %d, want %d", code, tc.want)
			}
		})
	}
}

func TestStreamResume(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "10s", "--", "sh", "-c",
		`i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "line $i"; if [ $((i % 100)) = 0 ]; then sleep 0.05; fi; done`)
	base := p.baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var all []jobs.Event
	after := jobs.Seq(0)
	for round := 0; ; round++ {
		evs, status := readStream(ctx, t, base, 1, after, 2) // drop after two messages
		all = append(all, evs...)
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
		}
		if status == websocket.StatusNormalClosure || len(evs) > 0 && evs[len(evs)-1].Type == jobs.TypeExit {
			break
		}
		if round > 10000 {
			t.Fatal("stream never ended")
		}
	}
	checkContiguous(t, all, 1)
	if n := len(all); n != 3001 {
		t.Errorf("got %d events, want 3000 lines and the exit event", n)
	}
	// The viewer has the exit event: exec exits without a linger.
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// checkContiguous checks that evs carry seq first, first+1, ... exactly once.
func checkContiguous(t *testing.T, evs []jobs.Event, first jobs.Seq) {
	t.Helper()
	for i, e := range evs {
		if want := first + jobs.Seq(i); e.Seq != want {
			t.Fatalf("event %d has seq %d, want %d", i, e.Seq, want)
		}
	}
}

func TestKill9LeavesNoChildAndJobIsLost(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "jobrun.db")
	pidFile := filepath.Join(dir, "child.pid")
	p := startJobrun(t, db, "exec", "--addr", "127.0.0.1:0", "--", "sh", "-c", `echo $$ > `+pidFile+`; exec sleep 300`)
	p.baseURL(t)
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(pidFile)
		if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never wrote its pid")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("child %d outlived kill -9 of jobrun", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _ := jobrunOutput(t, db, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Jobs) != 1 || list.Jobs[0].Status != jobs.StatusLost {
		t.Fatalf("jobs after kill -9 = %+v, want one lost job", list.Jobs)
	}
	evs, code := jobrunOutput(t, db, "logs", "--json", "1")
	if code != 0 {
		t.Fatalf("logs --json exit %d", code)
	}
	var lastLine string
	sc := bufio.NewScanner(bytes.NewReader(evs))
	for sc.Scan() {
		lastLine = sc.Text()
	}
	if !strings.Contains(lastLine, `"status":"lost"`) || !strings.Contains(lastLine, `"exit_code":null`) {
		t.Errorf("last event = %s, want a lost exit event", lastLine)
	}
	// logs -f of a lost job exits with 125.
	if _, code := jobrunOutput(t, db, "logs", "1", "-f"); code != exitFailure {
		t.Errorf("logs -f of a lost job: exit %d, want %d", code, exitFailure)
	}
}
