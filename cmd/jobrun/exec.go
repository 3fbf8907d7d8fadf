package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/postgres"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/access"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/ui"
)

const defaultAddr = "127.0.0.1:7070"

func execCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command as a job: store its output and serve it live",
		ArgsUsage: "-- CMD [ARGS...]",
		Flags: append([]cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "name", Usage: "job `NAME` (default: the command line)"},
			&cli.StringFlag{Name: "addr", Usage: "serve the job's page and API at `HOST:PORT` (default " + defaultAddr + ", or the next free port)", EnvVars: []string{"JOBRUN_ADDR"}},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not echo the command's output"},
			&cli.StringFlag{Name: "stdin", Value: "inherit", Usage: "`inherit` jobrun's stdin, or null"},
			&cli.DurationFlag{Name: "kill-after", Value: 10 * time.Second, Usage: "after forwarding a signal, SIGKILL the job this much later"},
			&cli.DurationFlag{Name: "linger", Value: 5 * time.Second, Usage: "after the job ends, wait up to this long for a viewer that is reconnecting or whose page is loading (viewers still receiving the end are always waited for; with none, exec exits at once)"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "find progress in the output: `auto` (also heuristics such as \"45%\"), explicit (::progress lines and machine-readable dialects only) or off"},
			&cli.StringFlag{Name: "progress-regex", Usage: "a regular expression `RE` with a named group percent, or current and total (and optionally message), tried first on every line"},
			&cli.BoolFlag{Name: "pty", Usage: "run the command on a pseudo-terminal (one output stream, tty), so that tools draw their progress bars"},
			&cli.IntFlag{Name: "cols", Usage: "with --pty: the terminal's width in `COLUMNS` (default: jobrun's terminal, or 80)"},
			&cli.IntFlag{Name: "rows", Usage: "with --pty: the terminal's height in `ROWS` (default: jobrun's terminal, or 24)"},
			serverFlag("report the job to the jobrun serve at `URL` instead of serving it here (default: the jobrun serve at --addr, if one answers there, unless --db or --standalone is given)"),
			&cli.BoolFlag{Name: "standalone", Usage: "store and serve the job here even if a jobrun serve answers at --addr or JOBRUN_SERVER is set"},
			&cli.DurationFlag{Name: "flush-timeout", Value: 30 * time.Second, Usage: "with a server: after the job ends, wait this long for the server to acknowledge everything"},
			&cli.StringSliceFlag{Name: "mask-env", Usage: "replace the value of the environment variable `NAME` with *** in the stored, streamed and echoed output (repeatable)"},
		}, append(logFlags(), clientFlags()...)...),
		// Like env(1) and timeout(1), exec's own usage errors exit 125, so
		// they cannot be mistaken for the command's exit status.
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return fmt.Errorf("exec: %v (see jobrun exec --help)", err)
		},
		Action: func(c *cli.Context) error { return runExec(c, io) },
	}
}

// runExec runs a job: here, storing and serving it (standalone), or here
// while reporting it to a jobrun serve (agent mode, exec_agent.go).
func runExec(c *cli.Context, io stdio) error {
	x, err := parseExecJob(c, io)
	if err != nil {
		return err
	}
	x.followMemory = tuneMemory()
	// A closed stdout (jobrun exec ... | head) must give EPIPE, not kill
	// jobrun. Notify rather than Ignore: an ignored signal would be
	// inherited by the child.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)

	server, hc, err := execServer(c)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	if server != "" {
		x.http = hc
		return runExecAgent(c, io, server, x)
	}
	if postgres.IsURL(c.String("db")) {
		// Agents always report through a server: nothing in PostgreSQL
		// could tell this process's death from a live runner.
		return usageError("exec: --db (or JOBRUN_DB) names a PostgreSQL database, which jobrun exec does not write to; " +
			"report the job to a jobrun serve of that database with --server URL (or JOBRUN_SERVER)")
	}
	return runStandalone(c, io, x)
}

// tuneMemory sets exec's soft memory limit and GC target, unless
// GOMEMLIMIT or GOGC say otherwise. A soft limit keeps exec well under
// 64 MB whatever the output size; under it, a GOGC of 400 lets the heap
// grow before collecting, since replay allocates in large pages over a
// small live heap (replay of 1M lines: about a third faster, peak RSS
// +5 MB; docs/benchmarks.md). The limit follows the viewers
// (followViewers): a fixed one would have the collector run back to back
// as soon as many viewers connect.
func tuneMemory() (follow bool) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetMemoryLimit(memoryFor(0))
	return true
}

// memoryFor is exec's soft memory limit with n connections open: 32 MiB
// for the job, plus 128 KiB a connection (one takes about 40 KiB; the rest
// is headroom for the pages and batches in flight).
func memoryFor(n int) int64 { return 32<<20 + int64(n)*(128<<10) }

// followViewers keeps the soft memory limit in step with srv's open
// connections until stop is closed.
func followViewers(srv *api.Server, stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	last := -1
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if n := srv.Connections(); n != last {
			last = n
			debug.SetMemoryLimit(memoryFor(n))
		}
	}
}

// runStandalone stores the job in the local database and serves its page
// and API on loopback while it runs. Shutdown follows the data: the
// runner has committed the exit event; the viewers that still need this
// process get it; then the connections close, and the store.
func runStandalone(c *cli.Context, io stdio, x execJob) error {
	heartbeat, err := heartbeatFromEnv()
	if err != nil {
		return usageError("exec: %v", err)
	}
	ln, err := listen(c)
	if err != nil {
		return err
	}
	defer ln.Close()
	db, err := openDB(c)
	if err != nil {
		return err
	}
	defer db.Close()
	// Storage failures reach the user as one clear message from the
	// runner, not as log lines: errors only, unless --log-level asks.
	logger, err := newLogger(c, io.err, slog.LevelError)
	if err != nil {
		return err
	}
	hub := stream.NewHub(db, stream.HubOptions{Changes: db.Changes(), Logger: logger})
	defer hub.Close()

	fg, err := x.startForeground(c, x.runner(c, io, db, hub, logger), x.spec(""))
	if err != nil {
		return err
	}
	defer fg.stop()
	job := fg.run.Job()
	page := startPage(ln, db, hub, fg.run, heartbeat, logger)
	if x.followMemory {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			followViewers(page.api, stop)
		}()
		defer func() { close(stop); <-done }()
	}
	fmt.Fprintf(io.err, "jobrun: job %d: http://%s/jobs/%d%s", job.ID, ln.Addr(), job.ID, x.pty.eol)

	res := fg.wait(nil, nil)
	page.linger(fg.run.Job(), c.Duration("linger"), fg.sigs)
	page.shutdown()
	return exitWith(res.ExitCode)
}

// page is exec's embedded server: the job's page and API on loopback.
type page struct {
	api    *api.Server
	http   *http.Server
	served chan error
	logger *slog.Logger
}

// startPage serves the job's page and API on ln.
func startPage(ln net.Listener, db *sqlite.DB, hub *stream.Hub, r *jobs.Run, heartbeat time.Duration, logger *slog.Logger) *page {
	id := r.Job().ID
	srv := &api.Server{
		Hub:       hub,
		Store:     storeAdapter{db},
		Info:      api.Info{App: "jobrun", Role: "exec", Version: version()},
		Logger:    logger,
		Heartbeat: heartbeat,
		// The page's Cancel button: this process runs exactly one job.
		Cancel: func(ctx context.Context, jid jobs.ID) error {
			if jid != id {
				return fmt.Errorf("job %d is not run by this jobrun process: %w", jid, jobs.ErrConflict)
			}
			r.Cancel()
			return nil
		},
	}
	p := &page{
		api: srv,
		http: &http.Server{
			Handler:           access.RestrictHost(routes(srv)),
			ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		served: make(chan error, 1),
		logger: logger,
	}
	go func() { p.served <- p.http.Serve(ln) }()
	return p
}

// linger waits, after the job's end, only while some viewer still needs
// this process (api.Server.WaitViewers): open streams until they are sent
// the exit event, polls about to ask again, and, up to d, pages just
// loaded and streams just dropped. A signal stops the wait. Nobody
// watching: no wait at all.
func (p *page) linger(j jobs.Job, d time.Duration, sigs <-chan os.Signal) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	p.api.WaitViewers(ctx, j, d)
}

// shutdown closes the streams first (Shutdown leaves WebSockets alone and
// would wait for event streams until its deadline), then the server.
func (p *page) shutdown() {
	p.api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = p.http.Shutdown(ctx)
	cancel()
	if err := <-p.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		p.logger.Warn("http server", "err", err)
	}
}

// listen binds --addr; without an explicit address it takes the default
// port or the next free one after it.
func listen(c *cli.Context) (net.Listener, error) {
	if addr := c.String("addr"); addr != "" {
		// The embedded server has no authentication: it serves loopback
		// only. Serving other machines is jobrun serve's job.
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("exec: --addr %q: %v", addr, err)
		}
		if !isLoopbackHost(host) {
			return nil, fmt.Errorf("exec: --addr %s is not a loopback address; the job page of jobrun exec is served on loopback only (use jobrun serve with a token to serve other machines)", addr)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("exec: cannot listen on --addr %s: %w", addr, err)
		}
		return ln, nil
	}
	host, portStr, _ := net.SplitHostPort(defaultAddr)
	port, _ := strconv.Atoi(portStr)
	var lastErr error
	for i := 0; i < 100; i++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port+i)))
		if err == nil {
			return ln, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("exec: no free port from %s on: %w", defaultAddr, lastErr)
}

// routes puts the API and the pages on one mux.
func routes(apiSrv *api.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", apiSrv)
	mux.Handle("/", apiSrv.Pages(ui.Handler())) // a page loaded is a viewer coming
	return mux
}

// storeAdapter gives api.Server the job listing in its own terms.
type storeAdapter struct{ serverStore }

// Jobs lists jobs for GET /api/jobs.
func (a storeAdapter) Jobs(ctx context.Context, f jobs.Filter, limit int, before jobs.ID) ([]jobs.Job, error) {
	return a.serverStore.Jobs(ctx, store.JobsQuery{Limit: limit, Before: before, Filter: f})
}
