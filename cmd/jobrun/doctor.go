package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/stream/remote"
)

// jobrun doctor checks the path from this machine to a server the way a
// page uses it and says what works and what to change (doctor_checks.go
// has the checks).

func doctorCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check the way from here to a jobrun server as a browser uses it: proxies, load balancers, TLS, token",
		Description: "doctor checks, in order: TLS (https), that jobrun answers, the token, the WebSocket upgrade, " +
			"that Server-Sent Events are not buffered, long polling, and how long an idle connection survives " +
			"(it holds one silent WebSocket for up to --idle-check and compares with the streams' heartbeat). " +
			"Each check prints ok, warn or fail, and for what is not ok what to change. " +
			"The exit status is 0 when nothing failed, 1 otherwise.",
		Flags: append([]cli.Flag{
			serverFlag("check the jobrun server at `URL` (default http://" + defaultAddr + ")"),
			&cli.DurationFlag{Name: "idle-check", Value: 90 * time.Second, Usage: "hold a silent WebSocket this long to see whether the path cuts idle connections; 0 skips it"},
		}, clientFlags()...),
		Action: func(c *cli.Context) error { return runDoctor(c, io) },
	}
}

func runDoctor(c *cli.Context, io stdio) error {
	if c.NArg() > 0 {
		return usageError("doctor: unexpected argument %q", c.Args().First())
	}
	server := c.String("server")
	if server == "" {
		server = "http://" + defaultAddr
	}
	base, err := normalizeServer(server)
	if err != nil {
		return usageError("doctor: %v", err)
	}
	if d := c.Duration("idle-check"); d < 0 || d > 10*time.Minute {
		return usageError("doctor: --idle-check %s: want 0 (skip) up to 10m", d)
	}
	token, err := clientToken(c)
	if err != nil {
		return usageError("doctor: %v", err)
	}
	d, err := newDoctor(base, token, c.String("ca-cert"))
	if err != nil {
		return usageError("doctor: %v", err)
	}
	d.idle = c.Duration("idle-check")
	fmt.Fprintf(io.out, "jobrun doctor: checking %s as a browser would\n", base)
	failed := d.run(c.Context, func(ck check) { ck.print(io.out) })
	if failed {
		return exitWith(1)
	}
	return nil
}

// doctor holds what the checks share.
type doctor struct {
	base  *url.URL
	token string
	roots *x509.CertPool // nil: the system's
	hc    *http.Client
	probe *remote.Prober // the transport measures, through hc
	idle  time.Duration

	// Learnt on the way.
	heartbeat time.Duration // the server's stream heartbeat
	role      string        // "serve", "exec", or "" when unknown
	access    string        // what the token gives: full, read, ...
}

func newDoctor(base, token, caFile string) (*doctor, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	d := &doctor{base: u, token: token, heartbeat: 20 * time.Second}
	if caFile != "" {
		if d.roots, err = caPool(caFile); err != nil {
			return nil, err
		}
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment, // a browser's proxy too
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: d.roots},
		TLSHandshakeTimeout: 10 * time.Second,
	}
	d.hc = &http.Client{Transport: bearer{token: token, next: tr}}
	d.probe = &remote.Prober{BaseURL: strings.TrimSuffix(u.String(), "/"), HTTP: d.hc}
	return d, nil
}

// bearer adds the token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

// RoundTrip sends r with Authorization: Bearer <token> when there is one.
func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

// url returns the URL of path (with its query) under the base.
func (d *doctor) url(path string) string {
	return strings.TrimSuffix(d.base.String(), "/") + path
}

// Check results.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
	statusSkip = "skip"
)

// check is one line of doctor's report.
type check struct {
	name   string
	status string
	msg    string
	fix    string // what to change, when not ok
}

// print writes the check: "ok    name  message", and "      fix: ..." .
func (ck check) print(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "%-5s %-10s %s\n", ck.status, ck.name, ck.msg)
	if ck.fix != "" && ck.status != statusOK {
		fmt.Fprintf(w, "%-5s %-10s fix: %s\n", "", "", ck.fix)
	}
}

// run runs the checks in order, reporting each as soon as it and those
// before it are done; the long poll and the idle connection run in the
// background meanwhile. It returns whether any check failed.
func (d *doctor) run(ctx context.Context, report func(check)) bool {
	failed := false
	say := func(ck check) {
		failed = failed || ck.status == statusFail
		report(ck)
	}
	say(d.checkTLS(ctx))
	server := d.checkServer(ctx)
	say(server)
	if server.status == statusFail {
		return true // nothing else can work
	}
	tok := d.checkToken(ctx)
	say(tok)
	if tok.status == statusFail {
		for _, name := range []string{"websocket", "sse", "longpoll", "idle"} {
			report(check{name: name, status: statusSkip, msg: "not checked: the server does not let this request in (see the token check)"})
		}
		return true
	}
	ws := d.checkWebSocket(ctx)
	// The slow checks start now and run while the others are reported.
	poll := make(chan check, 1)
	go func() { poll <- d.checkLongPoll(ctx) }()
	idle := make(chan check, 1)
	if ws.status == statusFail {
		idle <- check{name: "idle", status: statusSkip, msg: "not checked: the WebSocket upgrade fails"}
	} else {
		go func() { idle <- d.checkIdle(ctx) }()
	}
	say(ws)
	say(d.checkSSE(ctx))
	say(<-poll)
	if d.idle > 0 && ws.status != statusFail {
		report(check{name: "idle", msg: fmt.Sprintf("holding a silent WebSocket for up to %s ...", d.idle)})
	}
	say(<-idle)
	return failed
}

// roundDuration prints d to a sensible precision.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
