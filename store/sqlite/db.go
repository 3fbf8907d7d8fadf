package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

var _ jobs.Store = (*DB)(nil)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Host names this machine in jobs' host column; RecoverLost only
	// touches running jobs of this host. Default: os.Hostname().
	Host string
	// BusyTimeout is how long a write waits for another process's write
	// transaction before failing. Default: 5s.
	BusyTimeout time.Duration
	// Logger receives warnings (for example about recovered jobs).
	// Default: discard.
	Logger *slog.Logger
	// MustExist makes Open fail (wrapping jobs.ErrNotFound) instead of
	// creating a missing database file: for commands that only read.
	MustExist bool
	// AgentTimeout is how long the agent of a running job reported by an
	// agent may be silent before the job reads as unreachable (see
	// ingest.go). Default: store.DefaultAgentTimeout (60s).
	AgentTimeout time.Duration
	// OnCommit, when set, is called after every write transaction that
	// committed, with how long it took from BEGIN IMMEDIATE (including the
	// wait for the write lock) to the end of COMMIT: for metrics. It must
	// not block.
	OnCommit func(time.Duration)
	// OnWriteError, when set, is called after every write transaction
	// that the database failed (a full disk, a lock held past
	// BusyTimeout, an I/O error, a damaged file), with the error; not for
	// a request the store refused (a conflict, an invalid batch) nor a
	// canceled one: for health checks. It must not block.
	OnWriteError func(error)
	// MaxPages, when above 0, caps the database at that many pages
	// (PRAGMA max_page_count on the writer), so that a write that would
	// grow it further fails with SQLITE_FULL, exactly as on a full disk.
	// It is a test knob: jobrun sets it only from the environment variable
	// JOBRUN_TEST_MAX_PAGES, which only tests set, to fill a database
	// without a small file system.
	MaxPages int
	// WALLimit is the size in bytes of the write-ahead log (the -wal
	// file) above which the DB's checkpointer copies it into the database
	// and truncates it, waiting up to CheckpointWait for readers (see
	// checkpoint.go); it is also the writer's journal_size_limit.
	// Default: 32 MiB.
	WALLimit int64
	// CheckpointWait bounds how long one checkpoint that truncates the
	// WAL waits for the write lock and for readers to leave the WAL; it
	// holds the write lock meanwhile, so appends wait about as long.
	// Default: 100ms.
	CheckpointWait time.Duration
}

// readerConns is the size of the read pool, including the one connection
// pinned for DataVersion.
const readerConns = 8

// DB is a jobrun database: one SQLite file shared with other processes.
// Its methods are safe for concurrent use.
type DB struct {
	path   string
	opts   Options
	writer *sql.DB // one connection, BEGIN IMMEDIATE
	reader *sql.DB // query-only pool
	dv     *sql.Conn
	ckpt   *sql.DB // the checkpointer's connection (checkpoint.go)

	committed chan struct{}      // wakes the checkpointer after a commit
	stopCkpt  context.CancelFunc // ends the checkpointer
	ckptDone  chan struct{}      // closed when it has ended

	mu    sync.Mutex
	locks map[jobs.UID]*runnerLock // runner locks held by this DB
}

// Open opens (creating if needed) the database at path, migrates it to the
// schema this binary knows, and recovers lost jobs of this host (see
// RecoverLost; when that cannot write, a full disk, Open still succeeds,
// for reading). A database written by a newer jobrun is refused with an
// error wrapping jobs.ErrSchemaTooNew.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("open database: host name: %w", err)
		}
		opts.Host = h
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AgentTimeout <= 0 {
		opts.AgentTimeout = store.DefaultAgentTimeout
	}
	if opts.WALLimit <= 0 {
		opts.WALLimit = defaultWALLimit
	}
	if opts.CheckpointWait <= 0 {
		opts.CheckpointWait = defaultCheckpointWait
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if opts.MustExist {
		if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s: %w", abs, jobs.ErrNotFound)
		}
	}
	if err := createFile(abs); err != nil {
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	// One file has one name here: the runner locks live beside the real
	// path, so opening the database through a symlink must not make a live
	// runner's lock look free.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	if err := checkWritable(abs); err != nil {
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	db := &DB{path: abs, opts: opts, locks: make(map[jobs.UID]*runnerLock)}
	if err := db.open(ctx); err != nil {
		db.Close()
		return nil, err
	}
	n, err := db.RecoverLost(ctx)
	if err != nil {
		// A database that cannot be written now (a full disk) can still
		// be read; its dead runners' jobs read as running until a later
		// Open (or RecoverLost) can write their end.
		opts.Logger.Warn("cannot mark the jobs of dead runners as lost now", "db", abs, "err", err)
	}
	if n > 0 {
		opts.Logger.Warn("marked jobs whose runner died as lost", "db", abs, "jobs", n)
	}
	return db, nil
}

// createFile makes the parent folder (0700) and an empty database file
// (0600) unless they exist, so that SQLite never creates them with the
// umask's wider default. Existing folders keep their mode.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// dsn builds a driver DSN for path: a file: URI, so the path is escaped.
func dsn(path string, params string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + params
}

func (db *DB) open(ctx context.Context) error {
	busy := fmt.Sprintf("_busy_timeout=%d", db.opts.BusyTimeout.Milliseconds())
	// A new (empty) file is made auto_vacuum=incremental before its first
	// table, so that Reclaim can give the pages of removed jobs back to
	// the file system. Not in an existing file: there the pragma is a
	// write transaction at every connect, which fails on a full disk and
	// would keep every reader out.
	params := "_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=on&_txlock=immediate&_stmt_cache_size=16&" + busy
	if fi, err := os.Stat(db.path); err == nil && fi.Size() == 0 {
		params = "_auto_vacuum=incremental&" + params
	}
	var err error
	if db.writer, err = db.openConn(params); err != nil {
		return err
	}
	// The writer connection switches the file to WAL (persistent) before
	// any reader connects. On a new file that another process is opening
	// at the same moment, that switch fails with SQLITE_BUSY at once,
	// without waiting in the busy handler, so wait here instead.
	if err := db.retryBusy(ctx, func() error { return db.writer.PingContext(ctx) }); err != nil {
		return fmt.Errorf("open database %s: %w", db.path, db.translate(err))
	}
	if err := db.migrate(ctx); err != nil {
		return err
	}
	// The writer is one connection, kept open for the DB's life.
	if db.opts.MaxPages > 0 {
		if _, err := db.writer.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", db.opts.MaxPages)); err != nil {
			return fmt.Errorf("open database %s: %w", db.path, db.translate(err))
		}
	}
	if _, err := db.writer.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", db.opts.WALLimit)); err != nil {
		return fmt.Errorf("open database %s: %w", db.path, db.translate(err))
	}
	db.reader, err = sql.Open("sqlite3", dsn(db.path,
		"_query_only=true&_txlock=deferred&_stmt_cache_size=16&"+busy))
	if err != nil {
		return fmt.Errorf("open database %s: %w", db.path, err)
	}
	db.reader.SetMaxOpenConns(readerConns)
	db.reader.SetMaxIdleConns(readerConns)
	db.dv, err = db.reader.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open database %s: %w", db.path, db.translate(err))
	}
	return db.openCheckpointer()
}

// openConn opens a pool of one connection to the database with the DSN
// parameters params, kept open for the DB's life.
func (db *DB) openConn(params string) (*sql.DB, error) {
	c, err := sql.Open("sqlite3", dsn(db.path, params))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", db.path, err)
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	c.SetConnMaxLifetime(0)
	c.SetConnMaxIdleTime(0)
	return c, nil
}

// Close releases every runner lock this DB holds (their jobs, if still
// running, become lost at the next RecoverLost) and closes the database.
// It must not run concurrently with other methods; a second Close does
// nothing.
func (db *DB) Close() error {
	db.mu.Lock()
	for uid, l := range db.locks {
		l.close()
		delete(db.locks, uid)
	}
	db.mu.Unlock()
	errs := []error{db.closeCheckpointer()}
	if db.dv != nil {
		errs = append(errs, db.dv.Close())
		db.dv = nil
	}
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
		db.reader = nil
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
		db.writer = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// DataVersion returns a number that changes whenever any connection other
// than this DB's pinned reader commits to the file, including this DB's own
// writer and other processes. It is cheap enough to poll every ~100 ms to
// notice jobs written by other processes.
func (db *DB) DataVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := db.dv.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("data version of %s: %w", db.path, db.translate(err))
	}
	return v, nil
}

// writeTx runs fn in one write transaction (BEGIN IMMEDIATE) and commits
// it if fn returns nil.
func (db *DB) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	start := time.Now()
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return db.writeFailed(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return db.writeFailed(err)
	}
	if err := tx.Commit(); err != nil {
		return db.writeFailed(err)
	}
	if db.opts.OnCommit != nil {
		db.opts.OnCommit(time.Since(start))
	}
	db.noteCommit()
	return nil
}

// readTx runs fn in one short read transaction.
func (db *DB) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.reader.BeginTx(ctx, nil)
	if err != nil {
		return db.translate(err)
	}
	defer tx.Rollback()
	return db.translate(fn(tx))
}
