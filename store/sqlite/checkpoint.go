package sqlite

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Keeping the WAL bounded.
//
// SQLite's own checkpoints run in the writer connection after a commit
// that leaves the WAL over wal_autocheckpoint (1000 pages, 4 MiB), in
// PASSIVE mode: they copy back only the frames no reader still needs, and
// the WAL file is reused from its start only when a checkpoint reached its
// end and no reader was using it at the next write. With viewers always
// reading (each in short transactions, but always some), that moment never
// comes under steady writes, and once the writes stop no checkpoint runs at
// all: the WAL stays at its peak (149 MB next to a 15 MB database in issue
// 10) until the last connection closes.
//
// So each DB runs a checkpointer goroutine (started by Open, stopped and
// waited for by Close) with a connection of its own. When the WAL file
// passes Options.WALLimit, or when nothing has written to it for a moment
// (walIdleAfter) and it holds more than walIdleMin, it checkpoints in two
// steps: PASSIVE first, which copies what it can without taking the write
// lock, then TRUNCATE, which takes the write lock, copies the rest, waits
// for the readers still reading the WAL to finish and truncates the file to
// zero bytes. Readers that begin after the copy read the database file, so
// with short read transactions the wait ends quickly; it is bounded by the
// connection's busy timeout (Options.CheckpointWait), and appends wait at
// most that long plus the copy of the last frames. A TRUNCATE that gives up
// (readers still there, another process checkpointing) is retried after
// walRetryAfter. The writer also has journal_size_limit = WALLimit, so a
// WAL that SQLite itself restarts is cut to that size at the next commit.
//
// Several processes may share the file, each with its checkpointer: SQLite
// lets one checkpoint run at a time (the others answer busy at once, and
// retry later), and the decision reads the -wal file itself, so writes of
// any process count.

const (
	// defaultWALLimit is Options.WALLimit's default.
	defaultWALLimit = 32 << 20
	// defaultCheckpointWait is Options.CheckpointWait's default.
	defaultCheckpointWait = 100 * time.Millisecond
	// walCheckEvery is how often the checkpointer looks at the WAL file
	// besides after this DB's own commits.
	walCheckEvery = 500 * time.Millisecond
	// walIdleAfter is how long the WAL file must stay unchanged before the
	// writes count as idle.
	walIdleAfter = time.Second
	// walIdleMin is the smallest WAL worth truncating when idle: about what
	// SQLite's own checkpoints leave (wal_autocheckpoint's 1000 pages).
	walIdleMin = 4 << 20
	// walRetryAfter spaces attempts that did not truncate the WAL, so that
	// the write lock is held for at most about CheckpointWait per
	// walRetryAfter while readers keep the WAL busy.
	walRetryAfter = time.Second
	// walErrorRetryAfter spaces attempts after a checkpoint failed (a full
	// disk, an I/O error), each of which is logged.
	walErrorRetryAfter = 30 * time.Second
)

// walPath is the path of the database's write-ahead log.
func (db *DB) walPath() string { return db.path + "-wal" }

// WALSize returns the size in bytes of the database's write-ahead log file
// (the -wal file), 0 when there is none: for metrics.
func (db *DB) WALSize() int64 {
	fi, err := os.Stat(db.walPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// openCheckpointer opens the checkpointer's connection and starts its
// goroutine; Close stops it.
func (db *DB) openCheckpointer() error {
	var err error
	if db.ckpt, err = db.openConn(fmt.Sprintf("_busy_timeout=%d", db.opts.CheckpointWait.Milliseconds())); err != nil {
		return err
	}
	db.committed = make(chan struct{}, 1)
	// The goroutine lives as long as the DB, not as the ctx of Open.
	life, stop := context.WithCancel(context.Background())
	db.stopCkpt = stop
	db.ckptDone = make(chan struct{})
	go db.checkpointer(life)
	return nil
}

// closeCheckpointer stops the checkpointer, waits for it, and closes its
// connection.
func (db *DB) closeCheckpointer() error {
	if db.stopCkpt != nil {
		db.stopCkpt()
		<-db.ckptDone
		db.stopCkpt = nil
	}
	if db.ckpt == nil {
		return nil
	}
	err := db.ckpt.Close()
	db.ckpt = nil
	return err
}

// noteCommit wakes the checkpointer after a commit of this DB's writer,
// without ever blocking it.
func (db *DB) noteCommit() {
	select {
	case db.committed <- struct{}{}:
	default:
	}
}

// checkpointer is the goroutine described at the top of this file.
func (db *DB) checkpointer(ctx context.Context) {
	defer close(db.ckptDone)
	tick := time.NewTicker(walCheckEvery)
	defer tick.Stop()
	var (
		seen      os.FileInfo // the WAL file when last looked at
		changedAt = time.Now()
		nextTry   time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-db.committed:
		}
		now := time.Now()
		fi, err := os.Stat(db.walPath())
		if err != nil {
			seen = nil
			continue
		}
		if seen == nil || fi.Size() != seen.Size() || !fi.ModTime().Equal(seen.ModTime()) {
			seen, changedAt = fi, now
		}
		over := fi.Size() >= db.opts.WALLimit
		idle := fi.Size() >= walIdleMin && now.Sub(changedAt) >= walIdleAfter
		if !(over || idle) || now.Before(nextTry) {
			continue
		}
		truncated, err := db.truncateWAL(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			db.opts.Logger.Warn("cannot checkpoint the write-ahead log", "db", db.path, "wal_bytes", fi.Size(), "err", err)
			nextTry = now.Add(walErrorRetryAfter)
		case !truncated:
			nextTry = now.Add(walRetryAfter)
		default:
			nextTry = time.Time{}
		}
	}
}

// truncateWAL checkpoints the whole WAL and truncates it to zero bytes, in
// the two steps described at the top of this file. truncated is false when
// readers (or another process's checkpoint) kept it from finishing within
// Options.CheckpointWait.
func (db *DB) truncateWAL(ctx context.Context) (truncated bool, err error) {
	var busy, frames, copied int64
	for _, mode := range []string{"PASSIVE", "TRUNCATE"} {
		err := db.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &copied)
		if isBusy(err) {
			// Another process is recovering the WAL or holds a lock
			// that a checkpoint does not wait for: as readers, try later.
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("checkpoint %s (%s): %w", db.path, mode, db.translate(err))
		}
	}
	return busy == 0, nil
}
