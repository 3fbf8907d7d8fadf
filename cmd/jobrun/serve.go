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
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/ingest"
)

func serveCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the dashboard, job pages, API and streams for every job in the database",
		Flags: append([]cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "addr", Value: defaultAddr, Usage: "listen on `HOST:PORT`", EnvVars: []string{"JOBRUN_ADDR"}},
			&cli.BoolFlag{Name: "insecure", Usage: "allow listening on a non-loopback address without a token"},
			&cli.DurationFlag{Name: "retain", Usage: "remove finished jobs older than `DURATION` (such as 720h), checking periodically; 0 keeps everything"},
		}, append(append(agentFlags(), logFlags()...), securityFlags()...)...),
		Action: func(c *cli.Context) error { return runServe(c, io) },
	}
}

// runServe serves every job of the database: it checks its flags, opens
// the store, starts the front (API, ingest, pages behind the gate) and the
// store's housekeeping, and on SIGINT/SIGTERM shuts down in the order of
// the data (serveShutdown).
func runServe(c *cli.Context, io stdio) error {
	cfg, err := serveFlags(c, io)
	if err != nil {
		return err
	}
	metrics := newServerMetrics()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("serve: cannot listen on %s: %w", cfg.addr, err)
	}
	defer ln.Close()
	ln = cfg.sec.listener(ln)
	db, err := openDatabase(c, dbOptions{serve: true, agentTimeout: cfg.agentTimeout, logger: cfg.logger,
		onCommit: metrics.observeCommit, onWriteError: metrics.observeWriteError})
	if err != nil {
		return err
	}
	defer db.Close()
	// The secret signs sessions and share links: next to a SQLite file,
	// in a PostgreSQL database (shared by every replica).
	if cfg.sec.auth.Secret, err = db.secret(c.Context, func(w string) { cfg.logger.Warn(w) }); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if db.pg != nil {
		db.pg.WatchSecret(func(s []byte) {
			cfg.logger.Warn("jobrun serve: the server secret was rotated; sessions and share links made with the old one end")
			cfg.sec.auth.SetSecret(s)
		})
	}
	metrics.watchStore(db, cfg.logger)
	hub := stream.NewHub(db, stream.HubOptions{Changes: db.changes(), Logger: cfg.logger})
	defer hub.Close()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	apiSrv, ingestSrv := serveHandlers(cfg, db, hub, metrics)
	f := startFront(ln, apiSrv, serveFront(cfg, db, apiSrv, ingestSrv, metrics), cfg.logger)
	cfg.logger.Info("jobrun serve: listening", "url", cfg.sec.url(ln), "db", db.name(),
		"auth", cfg.sec.auth.Enabled(), "tls", cfg.sec.tls != nil)
	stopHousekeeping := startHousekeeping(c, db, hub, cfg.logger)

	select {
	case sig := <-sigs:
		cfg.logger.Info("jobrun serve: shutting down", "signal", sig.String())
	case err := <-f.served:
		f.served <- err
		cfg.logger.Error("jobrun serve: http server stopped", "err", err)
	}
	stopHousekeeping()
	ingestSrv.Close() // 1001: agents reconnect to the restarted server and resend
	f.shutdown(5 * time.Second)
	return nil
}

// serveConfig is serve's flags, checked.
type serveConfig struct {
	addr         string
	loopback     bool
	sec          *serveSecurity
	heartbeat    time.Duration
	agentTimeout time.Duration
	logger       *slog.Logger
}

// serveFlags checks serve's flags and arguments.
func serveFlags(c *cli.Context, io stdio) (serveConfig, error) {
	var cfg serveConfig
	if c.NArg() > 0 {
		return cfg, usageError("serve: unexpected argument %q", c.Args().First())
	}
	cfg.addr = c.String("addr")
	host, _, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return cfg, usageError("serve: --addr %q: %v", cfg.addr, err)
	}
	cfg.loopback = isLoopbackHost(host)
	if cfg.sec, err = securityConfig(c, cfg.addr, cfg.loopback); err != nil {
		return cfg, err
	}
	if cfg.heartbeat, err = heartbeatFromEnv(); err != nil {
		return cfg, usageError("serve: %v", err)
	}
	cfg.agentTimeout = c.Duration("agent-timeout")
	if err := checkAgentFlags(c, cfg.heartbeat); err != nil {
		return cfg, err
	}
	if cfg.logger, err = newLogger(c, io.err, slog.LevelInfo); err != nil {
		return cfg, err
	}
	if r := c.Duration("retain"); r < 0 || (r > 0 && r < time.Second) {
		return cfg, usageError("serve: --retain %s: want 0 (keep everything) or at least 1s", r)
	}
	return cfg, nil
}

// serveHandlers builds the API and the ingest endpoint. Agents (exec
// --server) report their jobs at /api/ingest; a cancel reaches them over
// that connection, through another replica's when they are connected to
// one (PostgreSQL).
func serveHandlers(cfg serveConfig, db database, hub *stream.Hub, metrics *serverMetrics) (*api.Server, *ingest.Server) {
	ingestSrv := &ingest.Server{Store: db, Hub: hub, Heartbeat: cfg.heartbeat,
		AgentTimeout: cfg.agentTimeout, Logger: cfg.logger, Metrics: metrics}
	cancel := ingestSrv.Cancel
	if db.pg != nil {
		db.pg.ServeCancels(ingestSrv.Cancel)
		cancel = func(ctx context.Context, id jobs.ID) error {
			err := ingestSrv.Cancel(ctx, id)
			if errors.Is(err, jobs.ErrConflict) {
				return db.pg.RelayCancel(ctx, id)
			}
			return err
		}
	}
	apiSrv := &api.Server{
		Hub:       hub,
		Store:     storeAdapter{db},
		Info:      api.Info{App: "jobrun", Role: "serve", Version: version()},
		Logger:    cfg.logger,
		Heartbeat: cfg.heartbeat,
		Remover:   removerAdapter{db},
		Metrics:   metrics,
		Cancel:    cancel,

		Auth:           cfg.sec.auth,
		PublicURL:      cfg.sec.publicURL,
		OriginPatterns: cfg.sec.origins,
	}
	return apiSrv, ingestSrv
}

// serveFront is everything serve answers, behind the gate: the API and
// the pages, the ingest endpoint, /healthz (the database answers, and is
// not degraded by failing writes) and /metrics.
func serveFront(cfg serveConfig, db database, apiSrv *api.Server, ingestSrv *ingest.Server, metrics *serverMetrics) http.Handler {
	return cfg.sec.gate(frontMux(apiSrv, map[string]http.Handler{
		"/api/ingest": ingestSrv,
		"/healthz":    api.Health(healthCheck(db, cfg.logger), metrics.health.check),
		"/metrics":    metrics.handler(cfg.logger),
	}), cfg.loopback, cfg.logger)
}

// healthCheck is GET /healthz's check: the database answers. A
// PostgreSQL server's address is logged, not shown.
func healthCheck(db database, logger *slog.Logger) func(context.Context) error {
	if db.pg == nil {
		return db.Ping
	}
	return func(ctx context.Context) error {
		if err := db.Ping(ctx); err != nil {
			logger.Warn("healthz: PostgreSQL does not answer", "err", err)
			return errors.New("PostgreSQL does not answer")
		}
		return nil
	}
}

// startHousekeeping runs the store's periodic work until the returned
// func is called (which waits for it): jobs of local `jobrun exec`
// processes that died become lost, so their viewers see them end; agents
// silent for --lost-after end their jobs as lost (one replica at a time
// on PostgreSQL); --retain prunes.
func startHousekeeping(c *cli.Context, db database, hub *stream.Hub, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(c.Context)
	var wg sync.WaitGroup
	wg.Go(func() { expireAgents(ctx, db, hub, c.Duration("lost-after"), logger) })
	wg.Go(func() { recoverLost(ctx, db, hub, logger) })
	wg.Go(func() { retainJobs(ctx, db, hub, c.Duration("retain"), logger) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// recoverLost ends, every 5 s, the jobs whose runner died, until ctx ends.
func recoverLost(ctx context.Context, db database, hub *stream.Hub, logger *slog.Logger) {
	if db.sq == nil {
		return // PostgreSQL holds agents' jobs only (expireAgents)
	}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := db.recoverLost(ctx); err != nil {
				logger.Warn("recover lost jobs", "err", err)
			} else if n > 0 {
				hub.Poke()
			}
		}
	}
}

// isLoopbackHost reports whether a listen host is a loopback address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
