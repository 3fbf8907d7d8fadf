package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago, so that a server can be restarted on the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServeAt starts jobrun serve on addr with db and waits until it
// listens.
func startServeAt(t *testing.T, db, addr string, args ...string) *proc {
	t.Helper()
	p := startJobrun(t, db, append([]string{"serve", "--addr", addr}, args...)...)
	waitFor(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("serve exited: %q", p.stderrString())
		default:
		}
		return strings.Contains(p.stderrString(), "jobrun serve: listening")
	})
	return p
}

// serveDB serves db with jobrun serve on a free loopback port and returns
// its base URL: how a finished job of jobrun exec is looked at.
func serveDB(t *testing.T, db string) string {
	t.Helper()
	addr := freeAddr(t)
	startServeAt(t, db, addr)
	return "http://" + addr
}

// serveInPlaceOf waits for exec p to exit (its viewers have the end),
// then serves its database with jobrun serve at the address exec had, so
// that a page opened on exec can go on reading the finished job's log, as
// a user would after starting jobrun serve.
func serveInPlaceOf(t *testing.T, p *proc, db, base string) {
	t.Helper()
	p.wait(t)
	startServeAt(t, db, strings.TrimPrefix(base, "http://"))
}

// agentEnv gives this test's jobrun processes a spool folder of their own
// and returns it.
func agentEnv(t *testing.T) string {
	t.Helper()
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	return filepath.Join(state, "jobrun", "spool")
}

// spoolFiles lists the spool databases left under root.
func spoolFiles(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".db") {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// getJob fetches a job from a server; ok is false while it is not there.
func getJob(t *testing.T, base, ref string) (jobs.Job, bool) {
	t.Helper()
	resp, err := http.Get(base + "/api/jobs/" + ref)
	if err != nil {
		return jobs.Job{}, false
	}
	defer resp.Body.Close()
	var j jobs.Job
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&j) != nil {
		return jobs.Job{}, false
	}
	return j, true
}

// waitStatus waits until the server shows job ref with status want.
func waitStatus(t *testing.T, base, ref string, want jobs.Status) jobs.Job {
	t.Helper()
	var j jobs.Job
	waitFor(t, func() bool {
		var ok bool
		j, ok = getJob(t, base, ref)
		return ok && j.Status == want
	})
	return j
}

// getLog fetches a job's stored output from a server.
func getLog(t *testing.T, base, ref string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/api/jobs/" + ref + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /log: %d, %v", resp.StatusCode, err)
	}
	return b
}

// numbered is what `seq 1 n` prints.
func numbered(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.Bytes()
}

// checkServerCopy checks that the server holds job 1 whole: its log equals
// want byte for byte, and its events are seq 1..last_seq exactly once,
// ending with the exit.
func checkServerCopy(t *testing.T, base string, want []byte) {
	t.Helper()
	j, ok := getJob(t, base, "1")
	if !ok || j.Status != jobs.StatusSucceeded || !j.Agent {
		t.Fatalf("server's job 1 = %+v, want a succeeded agent job", j)
	}
	if got := getLog(t, base, "1"); !bytes.Equal(got, want) {
		t.Fatalf("server's log: %d bytes, want exactly the job's %d bytes (%d lines, want %d)",
			len(got), len(want), bytes.Count(got, []byte("\n")), bytes.Count(want, []byte("\n")))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	evs, status := readStream(ctx, t, base, 1, 0, 0)
	if status != websocket.StatusNormalClosure {
		t.Errorf("stream closed with %v, want 1000", status)
	}
	checkContiguous(t, evs, 1)
	if n := jobs.Seq(len(evs)); n != j.LastSeq || evs[n-1].Type != jobs.TypeExit {
		t.Errorf("stream: %d events, want %d ending with the exit", n, j.LastSeq)
	}
}

// The test: kill -9 the server in the middle of a job that prints
// 100,000 numbered lines, restart it; when the job ends the server's log is
// the job's output byte for byte, no gap, no duplicate.
func TestAgentServerKilledMidJob(t *testing.T) {
	spool := agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	base := "http://" + addr
	srv := startServeAt(t, db, addr)

	ex := startJobrun(t, db, "exec", "-q", "--server", base, "--", "sh", "-c",
		`i=0; while [ $i -lt 100 ]; do seq $((i*1000+1)) $((i*1000+1000)); i=$((i+1)); sleep 0.02; done`)
	waitFor(t, func() bool { j, ok := getJob(t, base, "1"); return ok && j.LastSeq > 20000 })
	srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.wait(t)
	if j, ok := getJob(t, base, "1"); ok {
		t.Fatalf("server still answers after kill -9: %+v", j)
	}
	time.Sleep(300 * time.Millisecond) // the job goes on without the server
	startServeAt(t, db, addr)

	if code := ex.wait(t); code != 0 {
		t.Fatalf("exec exit %d, want 0; stderr %q", code, ex.stderrString())
	}
	if strings.Contains(ex.stderrString(), "NOT DELIVERED") {
		t.Errorf("exec says it did not deliver: %q", ex.stderrString())
	}
	checkServerCopy(t, base, numbered(100000))
	if left := spoolFiles(t, spool); len(left) != 0 {
		t.Errorf("spools left after delivery: %v", left)
	}
}

// The server is down for the whole job: exec says so, keeps the spool and
// exits with the job's status; jobrun push delivers it afterwards.
func TestAgentServerDownThenPush(t *testing.T) {
	spool := agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	base := "http://" + addr

	ex := startJobrun(t, db, "exec", "-q", "--flush-timeout", "1s", "--server", base, "--", "sh", "-c", "seq 1 100000; exit 3")
	if code := ex.wait(t); code != 3 {
		t.Fatalf("exec exit %d, want the job's 3; stderr %q", code, ex.stderrString())
	}
	if !strings.Contains(ex.stderrString(), "NOT DELIVERED") {
		t.Errorf("exec did not say that the output was not delivered: %q", ex.stderrString())
	}
	if left := spoolFiles(t, spool); len(left) != 1 {
		t.Fatalf("spools after an undelivered job: %v, want one", left)
	}

	startServeAt(t, db, addr)
	if out, code := jobrunOutput(t, db, "push", "--server", base); code != 0 {
		t.Fatalf("push exit %d: %s", code, out)
	}
	j, ok := getJob(t, base, "1")
	if !ok || j.Status != jobs.StatusFailed || j.ExitCode == nil || *j.ExitCode != 3 {
		t.Fatalf("pushed job = %+v, want failed with exit code 3", j)
	}
	if got, want := getLog(t, base, "1"), numbered(100000); !bytes.Equal(got, want) {
		t.Fatalf("pushed log: %d bytes, want exactly %d", len(got), len(want))
	}
	if left := spoolFiles(t, spool); len(left) != 0 {
		t.Errorf("spools left after push: %v", left)
	}
	// Nothing left to push.
	if out, code := jobrunOutput(t, db, "push"); code != 0 {
		t.Errorf("second push exit %d: %s", code, out)
	}
}

// A job whose agent falls silent shows as unreachable, then running again
// when the agent returns; ls, logs -f and cancel work against the server,
// and cancel reaches the agent, which ends the job as canceled.
func TestAgentUnreachableRemoteLogsAndCancel(t *testing.T) {
	agentEnv(t)
	t.Setenv("JOBRUN_HEARTBEAT", "200ms")
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	base := "http://" + addr
	startServeAt(t, db, addr, "--agent-timeout", "1s")

	ex := startJobrun(t, db, "exec", "-q", "--kill-after", "5s", "--server", base, "--", "sh", "-c",
		`echo started; i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.1; done`)
	waitStatus(t, base, "1", jobs.StatusRunning)

	ex.cmd.Process.Signal(syscall.SIGSTOP)
	waitStatus(t, base, "1", jobs.StatusUnreachable)
	ex.cmd.Process.Signal(syscall.SIGCONT)
	waitStatus(t, base, "1", jobs.StatusRunning)

	out, code := jobrunOutput(t, db, "ls", "--server", base, "--json")
	var list struct{ Jobs []jobs.Job }
	if err := json.Unmarshal(out, &list); err != nil || code != 0 || len(list.Jobs) != 1 || !list.Jobs[0].Agent {
		t.Fatalf("ls --server --json: exit %d, %v: %s", code, err, out)
	}

	// logs -f follows over the stream and exits with the job's status.
	follow := exec.Command(binary, "logs", "-f", "--server", base, "1")
	follow.Env = append(os.Environ(), "JOBRUN_DB="+filepath.Join(t.TempDir(), "none.db"))
	var followOut syncBuffer
	follow.Stdout = &followOut
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follow.Process.Kill(); follow.Wait() })
	waitFor(t, func() bool { return strings.Contains(followOut.String(), "tick 3\n") })

	if out, code := jobrunOutput(t, db, "cancel", "--server", base, "1"); code != 0 {
		t.Fatalf("cancel exit %d: %s", code, out)
	}
	if code := ex.wait(t); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exec exit %d after cancel, want %d; stderr %q", code, 128+int(syscall.SIGTERM), ex.stderrString())
	}
	j := waitStatus(t, base, "1", jobs.StatusCanceled)
	err := follow.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != *j.ExitCode {
		t.Errorf("logs -f: %v, want exit %d", err, *j.ExitCode)
	}
	if got, want := followOut.String(), string(getLog(t, base, "1")); got != want || !strings.HasPrefix(got, "started\ntick 1\n") {
		t.Errorf("logs -f printed %d bytes, want the stored log's %d", len(got), len(want))
	}
	// A finished job cannot be canceled: 409, exit 125.
	if _, code := jobrunOutput(t, db, "cancel", "--server", base, "1"); code != exitFailure {
		t.Errorf("cancel of a finished job: exit %d, want %d", code, exitFailure)
	}
}

// After --lost-after the server ends a silent agent's job as lost and
// refuses the agent when it returns (4410); exec says so and keeps the
// output aside.
func TestAgentLostAfter(t *testing.T) {
	spool := agentEnv(t)
	t.Setenv("JOBRUN_HEARTBEAT", "100ms")
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	base := "http://" + addr
	startServeAt(t, db, addr, "--agent-timeout", "300ms", "--lost-after", "1s")
	// serve refuses an agent timeout shorter than two heartbeats.
	if _, code := jobrunOutput(t, db, "serve", "--addr", freeAddr(t), "--agent-timeout", "150ms"); code != 2 {
		t.Errorf("serve --agent-timeout 150ms with 100ms heartbeats: exit %d, want 2", code)
	}

	ex := startJobrun(t, db, "exec", "-q", "--server", base, "--", "sh", "-c", `echo hi; sleep 60`)
	waitFor(t, func() bool { j, ok := getJob(t, base, "1"); return ok && j.LastSeq >= 1 })
	ex.cmd.Process.Signal(syscall.SIGSTOP)
	j := waitStatus(t, base, "1", jobs.StatusLost)
	if j.ExitCode != nil || j.LastSeq != 2 {
		t.Errorf("lost job = %+v, want exit code null at seq 2", j)
	}
	ex.cmd.Process.Signal(syscall.SIGCONT)
	waitFor(t, func() bool { return strings.Contains(ex.stderrString(), "4410") })
	ex.cmd.Process.Signal(syscall.SIGTERM)
	ex.wait(t)
	if !strings.Contains(ex.stderrString(), "refused the job") {
		t.Errorf("exec did not report the refusal: %q", ex.stderrString())
	}
	if left := spoolFiles(t, spool); len(left) != 1 || !strings.Contains(left[0], "refused") {
		t.Errorf("spools after a refused job: %v, want one set aside under refused/", left)
	}
	if j, _ := getJob(t, base, "1"); j.Status != jobs.StatusLost || j.LastSeq != 2 {
		t.Errorf("the refused agent changed the lost job: %+v", j)
	}
}

// An exec --server killed with kill -9 leaves its spool; push ends the
// job there as lost and delivers it.
func TestAgentKilledThenPush(t *testing.T) {
	spool := agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	base := "http://" + addr
	ex := startJobrun(t, db, "exec", "-q", "--server", base, "--", "sh", "-c", "echo before; exec sleep 60")
	waitFor(t, func() bool { return strings.Contains(ex.stderrString(), "cannot be reached yet") })
	ex.cmd.Process.Signal(syscall.SIGKILL)
	ex.wait(t)
	if left := spoolFiles(t, spool); len(left) != 1 {
		t.Fatalf("spools after kill -9: %v, want one", left)
	}

	startServeAt(t, db, addr)
	out, code := jobrunOutput(t, db, "push")
	if code != 0 {
		t.Fatalf("push exit %d: %s", code, out)
	}
	j, ok := getJob(t, base, "1")
	if !ok || j.Status != jobs.StatusLost || j.ExitCode != nil {
		t.Fatalf("pushed job = %+v, want lost with a null exit code", j)
	}
	if got := string(getLog(t, base, "1")); got != "before\n" {
		t.Errorf("pushed log = %q, want %q", got, "before\n")
	}
	if left := spoolFiles(t, spool); len(left) != 0 {
		t.Errorf("spools left after push: %v", left)
	}
}

// With neither --server, --standalone nor --db, exec reports to the jobrun
// serve that answers at its address.
func TestExecFindsServeAtItsAddress(t *testing.T) {
	agentEnv(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "server.db")
	addr := freeAddr(t)
	startServeAt(t, db, addr)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "exec", "-q", "--addr", addr, "--", "echo", "found")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JOBRUN_DB=") && !strings.HasPrefix(kv, "JOBRUN_SERVER=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("exec: %v; stderr %q", err, stderr.String())
	}
	if want := fmt.Sprintf("jobrun: job 1: http://%s/jobs/1\n", addr); !strings.Contains(stderr.String(), want) {
		t.Errorf("exec stderr %q, want the server's URL %q", stderr.String(), want)
	}
	if got := string(getLog(t, "http://"+addr, "1")); got != "found\n" {
		t.Errorf("server's log = %q, want %q", got, "found\n")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "jobrun", "jobrun.db")); err == nil {
		t.Errorf("exec made a local database although it reported to the server")
	}
}
