package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/ingest"
)

func pushCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "push",
		Usage: "deliver the output that exec --server could not deliver (pending spools) to its server",
		Description: "Each job that jobrun exec reports to a server is kept in a spool under $XDG_STATE_HOME/jobrun/spool/ " +
			"until the server has acknowledged all of it. push delivers every pending spool, to the server it was made for " +
			"(only those of --server when given), and removes what was delivered. Spools of jobs that are still running are left to their exec.",
		Flags: append([]cli.Flag{
			serverFlag("deliver only the spools made for the server at `URL`"),
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up on a job that is not delivered within this long"},
		}, clientFlags()...),
		Action: func(c *cli.Context) error { return runPush(c, io) },
	}
}

func runPush(c *cli.Context, io stdio) error {
	if c.NArg() > 0 {
		return usageError("push: unexpected argument %q", c.Args().First())
	}
	root, err := spoolRoot()
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	var servers []string
	if s := c.String("server"); s != "" {
		server, err := normalizeServer(s)
		if err != nil {
			return usageError("push: %v", err)
		}
		servers = []string{server}
	} else {
		ents, err := os.ReadDir(root)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("push: %v", err)
		}
		for _, e := range ents {
			if s, err := url.QueryUnescape(e.Name()); err == nil && e.IsDir() {
				if server, err := normalizeServer(s); err == nil && spoolDir(root, server) == spoolDir(root, s) {
					servers = append(servers, server)
				}
			}
		}
	}
	logger := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: slog.LevelError}))
	hcs := make(map[string]*http.Client, len(servers))
	for _, server := range servers {
		hc, err := remoteHTTP(c, server)
		if err != nil {
			return usageError("push: %v", err)
		}
		hcs[server] = hc
	}
	var delivered, pending, refused int
	for _, server := range servers {
		dir := spoolDir(root, server)
		uids, err := store.Spools(dir)
		if err != nil {
			return fmt.Errorf("push: %v", err)
		}
		for _, uid := range uids {
			res, err := deliverSpool(c.Context, server, hcs[server], dir, uid, c.Duration("timeout"), logger)
			switch res.outcome {
			case spoolDelivered:
				delivered++
				fmt.Fprintf(io.err, "jobrun: job %s delivered: %s/jobs/%d\n", uid, server, res.id)
			case spoolBusy:
				fmt.Fprintf(io.err, "jobrun: job %s: skipped, its exec is still running and delivers it\n", uid)
			case spoolRefused:
				refused++
				fmt.Fprintf(io.err, "jobrun: job %s: the server %s refused it (%v); its output is kept in %s\n", uid, server, err, res.path)
			default:
				pending++
				fmt.Fprintf(io.err, "jobrun: job %s: NOT DELIVERED to %s (%v); it stays in %s\n", uid, server, err, res.path)
			}
		}
	}
	fmt.Fprintf(io.err, "jobrun: push: %d delivered, %d pending, %d refused\n", delivered, pending, refused)
	if pending+refused > 0 {
		return exitWith(1)
	}
	return nil
}

// What became of one spool.
type spoolOutcome int

const (
	spoolPending   spoolOutcome = iota // not (wholly) delivered; kept
	spoolDelivered                     // acknowledged and removed
	spoolBusy                          // held by another process (its exec, or another push)
	spoolRefused                       // the server refuses the job for good; shelved
)

type spoolResult struct {
	outcome spoolOutcome
	id      jobs.ID // the server's id of the job, once known
	path    string  // where the spool is now
}

// deliverSpool delivers the pending spool of job uid in dir to server,
// waiting at most timeout (0: until ctx ends), and removes it once the
// server has acknowledged all of it. Opening a spool whose exec died ends
// its job as lost first (store.Open's RecoverLost), so the server learns
// how it ended.
func deliverSpool(ctx context.Context, server string, hc *http.Client, dir string, uid jobs.UID, timeout time.Duration, logger *slog.Logger) (spoolResult, error) {
	sp, err := store.OpenSpool(ctx, dir, uid, store.Options{})
	switch {
	case errors.Is(err, store.ErrSpoolBusy):
		return spoolResult{outcome: spoolBusy}, err
	case errors.Is(err, fs.ErrNotExist):
		return spoolResult{outcome: spoolDelivered}, nil // delivered by someone else meanwhile
	case err != nil:
		return spoolResult{path: dir}, err
	}
	defer sp.Close()
	res := spoolResult{path: sp.Path()}
	list, err := sp.Jobs(ctx, store.JobsQuery{Limit: 2})
	if err != nil {
		return res, err
	}
	if len(list) == 0 { // its exec died before the job was made
		res.outcome = spoolDelivered
		return res, sp.Remove()
	}
	j := list[len(list)-1]
	if !j.Status.Final() {
		// Its runner lives (it holds the runner lock but not the spool:
		// cannot happen with jobrun exec, which holds both).
		return spoolResult{outcome: spoolBusy}, fmt.Errorf("job %s is still running", uid)
	}
	ag := ingest.NewAgent(sp.DB, ingest.AgentOptions{URL: server, HTTP: hc, Logger: logger})
	ag.Start(j)
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	werr := ag.Wait(wctx, j.LastSeq)
	_, res.id = ag.Acked()
	ag.Close()
	var ce *stream.CloseError
	switch {
	case werr == nil:
		res.outcome = spoolDelivered
		return res, sp.Remove()
	case errors.As(werr, &ce): // refused for good; an HTTP refusal (a token) may be fixed
		res.outcome = spoolRefused
		if to, err := sp.Shelve(); err == nil {
			res.path = to
		}
	}
	return res, werr
}

// pushPending delivers, one by one, the pending spools of server in dir
// other than except's, until they are done or ctx ends. exec runs it in
// the background; what it cannot deliver stays for later.
func pushPending(ctx context.Context, server string, hc *http.Client, dir string, except jobs.UID, logger *slog.Logger) {
	uids, err := store.Spools(dir)
	if err != nil {
		logger.Debug("list pending spools", "err", err)
		return
	}
	for _, uid := range uids {
		if uid == except || ctx.Err() != nil {
			continue
		}
		res, err := deliverSpool(ctx, server, hc, dir, uid, 0, logger)
		switch res.outcome {
		case spoolDelivered:
			logger.Info("delivered a pending job", "uid", uid, "server", server, "id", res.id)
		case spoolRefused:
			logger.Warn("the server refused a pending job; its spool is set aside", "uid", uid, "path", res.path, "err", err)
		default:
			logger.Debug("pending job not delivered", "uid", uid, "err", err)
		}
	}
}
