package store

// The vocabulary of the store contract that both backends share: what
// callers ask (queries, options) and what they get back.

import (
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// JobsQuery selects a page of jobs, newest (highest ID) first.
type JobsQuery struct {
	// Limit is the page size: 0 means 100; at most 1000.
	Limit int
	// Before, when not 0, returns only jobs with a smaller ID (the next
	// page after a page ending at Before).
	Before jobs.ID
	// Filter narrows the jobs listed (status as read, name, host, creation
	// time); its zero value lists every job. A backend selects exactly the
	// jobs Filter.Match selects, deriving StatusUnreachable at the time of
	// the query as it does when reading a job.
	jobs.Filter
}

// Expired is a job that a backend's ExpireAgents ended as lost, with the exit event it
// appended, for the caller to publish.
type Expired struct {
	ID   jobs.ID
	Exit jobs.Event
}

// DefaultAgentTimeout is how long an agent may be silent before its job
// reads as unreachable, unless a backend is told otherwise.
const DefaultAgentTimeout = 60 * time.Second

// DefaultRemoveBatch is RemoveOptions.Batch's default: chunk rows deleted
// per write transaction. A chunk holds at most about 1 MiB of events.
const DefaultRemoveBatch = 8

// RemoveOptions tunes how a remove or a prune deletes events. The zero
// value means the documented defaults.
type RemoveOptions struct {
	// Batch is how many chunk rows one write transaction deletes. Default
	// DefaultRemoveBatch.
	Batch int
	// MaxPause caps the pause between two batches, which is otherwise as
	// long as the batch took. Default 50 ms.
	MaxPause time.Duration
}

// WithDefaults fills in the zero fields.
func (o RemoveOptions) WithDefaults() RemoveOptions {
	if o.Batch <= 0 {
		o.Batch = DefaultRemoveBatch
	}
	if o.MaxPause <= 0 {
		o.MaxPause = 50 * time.Millisecond
	}
	return o
}

// PruneQuery selects the jobs Prune removes: finished jobs that ended
// before Before, except the Keep newest jobs.
type PruneQuery struct {
	// Before: jobs that finished at or after it stay. Required.
	Before time.Time
	// Keep is how many of the newest jobs (by id, whatever their age or
	// status) always stay. 0 keeps none.
	Keep int
}

// PruneResult is what Prune removed.
type PruneResult struct {
	// Removed lists the removed jobs' ids, oldest first.
	Removed []jobs.ID
	// Chunks is the number of chunk rows (groups of events) deleted,
	// including those of earlier interrupted removes.
	Chunks int64
}

// Stats is a summary of the database for metrics (GET /metrics).
type Stats struct {
	// Jobs counts jobs by status as they read now: running agent jobs
	// whose agent is silent count as jobs.StatusUnreachable.
	Jobs map[jobs.Status]int64
	// Bytes is the size of the database's pages in use (what jobs and
	// events take), FreeBytes that of its free pages (left by removed
	// jobs, reused by new events or given back by Reclaim).
	Bytes, FreeBytes int64
}

// Page checks q and fills in its defaults: a Limit of 0 means 100, and
// more than 1000 means 1000.
func (q JobsQuery) Page() (JobsQuery, error) {
	switch {
	case q.Limit < 0 || q.Before < 0:
		return q, fmt.Errorf("list jobs: limit %d, before %d: %w", q.Limit, q.Before, jobs.ErrInvalid)
	case q.Limit == 0:
		q.Limit = 100
	case q.Limit > 1000:
		q.Limit = 1000
	}
	return q, nil
}

// BeforeRange is the range of EventsBefore(before, n): the events after
// seq after, at most limit (0: none).
func BeforeRange(before jobs.Seq, n int) (after jobs.Seq, limit int) {
	after = max(before-1-jobs.Seq(n), 0)
	return after, int(before - 1 - after)
}
