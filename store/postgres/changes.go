package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jobrun/jobrun/jobs"
)

// maxDirty bounds the jobs a Changes feed names one by one between two
// calls; beyond it, the next call re-reads every live job's last seq.
const maxDirty = 4096

// Changes is a feed of the commits that other processes make to the
// database (other replicas, operators' commands), for a stream.Hub: every
// write transaction NOTIFYs its job and last seq when it commits, and the
// DB's listener collects them here. This DB's own commits are left out
// (the process publishes them itself), but for new jobs. Each consumer needs its own Changes; its
// NextChanges is for one goroutine. Close it when done.
type Changes struct {
	l    *listener
	wake chan struct{} // cap 1: signalled on every mark

	// Guarded by l.mu.
	dirty  map[jobs.ID]jobs.Seq
	all    bool
	resync time.Time // not zero: notifications may have been missed since then

	primed bool // owned by the NextChanges goroutine: the first call returned
}

// Changes returns a new feed of the database's commits. It starts the
// DB's listening connection if needed.
func (db *DB) Changes() *Changes {
	c := &Changes{wake: make(chan struct{}, 1), dirty: map[jobs.ID]jobs.Seq{}}
	c.l = db.listening()
	if c.l != nil {
		c.l.mu.Lock()
		c.l.feeds[c] = struct{}{}
		c.l.mu.Unlock()
	}
	return c
}

// Close unregisters the feed.
func (c *Changes) Close() {
	if c.l == nil {
		return
	}
	c.l.mu.Lock()
	delete(c.l.feeds, c)
	c.l.mu.Unlock()
}

// NextChanges returns the jobs whose commits were notified since its
// previous call, each with the highest last seq notified, waiting up to
// poll for one (it may return with nothing). all is true when any job may
// have changed: a remove or a prune, and the first call (made once the
// listener listens, so that nothing committed after it is missed). After
// the listening connection dropped, the next call re-reads the last seq of
// every job that ran meanwhile and reports them, with all.
func (c *Changes) NextChanges(ctx context.Context, poll time.Duration) (map[jobs.ID]jobs.Seq, bool, error) {
	if c.l == nil {
		return nil, false, context.Canceled
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	if !c.primed {
		wctx, cancel := context.WithTimeout(ctx, poll)
		err := c.l.waitReady(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			return nil, false, nil // not listening yet: nothing to say
		}
		c.primed = true
		return nil, true, nil
	}
	select {
	case <-c.wake:
	case <-t.C:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	c.l.mu.Lock()
	changed, all, since := c.dirty, c.all, c.resync
	if len(changed) > 0 {
		c.dirty = map[jobs.ID]jobs.Seq{}
	} else {
		changed = nil
	}
	c.all, c.resync = false, time.Time{}
	c.l.mu.Unlock()
	if !since.IsZero() {
		live, err := c.l.db.liveJobs(ctx, time.Since(since))
		if err != nil {
			c.markResync(since) // try again next time
			return nil, false, err
		}
		if changed == nil {
			changed = map[jobs.ID]jobs.Seq{}
		}
		for id, seq := range live {
			changed[id] = max(changed[id], seq)
		}
		all = true
	}
	return changed, all, nil
}

// signal wakes the feed's consumer. l.mu is held.
func (c *Changes) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// markResync makes the next NextChanges re-read the live jobs.
func (c *Changes) markResync(since time.Time) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.resync.IsZero() || since.Before(c.resync) {
		c.resync = since
	}
	c.signal()
}

// mark records that job id committed up to seq, in every feed.
func (l *listener) mark(id jobs.ID, seq jobs.Seq) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.feeds {
		if old, ok := c.dirty[id]; ok || len(c.dirty) < maxDirty {
			c.dirty[id] = max(old, seq)
		} else if c.resync.IsZero() {
			c.resync = time.Now()
		}
		c.signal()
	}
}

// markAll records that any job may have changed, in every feed.
func (l *listener) markAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.feeds {
		c.all = true
		c.signal()
	}
}

// resyncFeeds makes every feed re-read the live jobs, after the listening
// connection was down for d.
func (l *listener) resyncFeeds(d time.Duration) {
	since := time.Now().Add(-d)
	for _, c := range l.feedList() {
		c.markResync(since)
	}
}

func (l *listener) feedList() []*Changes {
	l.mu.Lock()
	defer l.mu.Unlock()
	list := make([]*Changes, 0, len(l.feeds))
	for c := range l.feeds {
		list = append(list, c)
	}
	return list
}

// resyncMargin widens the window of a resync, for the clocks of this
// process and of the database server, which need not agree.
const resyncMargin = 5 * time.Minute

// liveJobs returns the last seq of the jobs that may have changed in the
// last d: those running, and those an agent reported to in that time
// (last_heard is set by the database's clock on every ingest).
func (db *DB) liveJobs(ctx context.Context, d time.Duration) (map[jobs.ID]jobs.Seq, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, last_seq FROM jobs
		WHERE status = $1 OR last_heard > now() - make_interval(secs => $2)`,
		jobs.StatusRunning, (d + resyncMargin).Seconds())
	if err != nil {
		return nil, db.translate(err)
	}
	live := map[jobs.ID]jobs.Seq{}
	var id jobs.ID
	var seq jobs.Seq
	_, err = pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		live[id] = seq
		return nil
	})
	return live, db.translate(err)
}
