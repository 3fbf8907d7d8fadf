package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jobrun/jobrun/jobs"
)

// A runner lock proves that a job's runner is alive: an flock(LOCK_EX) on
// <db path>.locks/<uid>. The kernel drops it when the process dies, however
// it dies, and it does not depend on pids, which are reused. flock locks
// belong to an open file description, so two opens of the same file
// conflict even within one process.
type runnerLock struct {
	path string
	f    *os.File
}

// errLockHeld means another open file description holds the lock: its
// runner is alive.
var errLockHeld = errors.New("runner lock is held")

func (db *DB) lockPath(uid jobs.UID) string {
	return filepath.Join(db.path+".locks", string(uid))
}

// acquireLock takes the runner lock for uid without waiting. With create
// false, a missing lock file yields (nil, nil): nobody holds it.
func (db *DB) acquireLock(uid jobs.UID, create bool) (*runnerLock, error) {
	path := db.lockPath(uid)
	flags := os.O_RDWR | unix.O_CLOEXEC
	if create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("runner lock: %w", err)
		}
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if !create && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runner lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLockHeld
		}
		return nil, fmt.Errorf("runner lock %s: %w", path, err)
	}
	return &runnerLock{path: path, f: f}, nil
}

// release removes the lock file while still holding the lock, then drops
// the lock. A process that opened the file before the removal and locks it
// afterwards re-checks the job's status in its transaction, so it does no
// harm. Safe on nil.
func (l *runnerLock) release() {
	if l == nil {
		return
	}
	os.Remove(l.path)
	l.close()
}

// close drops the lock and leaves the file. Safe on nil.
func (l *runnerLock) close() {
	if l != nil {
		l.f.Close()
	}
}

// keepLock records a lock held for a running job of this DB.
func (db *DB) keepLock(uid jobs.UID, l *runnerLock) {
	db.mu.Lock()
	db.locks[uid] = l
	db.mu.Unlock()
}

// releaseLock releases the lock held for uid, if this DB holds it.
func (db *DB) releaseLock(uid jobs.UID) {
	db.mu.Lock()
	l := db.locks[uid]
	delete(db.locks, uid)
	db.mu.Unlock()
	l.release()
}

// holdsLock reports whether this DB runs the job uid.
func (db *DB) holdsLock(uid jobs.UID) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.locks[uid] != nil
}

// RecoverLost finds the running jobs of this host (Options.Host), other
// than jobs reported by agents, whose runner lock is free, which means
// their runner died, and finishes each with a final exit event (status
// lost, exit code null) at last_seq+1. A job whose lock is held, by another
// process or by another DB in this one, is not touched. It returns how
// many jobs it marked lost.
func (db *DB) RecoverLost(ctx context.Context) (int, error) {
	type candidate struct {
		id  jobs.ID
		uid jobs.UID
	}
	var cands []candidate
	// Jobs reported by agents have no runner lock here (see ingest.go).
	rows, err := db.reader.QueryContext(ctx, "SELECT id, uid FROM jobs WHERE status = ? AND host = ? AND agent = 0",
		jobs.StatusRunning, db.opts.Host)
	if err != nil {
		return 0, fmt.Errorf("recover lost jobs: %w", db.translate(err))
	}
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.uid); err != nil {
			rows.Close()
			return 0, fmt.Errorf("recover lost jobs: %w", db.translate(err))
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("recover lost jobs: %w", db.translate(err))
	}
	n := 0
	for _, c := range cands {
		if db.holdsLock(c.uid) {
			continue
		}
		lock, err := db.acquireLock(c.uid, false)
		if errors.Is(err, errLockHeld) {
			continue // its runner is alive
		}
		if err != nil {
			return n, fmt.Errorf("recover lost job %d: %w", c.id, err)
		}
		lost, err := db.markLost(ctx, c.id)
		if err != nil {
			lock.close()
			return n, fmt.Errorf("recover lost job %d: %w", c.id, err)
		}
		if lost {
			n++
			db.opts.Logger.Warn("job's runner died; marked lost", "job", c.id, "uid", c.uid)
		}
		lock.release()
	}
	return n, nil
}

// markLost appends the lost exit event if the job is still running: the
// status is read again inside the write transaction, because its runner
// may have finished it between the query and the lock.
func (db *DB) markLost(ctx context.Context, id jobs.ID) (bool, error) {
	lost := false
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		st, err := loadState(ctx, tx, id)
		if errors.Is(err, jobs.ErrNotFound) {
			return nil
		}
		if err != nil || st.status != jobs.StatusRunning {
			return err
		}
		lost = true
		ev := jobs.Event{Seq: st.lastSeq + 1, Time: time.Now(), Type: jobs.TypeExit, Status: jobs.StatusLost}
		return insertEvents(ctx, tx, id, st, []jobs.Event{ev})
	})
	return lost && err == nil, err
}
