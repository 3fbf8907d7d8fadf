package jobs

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Filter selects jobs: what `jobrun ls --status/--host/--name/--since`, GET
// /api/jobs and the dashboard stream ask for. The zero Filter selects
// every job; each set field narrows the selection (all of them must hold).
//
// Backends select with it in their queries, and Match selects one job in
// memory (the dashboard stream tells with it when a job leaves a
// dashboard's filter): the two must agree, job for job, which the store
// tests check.
type Filter struct {
	// Statuses selects jobs whose status, as read, is one of these (none:
	// any status). A running agent job whose agent has been silent longer
	// than the agent timeout reads as StatusUnreachable, so it matches
	// StatusUnreachable and not StatusRunning.
	Statuses []Status
	// Name selects jobs whose name contains it, ignoring the case of the
	// ASCII letters (as SQL's LIKE does): "Deploy" finds "deploy prod",
	// while other letters must match exactly.
	Name string
	// Host selects jobs of this host, exactly.
	Host string
	// Since and Until select jobs created at or after Since and before
	// Until; a zero time is no bound.
	Since, Until time.Time
}

// MaxFilterText bounds Filter.Name and Filter.Host, in bytes.
const MaxFilterText = 1024

// ParseStatus returns the status named s, or an error wrapping ErrInvalid.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusRunning, StatusUnreachable, StatusSucceeded, StatusFailed, StatusCanceled, StatusLost:
		return st, nil
	}
	return "", fmt.Errorf("status %q: want running, unreachable, succeeded, failed, canceled or lost: %w", s, ErrInvalid)
}

// ParseStatuses parses a comma list of statuses ("failed,lost"), as the
// API's status= and ls's --status take them. Errors wrap ErrInvalid.
func ParseStatuses(list string) ([]Status, error) {
	var out []Status
	for name := range strings.SplitSeq(list, ",") {
		st, err := ParseStatus(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Validate checks f: known statuses, Name and Host at most MaxFilterText
// bytes. Errors wrap ErrInvalid.
func (f Filter) Validate() error {
	for _, s := range f.Statuses {
		if _, err := ParseStatus(string(s)); err != nil {
			return err
		}
	}
	if len(f.Name) > MaxFilterText || len(f.Host) > MaxFilterText {
		return fmt.Errorf("name or host filter over %d bytes: %w", MaxFilterText, ErrInvalid)
	}
	return nil
}

// Match reports whether f selects j, whose Status is as read (unreachable
// derived).
func (f Filter) Match(j Job) bool {
	switch {
	case len(f.Statuses) > 0 && !slices.Contains(f.Statuses, j.Status):
		return false
	case f.Host != "" && j.Host != f.Host:
		return false
	case !f.Since.IsZero() && j.CreatedAt.Before(f.Since):
		return false
	case !f.Until.IsZero() && !j.CreatedAt.Before(f.Until):
		return false
	}
	return f.Name == "" || strings.Contains(LowerASCII(j.Name), LowerASCII(f.Name))
}

// LowerASCII maps the ASCII letters A-Z of s to a-z and leaves every other
// byte as it is: the case folding of Filter.Name.
func LowerASCII(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
