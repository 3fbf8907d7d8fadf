package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// How every backend removes jobs: a finished job's row goes first, in one
// short transaction (detach); its chunk rows follow a few per transaction
// with pauses (DeleteInBatches), so that removing a job of any size never
// holds up the writes of running jobs; chunk rows whose job is gone are
// what an interrupted remove left, and Prune sweeps them.

// DeleteInBatches calls deleteBatch, which deletes up to o.Batch rows in
// one transaction and says how many it deleted, until it deletes fewer,
// pausing between two calls as long as the last one took (at most
// o.MaxPause). It returns the rows deleted.
func DeleteInBatches(ctx context.Context, o RemoveOptions, deleteBatch func() (int64, error)) (int64, error) {
	o = o.WithDefaults()
	var total int64
	for {
		start := time.Now()
		n, err := deleteBatch()
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(o.Batch) {
			return total, nil
		}
		if err := Pause(ctx, min(time.Since(start), o.MaxPause)); err != nil {
			return total, err
		}
	}
}

// Pause waits d (at least a millisecond) or until ctx ends.
func Pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(max(d, time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Remover is a backend's part of removing jobs.
type Remover struct {
	// Job reads the job ref names.
	Job func(ctx context.Context, ref jobs.Ref) (jobs.Job, error)
	// Detach deletes the row of finished job id (its events stay): an
	// unknown job wraps jobs.ErrNotFound, a running one jobs.ErrConflict.
	Detach func(ctx context.Context, id jobs.ID) error
	// DeleteChunks deletes up to n chunk rows of job id, whose row is
	// gone, in one transaction, and says how many.
	DeleteChunks func(ctx context.Context, id jobs.ID, n int) (int64, error)
	// Orphans lists the jobs whose chunk rows outlived their row.
	Orphans func(ctx context.Context) ([]jobs.ID, error)
}

// deleteChunks deletes every chunk row of job id in batches.
func (r Remover) deleteChunks(ctx context.Context, id jobs.ID, o RemoveOptions) (int64, error) {
	o = o.WithDefaults()
	return DeleteInBatches(ctx, o, func() (int64, error) { return r.DeleteChunks(ctx, id, o.Batch) })
}

// RemoveJob deletes the finished job that ref names and all its events,
// and returns the job as it was. A job that is still running (or
// unreachable) is an error wrapping jobs.ErrConflict; an unknown job wraps
// jobs.ErrNotFound. The job is gone for readers when its row is; its
// events follow in batches.
func (r Remover) RemoveJob(ctx context.Context, ref jobs.Ref, o RemoveOptions) (jobs.Job, error) {
	j, err := r.Job(ctx, ref)
	if err != nil {
		return jobs.Job{}, fmt.Errorf("remove job: %w", err)
	}
	if err := r.Detach(ctx, j.ID); err != nil {
		return jobs.Job{}, fmt.Errorf("remove job %d: %w", j.ID, err)
	}
	if _, err := r.deleteChunks(ctx, j.ID, o); err != nil {
		return j, fmt.Errorf("remove job %d: its events: %w (the next prune removes the rest)", j.ID, err)
	}
	return j, nil
}

// Prune removes the jobs of ids (those a PruneQuery selected), each like
// RemoveJob, skipping those removed meanwhile, then the events of jobs
// whose remove was interrupted.
func (r Remover) Prune(ctx context.Context, ids []jobs.ID, o RemoveOptions) (PruneResult, error) {
	var res PruneResult
	for _, id := range ids {
		err := r.Detach(ctx, id)
		if errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrConflict) {
			continue // removed meanwhile, or (never) running again
		}
		if err != nil {
			return res, fmt.Errorf("prune: job %d: %w", id, err)
		}
		res.Removed = append(res.Removed, id)
		n, err := r.deleteChunks(ctx, id, o)
		res.Chunks += n
		if err != nil {
			return res, fmt.Errorf("prune: events of job %d: %w", id, err)
		}
	}
	orphans, err := r.Orphans(ctx)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	for _, id := range orphans {
		n, err := r.deleteChunks(ctx, id, o)
		res.Chunks += n
		if err != nil {
			return res, fmt.Errorf("prune: events of removed job %d: %w", id, err)
		}
	}
	return res, nil
}

// CheckPrune checks a PruneQuery.
func CheckPrune(q PruneQuery) error {
	if q.Before.IsZero() || q.Keep < 0 {
		return fmt.Errorf("prune: before %v, keep %d: %w", q.Before, q.Keep, jobs.ErrInvalid)
	}
	return nil
}

// RunningError is the error of detaching job id, which is still running.
func RunningError(id jobs.ID) error {
	return fmt.Errorf("job %d is still running; cancel it (jobrun cancel %d) and remove it when it has ended: %w", id, id, jobs.ErrConflict)
}
