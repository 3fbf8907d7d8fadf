package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

// The listener is a DB's one connection outside the pool, on which it
// LISTENs to what the other processes on the database say: job changes
// (notifyJobs), cancel requests and their acknowledgements, a new secret.
// It is started on first use and stopped by Close. When the connection
// drops it reconnects, with a growing pause, and once it listens again
// every Changes feed resyncs (notifications sent meanwhile are lost).
type listener struct {
	db     *DB
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	wg     sync.WaitGroup

	mu       sync.Mutex
	ready    chan struct{} // closed while listening; replaced when the connection drops
	feeds    map[*Changes]struct{}
	acks     map[string]chan struct{} // cancel requests awaiting their acknowledgement
	onCancel func(context.Context, jobs.ID) error
	onSecret func()
}

// listenerName is the application_name of listening connections (see
// pg_stat_activity).
const listenerName = "jobrun listen"

// The channels listened to, besides notifyJobs.
const (
	notifyCancel    = "jobrun_cancel"     // "ID REQ": cancel job ID; acknowledge REQ if its agent is connected here
	notifyCancelAck = "jobrun_cancel_ack" // "REQ": the agent was told
	notifySecret    = "jobrun_secret"     // the secret was replaced
)

// listening returns the DB's listener, starting it on first use; nil once
// the DB is closed.
func (db *DB) listening() *listener {
	db.lmu.Lock()
	defer db.lmu.Unlock()
	if db.closed {
		return nil
	}
	if db.listen == nil {
		ctx, cancel := context.WithCancel(context.Background())
		l := &listener{db: db, ctx: ctx, cancel: cancel, done: make(chan struct{}),
			ready: make(chan struct{}), feeds: map[*Changes]struct{}{}, acks: map[string]chan struct{}{}}
		db.listen = l
		go l.run()
	}
	return db.listen
}

// close stops the listener and waits for it and the handlers it started.
func (l *listener) close() {
	l.cancel()
	<-l.done
	l.wg.Wait()
}

// run connects, listens and dispatches until the listener is closed.
func (l *listener) run() {
	defer close(l.done)
	wait := 100 * time.Millisecond
	first := true
	var dropped time.Time
	for l.ctx.Err() == nil {
		conn, err := l.connect()
		if err != nil {
			if l.ctx.Err() == nil {
				l.db.opts.Logger.Warn("postgres: cannot listen for other replicas' changes; retrying", "err", err, "in", wait)
				if store.Pause(l.ctx, wait) != nil {
					return
				}
				wait = min(2*wait, 5*time.Second)
			}
			continue
		}
		wait = 100 * time.Millisecond
		if !first {
			l.db.opts.Logger.Info("postgres: listening again; viewers re-read what changed meanwhile", "after", time.Since(dropped).Round(time.Millisecond))
			l.resyncFeeds(time.Since(dropped))
		}
		first = false
		l.mu.Lock()
		close(l.ready)
		l.mu.Unlock()
		err = l.receive(conn)
		conn.Close(context.Background())
		l.mu.Lock()
		l.ready = make(chan struct{})
		l.mu.Unlock()
		dropped = time.Now()
		if l.ctx.Err() == nil {
			l.db.opts.Logger.Warn("postgres: the listening connection dropped; reconnecting", "err", err)
		}
	}
}

// connect opens the listening connection and LISTENs.
func (l *listener) connect() (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
	defer cancel()
	cfg := l.db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = listenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, l.db.translate(err)
	}
	for _, ch := range []string{notifyJobs, notifyCancel, notifyCancelAck, notifySecret} {
		// Channel names are our constants: LISTEN takes no parameters.
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			conn.Close(context.Background())
			return nil, l.db.translate(err)
		}
	}
	return conn, nil
}

// receive dispatches notifications until the connection fails or the
// listener is closed.
func (l *listener) receive(conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(l.ctx)
		if err != nil {
			return err
		}
		l.dispatch(n)
	}
}

func (l *listener) dispatch(n *pgconn.Notification) {
	switch n.Channel {
	case notifyJobs:
		if n.Payload == "*" {
			l.markAll()
			return
		}
		f := strings.Fields(n.Payload)
		if len(f) < 2 {
			l.markAll()
			return
		}
		id, err1 := strconv.ParseInt(f[0], 10, 64)
		seq, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			l.markAll()
			return
		}
		// This DB's own commits are published by this process itself
		// (ingest, the reaper), which knows them before the notification
		// comes back: only a new job (seq 0, nothing to publish yet) is
		// news to its dashboards.
		if len(f) > 2 && f[2] == l.db.origin && seq > 0 {
			return
		}
		l.mark(jobs.ID(id), jobs.Seq(seq))
	case notifyCancel:
		idStr, req, _ := strings.Cut(n.Payload, " ")
		id, err := strconv.ParseInt(idStr, 10, 64)
		l.mu.Lock()
		fn := l.onCancel
		l.mu.Unlock()
		if err != nil || fn == nil || req == "" {
			return
		}
		l.wg.Go(func() {
			ctx, cancel := context.WithTimeout(l.ctx, l.db.opts.CancelWait)
			defer cancel()
			if fn(ctx, jobs.ID(id)) != nil {
				return // not here (or failed): another replica may have it
			}
			if _, err := l.db.pool.Exec(ctx, "SELECT pg_notify($1, $2)", notifyCancelAck, req); err != nil {
				l.db.opts.Logger.Warn("postgres: acknowledge a relayed cancel", "job", id, "err", err)
			}
		})
	case notifyCancelAck:
		l.mu.Lock()
		if ch := l.acks[n.Payload]; ch != nil {
			close(ch)
			delete(l.acks, n.Payload)
		}
		l.mu.Unlock()
	case notifySecret:
		l.mu.Lock()
		fn := l.onSecret
		l.mu.Unlock()
		if fn != nil {
			l.wg.Go(fn)
		}
	}
}

// waitReady waits until the listener listens, or ctx ends.
func (l *listener) waitReady(ctx context.Context) error {
	l.mu.Lock()
	ready := l.ready
	l.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return errors.New("postgres: the database is closed")
	}
}
