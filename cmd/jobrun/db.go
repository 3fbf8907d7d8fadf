package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
)

// dbFlag is the --db flag every command takes.
func dbFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "db",
		Usage:   "SQLite database `PATH` (default $XDG_DATA_HOME/jobrun/jobrun.db)",
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

// openDB opens the database named by --db or the default one, creating it
// if missing.
func openDB(c *cli.Context) (*sqlite.DB, error) {
	return openDBWith(c, sqlite.Options{})
}

// openExistingDB opens the database for a command that only reads: a
// missing file is an error (exit 1), not a new empty database at a
// mistyped path.
func openExistingDB(c *cli.Context) (*sqlite.DB, error) {
	db, err := openDBWith(c, sqlite.Options{MustExist: true})
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, fmt.Errorf("%w (run jobrun exec first, or name one with --db)", err)
	}
	if err != nil {
		return nil, err
	}
	return db, nil
}

func openDBWith(c *cli.Context, opts sqlite.Options) (*sqlite.DB, error) {
	var err error
	if opts.MaxPages, err = maxPagesFromEnv(); err != nil {
		return nil, err
	}
	path := c.String("db")
	if path == "" {
		if path, err = defaultDBPath(); err != nil {
			return nil, err
		}
	}
	return sqlite.Open(c.Context, path, opts)
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
