package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/ingest"
)

// serverFlag is the --server flag of the commands that can work against a
// jobrun serve.
func serverFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "server", Usage: usage, EnvVars: []string{"JOBRUN_SERVER"}}
}

// normalizeServer checks a server URL (http:// or https://, a host, no
// query) and returns it without a trailing slash.
func normalizeServer(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--server %q: want a URL such as http://buildhost:7070", s)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

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

// execServer decides where exec reports: the server named by --server or
// JOBRUN_SERVER; else, unless --standalone or --db is given, a jobrun serve
// found at exec's address (GET /api/info says role "serve"); else nowhere
// ("": exec works standalone). It returns the HTTP client for the server
// (token, --ca-cert). A server that refuses exec's token (or its lack), or
// whose certificate cannot be verified, is an error: exec never falls back
// to working alone because of it. A server that cannot be reached is not:
// the job starts, and its spool is delivered later.
func execServer(c *cli.Context) (string, *http.Client, error) {
	if c.Bool("standalone") {
		return "", nil, nil
	}
	if s := c.String("server"); s != "" {
		server, err := normalizeServer(s)
		if err != nil {
			return "", nil, err
		}
		hc, err := remoteHTTP(c, server)
		if err != nil {
			return "", nil, err
		}
		info, err := probeServer(c.Context, server, hc, 3*time.Second)
		if err := checkAgentAccess(server, info, err); err != nil {
			return "", nil, err
		}
		return server, hc, nil
	}
	if c.IsSet("db") {
		return "", nil, nil
	}
	addr := c.String("addr")
	if addr == "" {
		addr = defaultAddr
	}
	server := "http://" + addr
	hc, err := remoteHTTP(c, server)
	if err != nil {
		return "", nil, err
	}
	info, err := probeServer(c.Context, server, hc, 500*time.Millisecond)
	if errors.Is(err, errNeedsCredential) {
		return "", nil, fmt.Errorf("%s (or run the job alone with --standalone)", credentialHelp(server, err))
	}
	if err == nil && info.Role == "serve" {
		if err := checkAgentAccess(server, info, nil); err != nil {
			return "", nil, err
		}
		return server, hc, nil
	}
	return "", nil, nil
}

// checkAgentAccess turns what probing the server said into exec's error:
// a refused or read-only token, or a certificate that cannot be verified.
func checkAgentAccess(server string, info api.Info, err error) error {
	switch {
	case errors.Is(err, errNeedsCredential), errors.Is(err, errCertificate):
		return errors.New(credentialHelp(server, err))
	case err == nil && info.Access != "" && info.Access != "full":
		return fmt.Errorf("the token gives %s access to %s; reporting a job needs its full token (--token)", info.Access, server)
	}
	return nil
}

// probeRole asks what jobrun process, if any, answers at addr.
func probeRole(ctx context.Context, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/info", nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var info api.Info
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil || info.App != "jobrun" {
		return ""
	}
	return info.Role
}

// execJob is what exec was asked to run, its options checked.
type execJob struct {
	argv     []string
	stdin    *os.File
	progress progress.Mode
	pty      ptyOptions
	mask     []string     // values to mask (--mask-env)
	http     *http.Client // talks to the server (token, --ca-cert)
}

// runExecAgent runs the job here and reports it to server: the runner
// stores it in a spool of its own, and an agent delivers the spool. The
// job starts at once, whether or not the server can be reached.
func runExecAgent(c *cli.Context, io stdio, server string, x execJob) error {
	root, err := spoolRoot()
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	dir := spoolDir(root, server)
	uid := jobs.NewUID()
	sp, err := store.CreateSpool(c.Context, dir, uid, store.Options{})
	if err != nil {
		return fmt.Errorf("exec: %v", err)
	}
	defer sp.Close()
	logger, err := newLogger(c, io.err, slog.LevelWarn)
	if err != nil {
		return err
	}

	var r *jobs.Run
	welcomed := make(chan jobs.ID, 1)
	ag := ingest.NewAgent(sp.DB, ingest.AgentOptions{
		URL:    server,
		HTTP:   x.http,
		Logger: logger,
		OnWelcome: func(id jobs.ID) {
			select {
			case welcomed <- id:
			default:
			}
		},
		OnCancel: func() { r.Cancel() },
	})
	defer ag.Close()
	runner := &jobs.Runner{
		Store:     sp.DB,
		Publisher: ag,
		Logger:    logger,
		KillAfter: c.Duration("kill-after"),
		Stdin:     x.stdin,
		ErrOut:    io.err,

		Progress:      x.progress,
		ProgressRegex: c.String("progress-regex"),
		PTY:           x.pty.on,
		Cols:          x.pty.cols,
		Rows:          x.pty.rows,
		Mask:          x.mask,
	}
	if !c.Bool("quiet") {
		runner.Stdout, runner.Stderr = io.out, io.err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	cwd, _ := os.Getwd()
	r, err = runner.Start(c.Context, jobs.Spec{UID: uid, Name: c.String("name"), Command: x.argv, Dir: cwd})
	if err != nil {
		sp.Remove()
		return fmt.Errorf("exec: %v", err)
	}
	defer r.RestoreTerminal() // done when the job ends; this covers panics here
	winch := x.pty.followResize(r)
	defer signal.Stop(winch)
	ag.Start(r.Job())

	// Spools that earlier execs could not deliver to this server go too,
	// in the background, for as long as this exec runs.
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(c.Context))
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		pushPending(bgCtx, server, x.http, dir, uid, logger)
	}()
	defer func() { bgCancel(); <-bgDone }()

	// The URL: the server's id once it has registered the job; its uid
	// (which the server accepts too) if it cannot be reached right now.
	printed := false
	printURL := func(id jobs.ID) {
		printed = true
		if id > 0 {
			fmt.Fprintf(io.err, "jobrun: job %d: %s/jobs/%d%s", id, server, id, x.pty.eol)
			return
		}
		fmt.Fprintf(io.err, "jobrun: job %s: %s/jobs/%s (the server cannot be reached yet; the output is kept in %s and delivered when it can)%s",
			uid, server, uid, sp.Path(), x.pty.eol)
	}
	wait := time.NewTimer(time.Second)
	defer wait.Stop()
	done := make(chan jobs.Result, 1)
	go func() { done <- r.Wait() }()
	var res jobs.Result
run:
	for {
		select {
		case sig := <-sigs:
			r.Signal(sig)
		case <-winch:
			x.pty.resize(r)
		case id := <-welcomed:
			if !printed {
				printURL(id)
			}
		case <-wait.C:
			if !printed {
				printURL(0)
			}
		case res = <-done:
			break run
		}
	}

	// Wait for the server to acknowledge the end, within --flush-timeout;
	// a signal stops waiting. A job that ended before the server
	// registered it gets its URL now.
	job := r.Job()
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("flush-timeout"))
	flushed := make(chan error, 1)
	go func() { flushed <- ag.Wait(ctx, job.LastSeq) }()
	var ferr error
flush:
	for {
		select {
		case ferr = <-flushed:
			break flush
		case id := <-welcomed:
			if !printed {
				printURL(id)
			}
		case <-sigs:
			cancel()
		}
	}
	cancel()
	acked, id := ag.Acked()
	if !printed {
		printURL(id)
	}
	ag.Close()
	say := func(format string, a ...any) {
		fmt.Fprintf(io.err, "jobrun: job %s: "+format+"\n", append([]any{uid}, a...)...)
	}
	var refused *stream.CloseError
	var httpErr *stream.HTTPError
	switch {
	case ferr == nil && job.Status.Final():
		if err := sp.Remove(); err != nil {
			say("delivered, but the spool could not be removed: %v", err)
		}
	case ferr == nil:
		say("its end could not be stored; the spool %s is kept, and jobrun push will report the job as lost", sp.Path())
	case errors.As(ferr, &refused):
		to, err := sp.Shelve()
		if err != nil {
			to = sp.Path()
		}
		say("the server %s refused the job (%v); its output is kept in %s", server, ferr, to)
	case errors.As(ferr, &httpErr):
		say("NOT DELIVERED: the server %s refuses the connection (%v); the output is kept in %s for `jobrun push`",
			server, ferr, sp.Path())
	default:
		say("NOT DELIVERED: the server %s has acknowledged seq %d of %d within %s; the rest is kept in %s, and `jobrun push` (or the next exec to this server) delivers it",
			server, acked, job.LastSeq, c.Duration("flush-timeout"), sp.Path())
	}
	if res.ExitCode != 0 {
		return exitWith(res.ExitCode)
	}
	return nil
}
