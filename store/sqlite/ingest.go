package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// Jobs reported by agents. An agent (jobrun exec --server) runs a job on
// its own machine and reports it to a server over the ingest protocol
// (docs/protocol.md). The server registers the job by its uid and marks it
// agent = 1: its runner holds no lock here, so RecoverLost never touches
// it. Instead the server records when it last heard from the agent
// (last_heard): a running agent job silent for longer than
// Options.AgentTimeout reads as jobs.StatusUnreachable, and ExpireAgents
// ends one silent for much longer as lost. Only the agent writes the other
// events of its job, and it may resend any of them: IngestEvents stores
// each seq once and checks that a resent one is the same.

// RegisterJob registers a job that an agent reports, keyed by its uid. The
// first call inserts it as running; a later call with the same uid (a
// retried or reconnecting agent) returns the same job, never a second
// one. Either way the agent counts as heard now. It returns the job's id
// and the last seq stored for it: the agent resends from the next one.
//
// Errors: a malformed job wraps jobs.ErrInvalid; a uid that belongs to a
// job not reported by an agent wraps jobs.ErrConflict; a job that the
// server already ended as lost wraps jobs.ErrGone.
func (db *DB) RegisterJob(ctx context.Context, j jobs.Job) (jobs.ID, jobs.Seq, error) {
	cmdJSON, err := store.AgentCommand(&j)
	if err != nil {
		return 0, 0, fmt.Errorf("register job %s: %w", j.UID, err)
	}
	now := micros(time.Now())
	var (
		id   jobs.ID
		last jobs.Seq
	)
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		var (
			agent  bool
			status jobs.Status
		)
		err := tx.QueryRowContext(ctx, "SELECT id, agent, status, last_seq FROM jobs WHERE uid = ?", j.UID).
			Scan(&id, &agent, &status, &last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			last = 0
			return tx.QueryRowContext(ctx, `INSERT INTO jobs
				(uid, name, command, cwd, host, status, created_at, started_at, agent, last_heard)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?) RETURNING id`,
				j.UID, j.Name, cmdJSON, j.Cwd, j.Host, jobs.StatusRunning,
				micros(j.CreatedAt), micros(*j.StartedAt), now).Scan(&id)
		case err != nil:
			return err
		case !agent:
			return fmt.Errorf("uid is taken by job %d, which was not reported by an agent: %w", id, jobs.ErrConflict)
		case status == jobs.StatusLost:
			return fmt.Errorf("job %d: %w; the server takes no more events for it", id, jobs.ErrGone)
		case status == jobs.StatusRunning:
			_, err = tx.ExecContext(ctx, "UPDATE jobs SET last_heard = ? WHERE id = ?", now, id)
			return err
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("register job %s: %w", j.UID, err)
	}
	return id, last, nil
}

// IngestEvents stores a batch of events that the agent of job id reports,
// idempotently by seq, in one transaction: events up to the job's last
// stored seq must be the same as the stored ones (their wire JSON is
// compared byte for byte) and are skipped; the rest, which must follow the
// last stored seq without a gap, are appended. It returns the events it
// appended (to publish after this returns; possibly none) and the job's
// last stored seq, which the agent may count as delivered.
//
// Errors: a malformed batch, a gap, or a line longer than
// jobs.MaxLineBytes wraps jobs.ErrInvalid; a resent event that differs
// from the stored one wraps jobs.ErrMismatch; events for a job that the
// server ended as lost wrap jobs.ErrGone; events after a job's exit, or
// for a job not reported by an agent, wrap jobs.ErrConflict.
func (db *DB) IngestEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) ([]jobs.Event, jobs.Seq, error) {
	if err := store.CheckIngest(evs); err != nil {
		return nil, 0, fmt.Errorf("ingest into job %d: %w", id, err)
	}
	var (
		fresh []jobs.Event
		last  jobs.Seq
	)
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		st, agent, err := loadAgentState(ctx, tx, id)
		if err != nil {
			return err
		}
		last = st.lastSeq
		if !agent {
			return fmt.Errorf("job %d was not reported by an agent: %w", id, jobs.ErrConflict)
		}
		k, err := store.Resent(evs, st.lastSeq) // events already stored
		if err != nil {
			return err
		}
		if k > 0 {
			if err := compareStored(ctx, tx, id, st, evs[:k]); err != nil {
				return err
			}
		}
		if k == len(evs) {
			return nil
		}
		if err := store.AcceptsEvents(id, st.status, st.lastSeq); err != nil {
			return err
		}
		fresh = evs[k:]
		if err := insertEvents(ctx, tx, id, st, fresh); err != nil {
			return err
		}
		last = fresh[len(fresh)-1].Seq
		_, err = tx.ExecContext(ctx, "UPDATE jobs SET last_heard = ? WHERE id = ?", micros(time.Now()), id)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("ingest into job %d: %w", id, err)
	}
	return fresh, last, nil
}

// loadAgentState is loadState plus the agent flag.
func loadAgentState(ctx context.Context, tx *sql.Tx, id jobs.ID) (jobState, bool, error) {
	var (
		st    jobState
		agent bool
	)
	err := tx.QueryRowContext(ctx, "SELECT uid, status, last_seq, last_line, agent FROM jobs WHERE id = ?", id).
		Scan(&st.uid, &st.status, &st.lastSeq, &st.lastLine, &agent)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, fmt.Errorf("job %d: %w", id, jobs.ErrNotFound)
	}
	return st, agent, err
}

// compareStored checks that evs, all stored already, are the same as the
// stored events, comparing their wire JSON. A difference at the server's
// own lost exit event means the job was ended as lost: jobs.ErrGone.
func compareStored(ctx context.Context, tx *sql.Tx, id jobs.ID, st jobState, evs []jobs.Event) error {
	first, n := evs[0].Seq, len(evs)
	rows, err := tx.QueryContext(ctx, `SELECT first_seq, n, body FROM chunks
		WHERE job_id = ? AND last_seq >= ? ORDER BY last_seq`, id, first)
	if err != nil {
		return err
	}
	defer rows.Close()
	stored := make([]jobs.Event, 0, n)
	for len(stored) < n && rows.Next() {
		var (
			cf   jobs.Seq
			cn   int
			body []byte
		)
		if err := rows.Scan(&cf, &cn, &body); err != nil {
			return err
		}
		if stored, err = store.AppendDecoded(stored, body, cf, cn, first-1, n); err != nil {
			return fmt.Errorf("chunk at seq %d: %w", cf, err)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return store.CompareResent(id, evs, stored, st.status, st.lastSeq)
}

// TouchAgent records that the agent of job id was heard from now (its
// heartbeat), if the job is a running agent job.
func (db *DB) TouchAgent(ctx context.Context, id jobs.ID) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE jobs SET last_heard = ? WHERE id = ? AND agent = 1 AND status = ?",
			micros(time.Now()), id, jobs.StatusRunning)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch agent of job %d: %w", id, err)
	}
	return nil
}

// ExpireAgents ends every running agent job whose agent was last heard
// before cutoff: it appends the final exit event with status lost (exit
// code null) at last_seq+1, the one event of an agent job that the server
// writes itself. last_heard is read again inside each write transaction,
// so an agent that returned in the meantime keeps its job.
func (db *DB) ExpireAgents(ctx context.Context, cutoff time.Time) ([]store.Expired, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT id FROM jobs
		WHERE status = ? AND agent = 1 AND (last_heard IS NULL OR last_heard < ?)`,
		jobs.StatusRunning, micros(cutoff))
	if err != nil {
		return nil, fmt.Errorf("expire agent jobs: %w", db.translate(err))
	}
	var ids []jobs.ID
	for rows.Next() {
		var id jobs.ID
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("expire agent jobs: %w", db.translate(err))
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("expire agent jobs: %w", db.translate(err))
	}
	var out []store.Expired
	for _, id := range ids {
		var ev *jobs.Event
		err := db.writeTx(ctx, func(tx *sql.Tx) error {
			st, _, err := loadAgentState(ctx, tx, id)
			if errors.Is(err, jobs.ErrNotFound) {
				return nil
			}
			if err != nil || st.status != jobs.StatusRunning {
				return err
			}
			var heard sql.NullInt64
			if err := tx.QueryRowContext(ctx, "SELECT last_heard FROM jobs WHERE id = ?", id).Scan(&heard); err != nil {
				return err
			}
			if heard.Valid && heard.Int64 >= micros(cutoff) {
				return nil
			}
			e := store.LostExit(st.lastSeq + 1)
			if err := insertEvents(ctx, tx, id, st, []jobs.Event{e}); err != nil {
				return err
			}
			ev = &e
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("expire agent job %d: %w", id, err)
		}
		if ev != nil {
			db.opts.Logger.Warn("agent silent too long; job marked lost", "job", id, "seq", ev.Seq)
			out = append(out, store.Expired{ID: id, Exit: *ev})
		}
	}
	return out, nil
}

// unreachableCutoff is the last_heard (unix µs) before which a running
// agent job reads as unreachable at now: silent for longer than
// Options.AgentTimeout. The queries that select by status use it, so that
// they agree with store.AgentStatus.
func (db *DB) unreachableCutoff(now time.Time) int64 {
	return ceilMicros(now.Add(-db.opts.AgentTimeout))
}
