package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/jobrun/jobrun/jobs"
)

// translate is the one place where driver errors become errors that say
// what happened, wrapping a jobs sentinel where one fits. The driver error
// stays in the chain for logs. Other errors pass through unchanged.
func (db *DB) translate(err error) error {
	var se sqlite3.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		return fmt.Errorf("database is locked by another process for longer than %s: %w", db.opts.BusyTimeout, err)
	case sqlite3.ErrFull:
		return fmt.Errorf("disk full: %w", err)
	case sqlite3.ErrConstraint:
		if se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey {
			return fmt.Errorf("%w: already stored (%w)", jobs.ErrConflict, err)
		}
		return fmt.Errorf("database constraint violated: %w", err)
	case sqlite3.ErrReadonly:
		return fmt.Errorf("database is read-only (check the permissions of the file and its folder): %w", err)
	case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
		return fmt.Errorf("database file is damaged or not a jobrun database: %w", err)
	case sqlite3.ErrCantOpen, sqlite3.ErrPerm, sqlite3.ErrAuth:
		return fmt.Errorf("cannot open the database file: %w", err)
	case sqlite3.ErrIoErr:
		return fmt.Errorf("disk I/O error: %w", err)
	case sqlite3.ErrInterrupt:
		return fmt.Errorf("database operation interrupted: %w", err)
	}
	return err
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED:
// another connection holds a lock.
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// writeFailed translates the error of a write transaction and reports it
// to Options.OnWriteError when the database failed it: a driver error,
// other than a constraint (a request refused) or an interruption (a
// canceled context).
func (db *DB) writeFailed(err error) error {
	terr := db.translate(err)
	var se sqlite3.Error
	if db.opts.OnWriteError != nil && errors.As(err, &se) && se.Code != sqlite3.ErrConstraint && se.Code != sqlite3.ErrInterrupt &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		db.opts.OnWriteError(terr)
	}
	return terr
}

// retryBusy calls fn until it does not fail with SQLITE_BUSY, for at most
// the busy timeout. It is for the few operations that SQLite fails with
// SQLITE_BUSY without calling its busy handler (switching a new file to
// WAL while another connection opens it).
func (db *DB) retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(db.opts.BusyTimeout)
	wait := time.Millisecond
	for {
		err := fn()
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
