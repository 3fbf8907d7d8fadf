package jobs

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobrun/jobrun/jobs/progress"
)

// ID is a job's small integer identity, local to one database.
type ID int64

// UID is a job's random identity, made by whoever starts the job and unique
// everywhere (26 lowercase base32 characters, 130 bits of which 128 random).
type UID string

// Seq numbers the events of one job: 1, 2, 3, ... with no gap or duplicate.
type Seq int64

// Status is a job's state.
type Status string

// The statuses of a job. Only StatusRunning and StatusUnreachable are not
// final.
const (
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
	StatusLost      Status = "lost"
	// StatusUnreachable is a running job reported by an agent (exec
	// --server) that the server has not heard from for longer than its
	// agent timeout. It is derived when the job is read, never stored and
	// never an event: the job is running again as soon as its agent
	// returns, and becomes lost only after the server's --lost-after.
	StatusUnreachable Status = "unreachable"
)

// Final reports whether no event can follow a job in this status.
func (s Status) Final() bool { return s != StatusRunning && s != StatusUnreachable && s != "" }

// Job is a job's metadata as stored and as served by GET /api/jobs/{id}.
type Job struct {
	ID         ID         `json:"id"`
	UID        UID        `json:"uid"`
	Name       string     `json:"name"`
	Command    []string   `json:"command"`
	Cwd        string     `json:"cwd"`
	Host       string     `json:"host"`
	Status     Status     `json:"status"`
	ExitCode   *int       `json:"exit_code"`
	Signal     string     `json:"signal,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	LastSeq    Seq        `json:"last_seq"`
	LastLine   int64      `json:"last_line"` // the highest visual line number stored so far
	// Agent is set for a job reported to a server by an agent (exec
	// --server) rather than run by a process sharing the database.
	Agent bool `json:"agent,omitempty"`
	// LastHeard is when the server last heard from the job's agent.
	LastHeard *time.Time `json:"last_heard,omitempty"`
	// Incomplete is set when the job's runner could not store all of its
	// output: the stored log ends early (see Event.Incomplete, whose
	// exit event it comes from). IncompleteReason says why.
	Incomplete       bool   `json:"incomplete,omitempty"`
	IncompleteReason string `json:"incomplete_reason,omitempty"`
	// Progress is the latest progress the job reported, if any.
	Progress *progress.Snapshot `json:"progress,omitempty"`
	// ExpectedSeconds is how long the job is expected to take: the median
	// duration of the latest succeeded earlier runs with the same name,
	// or the same command and working directory; nil when there are none.
	ExpectedSeconds *float64 `json:"expected_seconds,omitempty"`
}

// NewUID returns a fresh random UID.
func NewUID() UID {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("jobs: crypto/rand failed: %v", err)) // never happens on Linux
	}
	return UID(strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])))
}

// Ref is how a user names a job: its ID ("7") or its UID.
type Ref struct {
	ID  ID
	UID UID
}

// ParseRef parses a job reference as typed in URLs and commands: an all-digit
// string is an ID, anything else of UID form is a UID.
func ParseRef(s string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("empty job reference: %w", ErrInvalid)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return Ref{}, fmt.Errorf("job id %q must be positive: %w", s, ErrInvalid)
		}
		return Ref{ID: ID(n)}, nil
	}
	if len(s) > 64 {
		return Ref{}, fmt.Errorf("job reference too long: %w", ErrInvalid)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return Ref{}, fmt.Errorf("job reference %q is neither an id nor a uid: %w", s, ErrInvalid)
		}
	}
	return Ref{UID: UID(s)}, nil
}

// String returns the reference as it was typed.
func (r Ref) String() string {
	if r.UID != "" {
		return string(r.UID)
	}
	return strconv.FormatInt(int64(r.ID), 10)
}
