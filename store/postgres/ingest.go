package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// Jobs reported by agents (jobrun exec --server), which may connect to any
// replica and, after a reconnect, to another one. Idempotence lives in the
// database, not in a process: IngestEvents locks the job's row (SELECT
// ... FOR UPDATE), compares what is resent with what is stored, appends
// the rest after last_seq, all in one transaction; the primary key of
// chunks (job_id, first_seq) is the backstop. Two replicas given the same
// batch at once store it once: the second waits for the first's lock,
// then finds the events stored and compares them.

// RegisterJob registers a job that an agent reports, keyed by its uid, and
// returns its id and last stored seq, with the same rules and errors as
// every backend (the SQLite backend's RegisterJob says them; the
// conformance suite checks them): a retried or reconnecting agent, on any
// replica, gets the same job.
func (db *DB) RegisterJob(ctx context.Context, j jobs.Job) (jobs.ID, jobs.Seq, error) {
	cmdJSON, err := store.AgentCommand(&j)
	if err != nil {
		return 0, 0, fmt.Errorf("register job %s: %w", j.UID, err)
	}
	var (
		id   jobs.ID
		last jobs.Seq
	)
	err = db.writeTx(ctx, func(tx pgx.Tx) error {
		// Insert unless the uid exists; two replicas racing to insert it
		// serialise on the unique index, and the loser reads the row.
		err := tx.QueryRow(ctx, `INSERT INTO jobs
			(uid, name, command, cwd, host, status, created_at, started_at, agent, last_heard)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, now())
			ON CONFLICT (uid) DO NOTHING RETURNING id`,
			j.UID, j.Name, cmdJSON, j.Cwd, j.Host, jobs.StatusRunning, µs(j.CreatedAt), µs(*j.StartedAt)).Scan(&id)
		if err == nil {
			last = 0
			var b pgx.Batch
			db.queueNotify(&b, id, 0)
			return tx.SendBatch(ctx, &b).Close()
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var (
			agent  bool
			status jobs.Status
		)
		err = tx.QueryRow(ctx, "SELECT id, agent, status, last_seq FROM jobs WHERE uid = $1 FOR UPDATE", j.UID).
			Scan(&id, &agent, &status, &last)
		switch {
		case err != nil:
			return err
		case !agent:
			return fmt.Errorf("uid is taken by job %d, which was not reported by an agent: %w", id, jobs.ErrConflict)
		case status == jobs.StatusLost:
			return fmt.Errorf("job %d: %w; the server takes no more events for it", id, jobs.ErrGone)
		case status == jobs.StatusRunning:
			_, err = tx.Exec(ctx, "UPDATE jobs SET last_heard = now() WHERE id = $1", id)
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
// idempotently by seq, in one transaction under the job's row lock, and
// returns the events it appended (to publish after this returns; possibly
// none) and the job's last stored seq. The rules and errors are every
// backend's (store.Resent, store.CompareResent, store.AcceptsEvents; the
// SQLite backend's IngestEvents says them).
func (db *DB) IngestEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) ([]jobs.Event, jobs.Seq, error) {
	if err := store.CheckIngest(evs); err != nil {
		return nil, 0, fmt.Errorf("ingest into job %d: %w", id, err)
	}
	var (
		fresh []jobs.Event
		last  jobs.Seq
	)
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		fresh = nil
		st, err := lockJob(ctx, tx, id)
		if err != nil {
			return err
		}
		last = st.lastSeq
		if !st.agent {
			return fmt.Errorf("job %d was not reported by an agent: %w", id, jobs.ErrConflict)
		}
		k, err := store.Resent(evs, st.lastSeq) // events already stored
		if err != nil {
			return err
		}
		if k > 0 {
			stored, err := eventsRange(ctx, tx, id, evs[0].Seq-1, k)
			if err != nil {
				return err
			}
			if err := store.CompareResent(id, evs[:k], stored, st.status, st.lastSeq); err != nil {
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
		last = fresh[len(fresh)-1].Seq
		return db.insertEvents(ctx, tx, id, st, fresh, true)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("ingest into job %d: %w", id, err)
	}
	return fresh, last, nil
}

// eventsRange reads the n events of job id after seq after inside tx.
func eventsRange(ctx context.Context, tx pgx.Tx, id jobs.ID, after jobs.Seq, n int) ([]jobs.Event, error) {
	rows, err := tx.Query(ctx, chunksAfter, id, after, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	evs := make([]jobs.Event, 0, n)
	for len(evs) < n && rows.Next() {
		var (
			first jobs.Seq
			cn    int
			body  []byte
		)
		if err := rows.Scan(&first, &cn, &body); err != nil {
			return nil, err
		}
		if evs, err = store.AppendDecoded(evs, body, first, cn, after, n); err != nil {
			return nil, fmt.Errorf("chunk at seq %d: %w", first, err)
		}
	}
	rows.Close()
	return evs, rows.Err()
}

// TouchAgent records that the agent of job id was heard from now (its
// heartbeat), if the job is a running agent job.
func (db *DB) TouchAgent(ctx context.Context, id jobs.ID) error {
	_, err := db.pool.Exec(ctx, "UPDATE jobs SET last_heard = now() WHERE id = $1 AND agent AND status = $2",
		id, jobs.StatusRunning)
	if err != nil {
		return fmt.Errorf("touch agent of job %d: %w", id, db.translate(err))
	}
	return nil
}

// reaperLock is the advisory lock key held while one replica expires
// silent agents: one reaper at a time, however many replicas run.
const reaperLock int64 = 0x6a6f6272756e0002 // "jobrun" 2

// ExpireAgents ends every running agent job whose agent was last heard
// before cutoff: it appends the final exit event with status lost (exit
// code null) at last_seq+1, the one event of an agent job that the server
// writes itself. Only one process at a time does it: one that finds the
// reaper lock held by another replica returns at once, with nothing.
// last_heard is read again inside each write transaction, with the job's
// row locked, so an agent that returned in the meantime keeps its job and
// a job is never ended twice.
func (db *DB) ExpireAgents(ctx context.Context, cutoff time.Time) ([]store.Expired, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("expire agent jobs: %w", db.translate(err))
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", reaperLock).Scan(&got); err != nil {
		return nil, fmt.Errorf("expire agent jobs: %w", db.translate(err))
	}
	if !got {
		return nil, nil
	}
	defer unlock(ctx, conn, reaperLock)

	rows, err := conn.Query(ctx, `SELECT id FROM jobs
		WHERE status = $1 AND agent AND (last_heard IS NULL OR last_heard < $2)`, jobs.StatusRunning, cutoff)
	if err != nil {
		return nil, fmt.Errorf("expire agent jobs: %w", db.translate(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[jobs.ID])
	if err != nil {
		return nil, fmt.Errorf("expire agent jobs: %w", db.translate(err))
	}
	var out []store.Expired
	for _, id := range ids {
		var ev *jobs.Event
		err := db.writeTx(ctx, func(tx pgx.Tx) error {
			st, err := lockJob(ctx, tx, id)
			if errors.Is(err, jobs.ErrNotFound) {
				return nil
			}
			if err != nil || st.status != jobs.StatusRunning {
				return err
			}
			var heard *time.Time
			if err := tx.QueryRow(ctx, "SELECT last_heard FROM jobs WHERE id = $1", id).Scan(&heard); err != nil {
				return err
			}
			if heard != nil && !heard.Before(cutoff) {
				return nil
			}
			e := store.LostExit(st.lastSeq + 1)
			if err := db.insertEvents(ctx, tx, id, st, []jobs.Event{e}, false); err != nil {
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
