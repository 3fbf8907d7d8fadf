package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/remote"
)

func pruneCommand(io stdio) *cli.Command {
	return withRemote(&cli.Command{
		Name:  "prune",
		Usage: "remove finished jobs older than a duration, and their output, and give the space back",
		Description: "prune removes every finished job that ended more than --older-than ago, except the --keep newest jobs; " +
			"running jobs are never removed. The output is deleted a little at a time, so jobs that run meanwhile are not held up. " +
			"Databases created by this version of jobrun give the freed space back to the file system at once; " +
			"an older database keeps it for new output until prune --vacuum rewrites it (once) while no job runs.",
		Flags: []cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "older-than", Required: true, Usage: "remove jobs that finished more than `DURATION` ago (such as 30d, 12h, 90m)"},
			&cli.IntFlag{Name: "keep", Usage: "always keep the `N` newest jobs, whatever their age"},
			&cli.BoolFlag{Name: "vacuum", Usage: "then rewrite the whole database file to its smallest size (blocks every job's writes while it runs; refused while jobs run)"},
		},
		Action: func(c *cli.Context) error {
			q, err := pruneArgs(c)
			if err != nil {
				return err
			}
			db, err := openExistingDB(c)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := pruneDB(c.Context, db, q)
			if err != nil {
				return changeError("prune", err)
			}
			printPruned(io, res)
			return nil
		},
	}, func(c *cli.Context, cl *remote.Client) error {
		q, err := pruneArgs(c)
		if err != nil {
			return err
		}
		res, err := cl.Prune(c.Context, q)
		if err != nil {
			return changeError("prune", err)
		}
		printPruned(io, res)
		return nil
	})
}

// pruneArgs checks prune's flags.
func pruneArgs(c *cli.Context) (api.PruneRequest, error) {
	if c.NArg() > 0 {
		return api.PruneRequest{}, usageError("prune: unexpected argument %q", c.Args().First())
	}
	age, err := parseAge(c.String("older-than"))
	if err != nil {
		return api.PruneRequest{}, usageError("prune: --older-than: %v", err)
	}
	if c.Int("keep") < 0 {
		return api.PruneRequest{}, usageError("prune: --keep must not be negative")
	}
	return api.PruneRequest{OlderThanSeconds: int64(age / time.Second), Keep: c.Int("keep"), Vacuum: c.Bool("vacuum")}, nil
}

// parseAge parses a duration as Go does ("12h", "90m") or in days ("30d",
// "1.5d"), at least one second.
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("%q: want a duration such as 30d, 12h or 90m", s)
		}
		d = time.Duration(n * float64(24*time.Hour))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 30d, 12h or 90m", s)
		}
	}
	if d < time.Second {
		return 0, fmt.Errorf("%q: want at least 1s", s)
	}
	return d, nil
}

// pruneDB prunes db as q asks, then gives the freed space back: step by
// step (Reclaim), or by rewriting the file (Vacuum, only while no job
// runs, since it blocks every writer).
func pruneDB(ctx context.Context, db serverStore, q api.PruneRequest) (api.PruneResult, error) {
	if q.Vacuum {
		st, err := db.Stats(ctx)
		if err != nil {
			return api.PruneResult{}, err
		}
		if n := st.Jobs[jobs.StatusRunning] + st.Jobs[jobs.StatusUnreachable]; n > 0 {
			return api.PruneResult{}, fmt.Errorf("--vacuum: %d jobs are running, and rewriting the database would hold up their output; "+
				"prune without --vacuum now, and vacuum when no job runs: %w", n, jobs.ErrConflict)
		}
	}
	res, err := db.Prune(ctx, store.PruneQuery{Before: time.Now().Add(-q.OlderThan()), Keep: q.Keep}, store.RemoveOptions{})
	out := api.PruneResult{Removed: res.Removed}
	if out.Removed == nil {
		out.Removed = []jobs.ID{}
	}
	if err != nil {
		return out, err
	}
	if q.Vacuum {
		before, err := db.Stats(ctx)
		if err != nil {
			return out, err
		}
		if err := db.Vacuum(ctx); err != nil {
			return out, err
		}
		out.FreedBytes = before.FreeBytes
		return out, nil
	}
	out.FreedBytes, err = db.Reclaim(ctx)
	return out, err
}

// printPruned reports what prune did.
func printPruned(io stdio, res api.PruneResult) {
	if len(res.Removed) == 0 {
		fmt.Fprintf(io.err, "jobrun: no job to remove")
	} else {
		ids := make([]string, len(res.Removed))
		for i, id := range res.Removed {
			ids[i] = strconv.FormatInt(int64(id), 10)
		}
		fmt.Fprintf(io.err, "jobrun: removed %d jobs (%s)", len(ids), strings.Join(ids, ", "))
	}
	if res.FreedBytes > 0 {
		fmt.Fprintf(io.err, "; %s given back to the file system", humanBytes(res.FreedBytes))
	}
	fmt.Fprintln(io.err)
}

// humanBytes prints n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// changeError names the command in a failed remove or prune; an unknown
// or running job, or a refused vacuum, keeps its sentinel (exit 1).
func changeError(cmd string, err error) error {
	return fmt.Errorf("%s: %w", cmd, err)
}

// removerAdapter gives api.Server removal in its own terms: the
// server's DELETE /api/jobs/{ref} and POST /api/prune do what jobrun rm
// and jobrun prune do with a database.
type removerAdapter struct{ db serverStore }

var _ api.Remover = removerAdapter{}

// RemoveJob removes a finished job, then gives its space back.
func (a removerAdapter) RemoveJob(ctx context.Context, ref jobs.Ref) (jobs.Job, error) {
	j, err := a.db.RemoveJob(ctx, ref, store.RemoveOptions{})
	if err != nil {
		return j, err
	}
	_, err = a.db.Reclaim(ctx)
	return j, err
}

// Prune is pruneDB.
func (a removerAdapter) Prune(ctx context.Context, q api.PruneRequest) (api.PruneResult, error) {
	return pruneDB(ctx, a.db, q)
}

// retainJobs prunes the jobs that finished more than retain ago, at start
// and then every retain/10 (between 1 s and 1 h), until ctx ends. 0
// retains everything.
func retainJobs(ctx context.Context, db serverStore, hub *stream.Hub, retain time.Duration, logger *slog.Logger) {
	if retain <= 0 {
		return
	}
	t := time.NewTicker(min(max(retain/10, time.Second), time.Hour))
	defer t.Stop()
	for {
		res, err := pruneDB(ctx, db, api.PruneRequest{OlderThanSeconds: int64(retain / time.Second)})
		if len(res.Removed) > 0 {
			logger.Info("retain: removed finished jobs", "jobs", len(res.Removed), "older_than", retain, "freed_bytes", res.FreedBytes)
			hub.MarkChanged(res.Removed...)
			hub.Poke()
		}
		if err != nil && ctx.Err() == nil {
			logger.Warn("retain: prune", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
