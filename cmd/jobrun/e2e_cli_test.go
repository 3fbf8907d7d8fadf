package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

func TestLogsFollowExitsWithJobStatus(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.2; done; exit 3`)
	p.baseURL(t)
	// Flags after the job argument work as before it.
	out, code := jobrunOutput(t, db, "logs", "1", "-f")
	if code != 3 {
		t.Errorf("logs -f exit = %d, want the job's 3", code)
	}
	if want := "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n"; string(out) != want {
		t.Errorf("logs -f output = %q, want %q", out, want)
	}
	p.wait(t)
}

func TestExecStdoutClosedKeepsStoring(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	// jobrun exec ... | head -n 1: jobrun must not die of SIGPIPE, and the
	// job's whole output is still stored.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sh := exec.CommandContext(ctx, "sh", "-c",
		`"$0" exec --addr 127.0.0.1:0 --linger 0 -- sh -c 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo "line $i"; done' | head -n 1`, binary)
	sh.Env = append(os.Environ(), "JOBRUN_DB="+db)
	var errb bytes.Buffer
	sh.Stderr = &errb
	out, err := sh.Output()
	if err != nil {
		t.Fatalf("pipeline: %v; stderr %q", err, errb.String())
	}
	if !strings.HasPrefix(string(out), "line 1\n") {
		t.Errorf("head got %q", out)
	}
	logs, code := jobrunOutput(t, db, "logs", "1")
	if code != 0 || bytes.Count(logs, []byte("\n")) != 20000 || !bytes.HasSuffix(logs, []byte("line 20000\n")) {
		t.Errorf("stored log has %d lines (code %d), want all 20000", bytes.Count(logs, []byte("\n")), code)
	}
	out, _ = jobrunOutput(t, db, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	json.Unmarshal(out, &list)
	if len(list.Jobs) != 1 || list.Jobs[0].Status != jobs.StatusSucceeded {
		t.Errorf("job = %+v, want succeeded (the child never saw the closed pipe)", list.Jobs)
	}
}

func TestExecForwardsSignals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		signals []syscall.Signal
		want    int
	}{
		{"SIGTERM is forwarded", `trap 'exit 143' TERM; echo ready; while :; do sleep 0.05; done`, []syscall.Signal{syscall.SIGTERM}, 143},
		{"ignored SIGTERM escalates to SIGKILL", `trap '' TERM; echo ready; while :; do sleep 0.05; done`, []syscall.Signal{syscall.SIGTERM}, 128 + 9},
		{"second SIGINT kills at once", `trap '' INT; echo ready; while :; do sleep 0.05; done`, []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "jobrun.db")
			p := startJobrun(t, db, "exec", "--addr", "127.0.0.1:0", "--linger", "0", "--kill-after", "1s", "--", "sh", "-c", tc.script)
			p.baseURL(t)
			waitFor(t, func() bool { return strings.Contains(p.stdout.String(), "ready") })
			for _, s := range tc.signals {
				p.cmd.Process.Signal(s)
				time.Sleep(100 * time.Millisecond)
			}
			if code := p.wait(t); code != tc.want {
				t.Errorf("exit = %d, want %d", code, tc.want)
			}
			out, _ := jobrunOutput(t, db, "ls", "--json")
			var list struct{ Jobs []jobs.Job }
			json.Unmarshal(out, &list)
			if len(list.Jobs) != 1 || list.Jobs[0].Status != jobs.StatusCanceled {
				t.Errorf("job = %+v, want canceled", list.Jobs)
			}
		})
	}
}

func TestExecBusyAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := filepath.Join(t.TempDir(), "jobrun.db")
	_, code := jobrunOutput(t, db, "exec", "--addr", ln.Addr().String(), "--", "true")
	if code != exitFailure {
		t.Errorf("exec on a busy explicit --addr: exit %d, want %d", code, exitFailure)
	}
}

func TestCLIErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	jobrunOutput(t, db, "exec", "--addr", "127.0.0.1:0", "--linger", "0", "--", "true")
	for _, tc := range []struct {
		name string
		args []string
		want int
		env  string // NAME=VALUE set for the case
	}{
		{"logs of unknown job", []string{"logs", "99"}, 1, ""},
		{"logs without job", []string{"logs"}, 2, ""},
		{"logs with two jobs", []string{"logs", "1", "2"}, 2, ""},
		{"logs bad stream", []string{"logs", "1", "--stream", "both"}, 2, ""},
		{"logs bad ref", []string{"logs", "no/such"}, 2, ""},
		{"exec without command", []string{"exec"}, exitFailure, ""},
		{"exec bad stdin", []string{"exec", "--stdin", "file", "--", "true"}, exitFailure, ""},
		{"exec bad flag", []string{"exec", "--bogus", "--", "true"}, exitFailure, ""},
		{"exec public addr", []string{"exec", "--addr", "0.0.0.0:0", "--", "true"}, exitFailure, ""},
		{"ls of a missing database", []string{"ls", "--db", "/nonexistent/jobrun.db"}, 1, ""},
		{"logs -f after the end", []string{"logs", "-f", "--after", "99", "1"}, exitFailure, ""},
		{"unknown flag", []string{"ls", "--bogus"}, 2, ""},
		{"unknown command", []string{"nosuchcommand"}, 2, ""},
		{"exec bad heartbeat", []string{"exec", "--addr", "127.0.0.1:0", "--", "true"}, exitFailure, "JOBRUN_HEARTBEAT=soon"},
		{"serve bad heartbeat", []string{"serve", "--addr", "127.0.0.1:0"}, 2, "JOBRUN_HEARTBEAT=soon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if name, value, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(name, value)
			}
			if _, code := jobrunOutput(t, db, tc.args...); code != tc.want {
				t.Errorf("jobrun %v: exit %d, want %d", tc.args, code, tc.want)
			}
		})
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
