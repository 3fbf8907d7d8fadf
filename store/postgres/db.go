package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

var _ jobs.Store = (*DB)(nil)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Host names this machine in the host column of jobs made with
	// CreateJob. Default: os.Hostname().
	Host string
	// AgentTimeout is how long the agent of a running job may be silent
	// before the job reads as unreachable. Default:
	// store.DefaultAgentTimeout (60s).
	AgentTimeout time.Duration
	// Logger receives warnings (the listening connection lost, jobs
	// expired). Default: discard.
	Logger *slog.Logger
	// OnCommit, when set, is called after every write transaction that
	// committed, with how long it took from BEGIN to the end of COMMIT:
	// for metrics. It must not block.
	OnCommit func(time.Duration)
	// NoMigrate makes Open leave the schema alone and refuse a database
	// whose schema version is not exactly this binary's (naming both), or
	// that has none (jobs.ErrNotFound): for the commands other than
	// serve, which only use a database that serve has made.
	NoMigrate bool
	// MaxConns is the pool's size, unless the URL sets pool_max_conns.
	// Default 16.
	MaxConns int32
	// CancelWait is how long RelayCancel waits for the replica holding
	// the agent to confirm. Default 2 s.
	CancelWait time.Duration
}

// DB is a jobrun database in PostgreSQL, shared by any number of
// processes (jobrun serve replicas, and the operators' commands). Its
// methods are safe for concurrent use.
type DB struct {
	pool   *pgxpool.Pool
	name   string // the URL without its password, for messages
	opts   Options
	origin string // names this DB's commits in notifications

	lmu    sync.Mutex
	listen *listener // started on first use (listen.go)
	closed bool
}

// IsURL reports whether a --db value names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://user:pass@host:port/db?sslmode=...),
// checks that it answers, and migrates its schema to this binary's
// (unless Options.NoMigrate). A database written by a newer jobrun is
// refused with an error wrapping jobs.ErrSchemaTooNew that names both
// versions.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	if opts.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("open database: host name: %w", err)
		}
		opts.Host = h
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AgentTimeout <= 0 {
		opts.AgentTimeout = store.DefaultAgentTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	if opts.CancelWait <= 0 {
		opts.CancelWait = 2 * time.Second
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message holds the URL, password included: say less.
		return nil, fmt.Errorf("open database: not a valid PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=...): %w", jobs.ErrInvalid)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "jobrun"
	}
	if !strings.Contains(url, "pool_max_conns=") {
		cfg.MaxConns = opts.MaxConns
	}
	cc := cfg.ConnConfig
	var raw [6]byte
	rand.Read(raw[:])
	db := &DB{name: fmt.Sprintf("postgres://%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database), opts: opts,
		origin: hex.EncodeToString(raw[:])}
	db.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", db.name, db.translate(err))
	}
	if opts.NoMigrate {
		err = checkSchema(ctx, db.pool, db.name)
	} else {
		err = migrate(ctx, db.pool, db.name)
	}
	if err != nil {
		db.pool.Close()
		var se *store.SchemaError
		if errors.As(err, &se) || errors.Is(err, jobs.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("open database %s: %w", db.name, db.translate(err))
	}
	return db, nil
}

// Name is the database's URL without its password.
func (db *DB) Name() string { return db.name }

// Close stops the listening connection (if started) and closes the pool.
// A second Close does nothing.
func (db *DB) Close() error {
	db.lmu.Lock()
	if db.closed {
		db.lmu.Unlock()
		return nil
	}
	db.closed = true
	l := db.listen
	db.lmu.Unlock()
	if l != nil {
		l.close()
	}
	db.pool.Close()
	return nil
}

// Ping checks that the database answers a query (GET /healthz).
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("database %s does not answer: %w", db.name, db.translate(err))
	}
	return nil
}

// writeTx runs fn in one read-write transaction and commits it if fn
// returns nil.
func (db *DB) writeTx(ctx context.Context, fn func(pgx.Tx) error) error {
	start := time.Now()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return db.translate(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return db.translate(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return db.translate(err)
	}
	if db.opts.OnCommit != nil {
		db.opts.OnCommit(time.Since(start))
	}
	return nil
}

// notifyJobs is the channel of job changes: the payload is "ID SEQ
// ORIGIN" (the job, its last committed seq, and the DB that committed it)
// or "*" (any job may have changed: a remove, a prune). NOTIFY is sent
// inside the committing transaction, so it is delivered only after the
// commit, and PostgreSQL folds identical notifications of one transaction
// into one.
const notifyJobs = "jobrun_jobs"

// queueNotify adds the notification of job id's new last seq to b, to
// send in the transaction b belongs to.
func (db *DB) queueNotify(b *pgx.Batch, id jobs.ID, last jobs.Seq) {
	b.Queue("SELECT pg_notify($1, $2)", notifyJobs, fmt.Sprintf("%d %d %s", id, last, db.origin))
}

// NotifyAll tells every replica that any job may have changed (after a
// remove or a prune), so that their dashboards re-read the job list.
func (db *DB) NotifyAll(ctx context.Context) error {
	if _, err := db.pool.Exec(ctx, "SELECT pg_notify($1, '*')", notifyJobs); err != nil {
		return fmt.Errorf("notify replicas: %w", db.translate(err))
	}
	return nil
}
