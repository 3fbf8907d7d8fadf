package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jobrun/jobrun/jobs"
)

func TestExitStatus(t *testing.T) {
	refused := fmt.Errorf("rm: job 3 is running: %w", jobs.ErrConflict)
	for _, tc := range []struct {
		name     string
		cmd      string
		err      error
		wantCode int
		wantMsg  string
	}{
		{"success", "ls", nil, 0, ""},
		{"usage", "logs", usageError("logs: want one JOB"), exitUsage, "logs: want one JOB"},
		{"parse error before any command", "", errors.New("flag provided but not defined: -x"), exitUsage, "flag provided but not defined: -x"},
		{"not found", "logs", fmt.Errorf("logs: no job 9: %w", jobs.ErrNotFound), exitRefused, "logs: no job 9: not found"},
		{"conflict", "rm", refused, exitRefused, refused.Error()},
		{"anything else", "ls", errors.New("disk I/O error"), exitFailure, "disk I/O error"},
		{"the job's own status", "logs", exitWith(3), 3, ""},
		{"a verdict with its message", "progress", &statusErr{code: 1, msg: "progress: broken pipe"}, 1, "progress: broken pipe"},
		{"already printed", "rm", silent(refused), exitRefused, ""},
		{"exec usage", "exec", usageError("exec: no command"), exitFailure, "exec: no command"},
		{"exec not found is its own failure", "exec", fmt.Errorf("exec: %w", jobs.ErrNotFound), exitFailure, "exec: not found"},
		{"exec passes the command's status", "exec", exitWith(42), 42, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := exitStatus(tc.cmd, tc.err)
			if code != tc.wantCode || msg != tc.wantMsg {
				t.Errorf("exitStatus(%q, %v) = %d, %q; want %d, %q", tc.cmd, tc.err, code, msg, tc.wantCode, tc.wantMsg)
			}
		})
	}
	if exitWith(0) != nil {
		t.Error("exitWith(0) is an error")
	}
}
