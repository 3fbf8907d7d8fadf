package sqlite

import (
	"context"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// Changes is a feed of the commits that other connections make to the
// database file (other processes, and this DB's own writer), for a
// stream.Hub: it polls PRAGMA data_version on the pinned reader
// connection, which changes whenever anyone else commits. SQLite does
// not say which jobs changed, so a change means "any job may have".
// Each consumer needs its own Changes (it keeps the last version seen);
// its methods are for one goroutine.
type Changes struct {
	db    *DB
	last  int64
	known bool
}

// Changes returns a new feed of the database's commits.
func (db *DB) Changes() *Changes { return &Changes{db: db} }

// NextChanges waits poll (or until ctx ends), then reads the data
// version: all is true when it changed since the previous call, and on
// the first call, which has no baseline (a commit may have landed between
// the caller's last read and now). changed is always nil.
func (c *Changes) NextChanges(ctx context.Context, poll time.Duration) (changed map[jobs.ID]jobs.Seq, all bool, err error) {
	t := time.NewTimer(poll)
	select {
	case <-ctx.Done():
		t.Stop()
		return nil, false, ctx.Err()
	case <-t.C:
	}
	v, err := c.db.DataVersion(ctx)
	if err != nil {
		return nil, false, err
	}
	if c.known && v == c.last {
		return nil, false, nil
	}
	c.last, c.known = v, true
	return nil, true, nil
}
