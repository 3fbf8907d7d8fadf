package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/ui"
)

// maxHeaderBytes bounds a request's headers, for serve and exec alike.
const maxHeaderBytes = 64 << 10

// front is the HTTP side of a jobrun process: the API, the streams and the
// pages on one listener.
type front struct {
	api    *api.Server
	srv    *http.Server
	served chan error
	logger *slog.Logger
}

// frontMux puts apiSrv, the pages and more handlers by pattern (serve:
// /api/ingest, /healthz, /metrics) on one mux.
func frontMux(apiSrv *api.Server, more map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", apiSrv)
	for pattern, h := range more {
		mux.Handle(pattern, h)
	}
	mux.Handle("/", ui.Handler())
	return mux
}

// startFront serves h (apiSrv and the rest, behind serve's gate:
// serveFront) on ln until shutdown.
func startFront(ln net.Listener, apiSrv *api.Server, h http.Handler, logger *slog.Logger) *front {
	f := &front{
		api: apiSrv,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		served: make(chan error, 1),
		logger: logger,
	}
	go func() { f.served <- f.srv.Serve(ln) }()
	return f
}

// shutdown closes the streams first (http.Server.Shutdown does not close
// hijacked WebSocket connections, and event streams never end by
// themselves) with 1001, then stops taking requests and lets plain ones
// finish for up to grace.
func (f *front) shutdown(grace time.Duration) {
	f.api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		f.srv.Close()
	}
	if err := <-f.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		f.logger.Warn("http server", "err", err)
	}
}
