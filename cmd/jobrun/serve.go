package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/store"
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

func runServe(c *cli.Context, io stdio) error {
	if c.NArg() > 0 {
		return usageError("serve: unexpected argument %q", c.Args().First())
	}
	addr := c.String("addr")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError("serve: --addr %q: %v", addr, err)
	}
	loopback := isLoopbackHost(host)
	sec, err := securityConfig(c, addr, loopback)
	if err != nil {
		return err
	}
	heartbeat, err := heartbeatFromEnv()
	if err != nil {
		return usageError("serve: %v", err)
	}
	if err := checkAgentFlags(c, heartbeat); err != nil {
		return err
	}
	logger, err := newLogger(c, io.err, slog.LevelInfo)
	if err != nil {
		return err
	}
	if r := c.Duration("retain"); r < 0 || (r > 0 && r < time.Second) {
		return usageError("serve: --retain %s: want 0 (keep everything) or at least 1s", r)
	}
	metrics := newServerMetrics()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: cannot listen on %s: %v", addr, err)
	}
	defer ln.Close()
	ln = sec.listener(ln)
	db, err := openDBWith(c, store.Options{AgentTimeout: c.Duration("agent-timeout"), Logger: logger,
		OnCommit: metrics.observeCommit})
	if err != nil {
		return err
	}
	defer db.Close()
	// The secret next to the database signs sessions and share links.
	if sec.auth.Secret, err = loadSecret(secretPath(db.Path()), func(w string) { logger.Warn(w) }); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	metrics.watchStore(db, logger)
	hub := stream.NewHub(db, stream.HubOptions{Logger: logger})
	defer hub.Close()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	apiSrv := &api.Server{
		Hub:       hub,
		Store:     storeAdapter{db},
		Info:      api.Info{App: "jobrun", Role: "serve", Version: version()},
		Logger:    logger,
		Heartbeat: heartbeat,
		Remover:   removerAdapter{db},
		Metrics:   metrics,

		Auth:           sec.auth,
		PublicURL:      sec.publicURL,
		OriginPatterns: sec.origins,
	}
	// Agents (exec --server) report their jobs at /api/ingest; cancel
	// reaches them over that connection.
	ingestSrv := &ingest.Server{Store: db, Hub: hub, Heartbeat: heartbeat,
		AgentTimeout: c.Duration("agent-timeout"), Logger: logger, Metrics: metrics}
	apiSrv.Cancel = ingestSrv.Cancel
	f := startFront(ln, apiSrv, map[string]http.Handler{
		"/api/ingest": ingestSrv,
		"/healthz":    api.Health(db.Ping),
		"/metrics":    metrics.handler(logger),
	}, func(h http.Handler) http.Handler { return sec.gate(h, loopback, logger) }, logger)
	logger.Info("jobrun serve: listening", "url", sec.url(ln), "db", db.Path(),
		"auth", sec.auth.Enabled(), "tls", sec.tls != nil)

	// Jobs run by local `jobrun exec` processes that died are noticed here
	// too, so their viewers see them end.
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	expired := make(chan struct{})
	go func() {
		defer close(expired)
		expireAgents(ctx, db, hub, c.Duration("lost-after"), logger)
	}()
	recovered := make(chan struct{})
	go func() {
		defer close(recovered)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n, err := db.RecoverLost(ctx); err != nil {
					logger.Warn("recover lost jobs", "err", err)
				} else if n > 0 {
					hub.Poke()
				}
			}
		}
	}()

	retained := make(chan struct{})
	go func() {
		defer close(retained)
		retainJobs(ctx, db, hub, c.Duration("retain"), logger)
	}()

	select {
	case sig := <-sigs:
		logger.Info("jobrun serve: shutting down", "signal", sig.String())
	case err := <-f.served:
		f.served <- err
		logger.Error("jobrun serve: http server stopped", "err", err)
	}
	cancel()
	<-recovered
	<-expired
	<-retained
	ingestSrv.Close() // 1001: agents reconnect to the restarted server and resend
	f.shutdown(5 * time.Second)
	return nil
}

// isLoopbackHost reports whether a listen host is a loopback address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
