package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

func TestRunMixedOutput(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	var stdout, stderr, errOut bytes.Buffer
	r := &jobs.Runner{Store: db, Stdout: &stdout, Stderr: &stderr, ErrOut: &errOut}
	run := start(ctx, t, r, "mixed")
	res := wait(ctx, t, run)

	evs := allEvents(ctx, t, db, run.Job().ID)
	exit := checkLog(t, evs)
	checkExit(t, res, exit, jobs.StatusSucceeded, 0, "")
	if res.StoreErr != nil {
		t.Errorf("StoreErr: %v", res.StoreErr)
	}
	out, errs := mixedOutput()
	wantOut, wantErr := strings.Join(out, ""), strings.Join(errs, "")
	for _, c := range []struct {
		what      string
		got, want string
	}{
		{"stored stdout", string(streamBytes(evs, jobs.StreamStdout)), wantOut},
		{"stored stderr", string(streamBytes(evs, jobs.StreamStderr)), wantErr},
		{"echoed stdout", stdout.String(), wantOut},
		{"echoed stderr", stderr.String(), wantErr},
	} {
		if c.got != c.want {
			t.Errorf("%s differs (%d bytes, want %d):\n got  %.300q\n want %.300q", c.what, len(c.got), len(c.want), c.got, c.want)
		}
	}
	for _, s := range []jobs.Stream{jobs.StreamStdout, jobs.StreamStderr} {
		want := visualLines(streamBytes(evs, s))
		if got := distinctLines(evs, s); got != want {
			t.Errorf("%s uses %d line numbers, want %d (one per visual line)", s, got, want)
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("unexpected messages: %q", errOut.String())
	}
	// "10%\r", "50%\r", "100%\n": 50 may be coalesced away, 100 never.
	if got := fmt.Sprint(percents(evs)); got != "[10 50 100]" && got != "[10 100]" {
		t.Errorf("progress %s, want [10 50 100] or [10 100]", got)
	}

	job, err := db.Job(ctx, jobs.Ref{ID: run.Job().ID})
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != jobs.StatusSucceeded || job.ExitCode == nil || *job.ExitCode != 0 || job.LastSeq != exit.Seq {
		t.Errorf("stored job: status %s exit %v last_seq %d, want succeeded 0 %d", job.Status, job.ExitCode, job.LastSeq, exit.Seq)
	}
	got := run.Job()
	if got.Name != strings.Join(got.Command, " ") || got.UID == "" || got.Cwd == "" {
		t.Errorf("job defaults: name %q uid %q cwd %q", got.Name, got.UID, got.Cwd)
	}
	if got.LastSeq != exit.Seq || got.Status != jobs.StatusSucceeded || got.ExitCode == nil || got.FinishedAt == nil {
		t.Errorf("Run.Job after Wait: last_seq %d status %s exit %v finished %v, want %d succeeded 0 set",
			got.LastSeq, got.Status, got.ExitCode, got.FinishedAt, exit.Seq)
	}
}

func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		mode   string
		args   []string
		status jobs.Status
		code   int
		signal string
	}{
		{"exit 0", "exit", []string{"0"}, jobs.StatusSucceeded, 0, ""},
		{"exit 3", "exit", []string{"3"}, jobs.StatusFailed, 3, ""},
		{"killed by its own SIGTERM", "sigterm", nil, jobs.StatusFailed, 128 + 15, "SIGTERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := openDB(t)
			run := start(ctx, t, &jobs.Runner{Store: db}, tt.mode, tt.args...)
			res := wait(ctx, t, run)
			exit := checkLog(t, allEvents(ctx, t, db, run.Job().ID))
			checkExit(t, res, exit, tt.status, tt.code, tt.signal)
		})
	}
}

func TestRunStartFailure(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badFormat := filepath.Join(dir, "bad-format")
	if err := os.WriteFile(badFormat, []byte("\x7fELF garbage"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		command string
		code    int
		message string
	}{
		{"not found in PATH", "jobrun-test-no-such-command", 127, "jobrun: jobrun-test-no-such-command: command not found\n"},
		{"not found by path", filepath.Join(dir, "missing"), 127, "jobrun: " + filepath.Join(dir, "missing") + ": command not found\n"},
		{"not executable", notExec, 126, "jobrun: " + notExec + ": permission denied\n"},
		{"bad executable format", badFormat, 126, "jobrun: " + badFormat + ": cannot execute: exec format error\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := openDB(t)
			var errOut bytes.Buffer
			run, err := (&jobs.Runner{Store: db, ErrOut: &errOut}).Start(ctx, jobs.Spec{Command: []string{tt.command}})
			if err != nil {
				t.Fatalf("Start: %v (the job should exist and fail)", err)
			}
			res := wait(ctx, t, run)
			evs := allEvents(ctx, t, db, run.Job().ID)
			exit := checkLog(t, evs)
			checkExit(t, res, exit, jobs.StatusFailed, tt.code, "")
			if len(evs) != 1 {
				t.Errorf("%d events, want only the exit event", len(evs))
			}
			if errOut.String() != tt.message {
				t.Errorf("message %q, want %q", errOut.String(), tt.message)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	r := &jobs.Runner{Store: db}
	for _, spec := range []jobs.Spec{
		{},
		{Command: []string{"true"}, Dir: filepath.Join(t.TempDir(), "missing")},
		{Command: []string{"true"}, UID: "Not A UID"},
	} {
		if run, err := r.Start(ctx, spec); err == nil {
			t.Errorf("Start(%+v) = job %d, want an error", spec, run.Job().ID)
			run.Wait()
		}
	}
	jl, err := db.Jobs(ctx, store.JobsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jl) != 0 {
		t.Errorf("%d jobs stored, want none", len(jl))
	}
}

func TestRunEnv(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	t.Setenv("JOBRUN_TOKEN", "secret")
	t.Setenv("JOBRUN_TOKEN_FILE", "/secret")
	t.Setenv("JOBRUN_JOB_ID", "999") // a job run from inside a job gets its own id
	var stdout bytes.Buffer
	run := start(ctx, t, &jobs.Runner{Store: db, Stdout: &stdout}, "env")
	wait(ctx, t, run)
	got := stdout.String()
	for _, want := range []string{
		"JOBRUN_JOB_ID=" + strconv.FormatInt(int64(run.Job().ID), 10) + "\n",
		"JOBRUN_JOB_UID=" + string(run.Job().UID) + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("child environment %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "TOKEN") || strings.Contains(got, "999") {
		t.Errorf("child environment %q has jobrun's secrets or a stale job id", got)
	}
}

func TestRunStdin(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, []byte("from stdin\nsecond"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run := start(ctx, t, &jobs.Runner{Store: db, Stdin: f}, "cat")
	wait(ctx, t, run)
	if got := streamBytes(allEvents(ctx, t, db, run.Job().ID), jobs.StreamStdout); string(got) != "from stdin\nsecond" {
		t.Errorf("stdout %q, want the stdin file", got)
	}

	run = start(ctx, t, &jobs.Runner{Store: db}, "cat") // nil Stdin: /dev/null
	wait(ctx, t, run)
	if got := streamBytes(allEvents(ctx, t, db, run.Job().ID), jobs.StreamStdout); len(got) != 0 {
		t.Errorf("stdout %q, want nothing from /dev/null", got)
	}
}

func TestRunSignals(t *testing.T) {
	tests := []struct {
		name   string
		mode   string
		send   func(*jobs.Run)
		code   int
		signal string
	}{
		{"cancel", "sleep", (*jobs.Run).Cancel, 128 + 15, "SIGTERM"},
		{"forwarded SIGHUP", "sleep", func(r *jobs.Run) { r.Signal(syscall.SIGHUP) }, 128 + 1, "SIGHUP"},
		{"SIGTERM ignored, SIGKILL after KillAfter", "ignore", (*jobs.Run).Cancel, 128 + 9, "SIGKILL"},
		{"second SIGINT kills at once", "ignore", func(r *jobs.Run) {
			r.Signal(syscall.SIGINT) // ignored? "ignore" ignores SIGINT too
			r.Signal(syscall.SIGINT)
		}, 128 + 9, "SIGKILL"},
		{"kill", "sleep", (*jobs.Run).Kill, 128 + 9, "SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := openDB(t)
			killAfter := 200 * time.Millisecond
			if strings.Contains(tt.name, "SIGINT") {
				killAfter = time.Hour // only the second SIGINT can end it in time
			}
			run := start(ctx, t, &jobs.Runner{Store: db, KillAfter: killAfter}, tt.mode)
			waitFor(ctx, t, db, run.Job().ID, "ready", contains(jobs.StreamStdout, "ready\n"))
			tt.send(run)
			res := wait(ctx, t, run)
			exit := checkLog(t, allEvents(ctx, t, db, run.Job().ID))
			checkExit(t, res, exit, jobs.StatusCanceled, tt.code, tt.signal)
			run.Cancel() // after the end: does nothing
		})
	}
}

func TestRunContextCancel(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	jobCtx, cancel := context.WithCancel(ctx)
	run := start(jobCtx, t, &jobs.Runner{Store: db}, "sleep")
	waitFor(ctx, t, db, run.Job().ID, "ready", contains(jobs.StreamStdout, "ready\n"))
	cancel()
	res := wait(ctx, t, run)
	exit := checkLog(t, allEvents(ctx, t, db, run.Job().ID))
	checkExit(t, res, exit, jobs.StatusCanceled, 128+15, "SIGTERM")
}

func TestRunGrandchildHoldsPipe(t *testing.T) {
	ctx := testCtx(t)
	db := openDB(t)
	run := start(ctx, t, &jobs.Runner{Store: db, DrainTimeout: 300 * time.Millisecond}, "grandchild")
	res := wait(ctx, t, run)
	evs := allEvents(ctx, t, db, run.Job().ID)
	exit := checkLog(t, evs)
	checkExit(t, res, exit, jobs.StatusSucceeded, 0, "")
	m := regexp.MustCompile(`grandchild (\d+)\n`).FindSubmatch(streamBytes(evs, jobs.StreamStdout))
	if m == nil {
		t.Fatalf("stdout %q lacks the grandchild's pid", streamBytes(evs, jobs.StreamStdout))
	}
	pid, _ := strconv.Atoi(string(m[1]))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Errorf("grandchild %d: %v (it should still be running, holding the pipe)", pid, err)
	}
}
