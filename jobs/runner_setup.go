package jobs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jobrun/jobrun/jobs/progress"
)

// progressParsers returns a parser per stream, or none when progress is
// off.
func (r *Runner) progressParsers() ([2]*progress.Parser, error) {
	p, err := progress.NewParser(r.Progress, r.ProgressRegex)
	if err != nil {
		return [2]*progress.Parser{}, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	if p.Mode == progress.Off {
		return [2]*progress.Parser{}, nil
	}
	// One latch for both streams: a job that reports its own progress on
	// either turns the heuristics off on both.
	p.Reported = new(atomic.Bool)
	return [2]*progress.Parser{p, {Mode: p.Mode, Regex: p.Regex, Reported: p.Reported}}, nil
}

// jobDir checks the working directory and returns it absolute.
func jobDir(dir string) (string, error) {
	if dir == "" {
		return os.Getwd()
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("directory: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("directory %s: not a directory: %w", dir, ErrInvalid)
	}
	return filepath.Abs(dir)
}

// childEnv is the child's environment: env without jobrun's secrets
// (JOBRUN_TOKEN*) and with the job's identity.
func childEnv(env []string, id ID, uid UID) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "JOBRUN_TOKEN") || name == "JOBRUN_JOB_ID" || name == "JOBRUN_JOB_UID" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "JOBRUN_JOB_ID="+strconv.FormatInt(int64(id), 10), "JOBRUN_JOB_UID="+string(uid))
}

// startFailure maps a failure to start the command to the exit code a
// shell would give and a message.
func startFailure(err error) (int, string) {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return 127, "command not found"
	case errors.Is(err, fs.ErrPermission):
		return 126, "permission denied"
	case errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR):
		var errno syscall.Errno
		errors.As(err, &errno)
		return 126, "cannot execute: " + errno.Error()
	}
	return 125, err.Error()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
