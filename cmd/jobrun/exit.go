package main

import (
	"errors"
	"fmt"

	"github.com/jobrun/jobrun/jobs"
)

// Exit statuses. Subcommands return plain errors (wrapping jobs sentinels
// where they mean one); exitStatus alone turns an error into a status and
// the message printed before exiting.
const (
	exitUsage    = 2   // a command-line mistake
	exitRefused  = 1   // the job does not exist, or the request was refused (conflict, invalid)
	exitFailure  = 125 // jobrun itself failed (as env(1) and timeout(1) use it)
	exitNotExec  = 126 // exec: the command is not executable
	exitNotFound = 127 // exec: the command is not found
)

// exitIncomplete: logs (without -f) printed a job whose stored log is
// incomplete, its runner having failed to store all of the output.
const exitIncomplete = 3

// errUsage marks a command-line mistake; usageError makes one.
var errUsage = errors.New("usage error")

// usageErr is a command-line mistake: its message alone, unwrapping to
// errUsage.
type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }
func (e *usageErr) Unwrap() error { return errUsage }

// usageError is a command-line mistake: exit status 2 (125 for exec).
func usageError(format string, a ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, a...)}
}

// statusErr is an exit status that a command chose for what it found, not
// for a failure of jobrun: the job's own exit status (exec, logs -f), or a
// verdict (doctor found a failing check, push left jobs pending). Its
// message, if any, is printed as is.
type statusErr struct {
	code int
	msg  string
}

func (e *statusErr) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

// exitWith is status code with nothing more to say; nil for 0.
func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return &statusErr{code: code}
}

// silentErr is an error whose message was printed already: it keeps its
// exit status and prints nothing more.
type silentErr struct{ err error }

func (e *silentErr) Error() string { return e.err.Error() }
func (e *silentErr) Unwrap() error { return e.err }

// silent returns err, already reported, as an error that prints nothing.
func silent(err error) error {
	if err == nil {
		return nil
	}
	return &silentErr{err: err}
}

// exitStatus maps the error of subcommand cmd ("" when no subcommand ran:
// the command line itself was wrong) to an exit status and the message to
// print, the one place where errors become statuses:
//   - a status the command chose (the job's own exit status, a verdict);
//   - exec: 125 for any error of its own, so that none looks like the
//     command's status;
//   - a usage mistake: 2;
//   - an unknown job, a conflict or a refused request: 1;
//   - anything else: 125.
func exitStatus(cmd string, err error) (code int, msg string) {
	if err == nil {
		return 0, ""
	}
	var st *statusErr
	if errors.As(err, &st) {
		return st.code, st.msg
	}
	msg = err.Error()
	var quiet *silentErr
	if errors.As(err, &quiet) {
		msg = ""
	}
	switch {
	case cmd == "exec":
		return exitFailure, msg
	case cmd == "" || errors.Is(err, errUsage):
		return exitUsage, msg
	case errors.Is(err, jobs.ErrNotFound), errors.Is(err, jobs.ErrConflict), errors.Is(err, jobs.ErrInvalid):
		return exitRefused, msg
	}
	return exitFailure, msg
}
