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
	"path/filepath"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/ingest"
)

// spoolRoot is where agents keep their spools: $XDG_STATE_HOME/jobrun/spool
// (default ~/.local/state/jobrun/spool), one folder per server.
func spoolRoot() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot find the spool folder: no $XDG_STATE_HOME and no home directory (%v)", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "jobrun", "spool"), nil
}

// spoolDir is the folder of one server's spools, named after its URL.
func spoolDir(root, server string) string {
	return filepath.Join(root, url.QueryEscape(server))
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
// its job as lost first (sqlite.Open's RecoverLost), so the server learns
// how it ended.
func deliverSpool(ctx context.Context, server string, hc *http.Client, dir string, uid jobs.UID, timeout time.Duration, logger *slog.Logger) (spoolResult, error) {
	sp, err := sqlite.OpenSpool(ctx, dir, uid, sqlite.Options{})
	switch {
	case errors.Is(err, sqlite.ErrSpoolBusy):
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
	res.outcome, res.path, err = settleSpool(sp, werr, true)
	if werr != nil {
		return res, werr
	}
	return res, err
}

// settleSpool applies the spool rule after a delivery: a job the server
// acknowledged to its end (complete: its exit is in the spool) is removed;
// one the server refuses for good (a close code: the job is gone, or its
// events differ) is set aside in the spool's folder of refused jobs;
// anything else (a timeout, a refused token, an end not stored) is kept
// for jobrun push. It returns the outcome, where the spool is now, and
// the error of removing or shelving it.
func settleSpool(sp *sqlite.Spool, delivery error, complete bool) (spoolOutcome, string, error) {
	var ce *stream.CloseError
	switch {
	case delivery == nil && complete:
		return spoolDelivered, sp.Path(), sp.Remove()
	case errors.As(delivery, &ce): // an HTTP refusal (a token) may be fixed; a close code is final
		to, err := sp.Shelve()
		if err != nil {
			return spoolRefused, sp.Path(), err
		}
		return spoolRefused, to, nil
	}
	return spoolPending, sp.Path(), nil
}

// isHTTPRefusal reports whether a delivery failed on an HTTP answer (the
// upgrade refused: a token, a proxy) rather than a dropped connection.
func isHTTPRefusal(err error) bool {
	var he *stream.HTTPError
	return errors.As(err, &he)
}

// pushPending delivers, one by one, the pending spools of server in dir
// other than except's, until they are done or ctx ends. exec runs it in
// the background; what it cannot deliver stays for later.
func pushPending(ctx context.Context, server string, hc *http.Client, dir string, except jobs.UID, logger *slog.Logger) {
	uids, err := sqlite.Spools(dir)
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
