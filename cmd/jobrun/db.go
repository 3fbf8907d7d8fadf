package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/postgres"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/ingest"
)

// dbFlag is the --db flag every command takes.
func dbFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "db",
		Usage:   "SQLite database `PATH` (default $XDG_DATA_HOME/jobrun/jobrun.db), or a PostgreSQL database postgres://USER:PASS@HOST:5432/DB?sslmode=... (serve, ls, logs, rm, prune, share)",
		EnvVars: []string{"JOBRUN_DB"},
	}
}

// defaultDBPath follows the XDG base directory spec.
func defaultDBPath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot find the database: no $XDG_DATA_HOME and no home directory (%v); use --db", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "jobrun", "jobrun.db"), nil
}

// openDB opens the SQLite database named by --db or the default one,
// creating it if missing: exec's own store.
func openDB(c *cli.Context) (*sqlite.DB, error) {
	path, err := dbPath(c)
	if err != nil {
		return nil, err
	}
	maxPages, err := maxPagesFromEnv()
	if err != nil {
		return nil, err
	}
	return sqlite.Open(c.Context, path, sqlite.Options{MaxPages: maxPages})
}

// maxPagesFromEnv returns the database size cap in pages that the hidden
// JOBRUN_TEST_MAX_PAGES asks for (sqlite.Options.MaxPages), or 0 for none:
// for the database, and for the spool exec --server writes the job into.
// Only tests set it: a database that hits the cap fails its writes as on
// a full disk.
func maxPagesFromEnv() (int, error) {
	v := os.Getenv("JOBRUN_TEST_MAX_PAGES")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, usageError("JOBRUN_TEST_MAX_PAGES=%q: want a number of pages", v)
	}
	return n, nil
}

// dbPath is --db, or the default SQLite path.
func dbPath(c *cli.Context) (string, error) {
	if path := c.String("db"); path != "" {
		return path, nil
	}
	return defaultDBPath()
}

// serverStore is what the commands that serve or manage a whole database
// (serve, ls, logs, rm, prune) need of it, whichever backend holds it.
type serverStore interface {
	stream.History
	api.RangeReader
	ingest.Store
	Jobs(ctx context.Context, q store.JobsQuery) ([]jobs.Job, error)
	ExpireAgents(ctx context.Context, cutoff time.Time) ([]store.Expired, error)
	RemoveJob(ctx context.Context, ref jobs.Ref, o store.RemoveOptions) (jobs.Job, error)
	Prune(ctx context.Context, q store.PruneQuery, o store.RemoveOptions) (store.PruneResult, error)
	Reclaim(ctx context.Context) (int64, error)
	Vacuum(ctx context.Context) error
	Stats(ctx context.Context) (store.Stats, error)
	Ping(ctx context.Context) error
	Close() error
}

// database is an open database of either backend: a SQLite file (sq) or
// a PostgreSQL database (pg), the other nil.
type database struct {
	serverStore
	sq *sqlite.DB
	pg *postgres.DB
}

// dbOptions are what the commands set when they open a database.
type dbOptions struct {
	serve        bool // serve: create a missing SQLite file, migrate a PostgreSQL schema
	agentTimeout time.Duration
	logger       *slog.Logger
	onCommit     func(time.Duration)
	onWriteError func(error) // a write failed (SQLite: /healthz says degraded)
}

// openDatabase opens the database that --db (or JOBRUN_DB) names: a
// postgres:// or postgresql:// URL is PostgreSQL, anything else a SQLite
// file (the default one without --db). Only serve creates: for the other
// commands a missing SQLite file, or a PostgreSQL database without
// jobrun's schema, is an error wrapping jobs.ErrNotFound (exit 1), and
// they never migrate a PostgreSQL schema.
func openDatabase(c *cli.Context, o dbOptions) (database, error) {
	name, err := dbPath(c)
	if err != nil {
		return database{}, err
	}
	if postgres.IsURL(name) {
		pg, err := postgres.Open(c.Context, name, postgres.Options{NoMigrate: !o.serve, AgentTimeout: o.agentTimeout,
			Logger: o.logger, OnCommit: o.onCommit})
		if err != nil {
			return database{}, err
		}
		return database{serverStore: pg, pg: pg}, nil
	}
	maxPages, err := maxPagesFromEnv()
	if err != nil {
		return database{}, err
	}
	sq, err := sqlite.Open(c.Context, name, sqlite.Options{MustExist: !o.serve, AgentTimeout: o.agentTimeout,
		Logger: o.logger, OnCommit: o.onCommit, OnWriteError: o.onWriteError, MaxPages: maxPages})
	if errors.Is(err, jobs.ErrNotFound) {
		return database{}, fmt.Errorf("%w (run jobrun exec first, or name one with --db)", err)
	}
	if err != nil {
		return database{}, err
	}
	return database{serverStore: sq, sq: sq}, nil
}

// openExistingDB opens the database for a command other than serve.
func openExistingDB(c *cli.Context) (database, error) { return openDatabase(c, dbOptions{}) }

// name names the database in messages: its path, or its URL without the
// password.
func (d database) name() string {
	if d.pg != nil {
		return d.pg.Name()
	}
	return d.sq.Path()
}

// changes is the database's feed of commits made elsewhere, for a Hub.
func (d database) changes() stream.Changes {
	if d.pg != nil {
		return d.pg.Changes()
	}
	return d.sq.Changes()
}

// recoverLost ends the jobs of local runners (jobrun exec) that died:
// only SQLite has them.
func (d database) recoverLost(ctx context.Context) (int, error) {
	if d.sq == nil {
		return 0, nil
	}
	return d.sq.RecoverLost(ctx)
}

// secret is the secret that signs sessions and share links: in a file
// next to a SQLite database, in a PostgreSQL database itself (made by the
// first replica). warn receives a warning about a file others can read.
func (d database) secret(ctx context.Context, warn func(string)) ([]byte, error) {
	if d.pg != nil {
		return d.pg.Secret(ctx)
	}
	return loadSecret(secretPath(d.sq.Path()), warn)
}
