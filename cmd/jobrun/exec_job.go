package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
)

// execJob is what exec was asked to run, its flags checked: both modes
// (standalone and agent) build their runner and run the job's foreground
// from it.
type execJob struct {
	argv          []string
	name          string
	stdin         *os.File
	quiet         bool
	progress      progress.Mode
	progressRegex string
	pty           ptyOptions
	mask          []string     // values to mask (--mask-env)
	http          *http.Client // talks to the server (token, --ca-cert); agent mode only
	followMemory  bool         // the soft memory limit follows the viewers (tuneMemory)
}

// parseExecJob checks exec's flags and arguments.
func parseExecJob(c *cli.Context, io stdio) (execJob, error) {
	x := execJob{argv: c.Args().Slice(), name: c.String("name"), quiet: c.Bool("quiet"),
		progressRegex: c.String("progress-regex")}
	if len(x.argv) == 0 {
		return x, errors.New("exec: no command given; usage: jobrun exec [flags] -- CMD [ARGS...]")
	}
	switch c.String("stdin") {
	case "inherit":
		x.stdin = io.in
	case "null":
	default:
		return x, fmt.Errorf("exec: --stdin must be inherit or null, not %q", c.String("stdin"))
	}
	var err error
	x.progress, err = progress.ParseMode(c.String("progress"))
	if err == nil {
		_, err = progress.NewParser(x.progress, x.progressRegex)
	}
	if err != nil {
		// progress's errors carry no sentinel; the message still names
		// the kind, as every invalid setting's does.
		return x, fmt.Errorf("exec: --progress/--progress-regex: %v: %w", err, jobs.ErrInvalid)
	}
	if x.pty, err = ptyFlags(c, io, x.stdin); err != nil {
		return x, err
	}
	x.mask = maskValues(c, io)
	return x, nil
}

// runner is the job's runner, storing to st and publishing to pub: the
// one setup of both modes.
func (x execJob) runner(c *cli.Context, io stdio, st jobs.Store, pub jobs.Publisher, logger *slog.Logger) *jobs.Runner {
	r := &jobs.Runner{
		Store:     st,
		Publisher: pub,
		Logger:    logger,
		KillAfter: c.Duration("kill-after"),
		Stdin:     x.stdin,
		ErrOut:    io.err,

		Progress:      x.progress,
		ProgressRegex: x.progressRegex,
		PTY:           x.pty.on,
		Cols:          x.pty.cols,
		Rows:          x.pty.rows,
		Mask:          x.mask,
	}
	if !x.quiet {
		r.Stdout, r.Stderr = io.out, io.err
	}
	return r
}

// spec is what the runner starts, in the current directory.
func (x execJob) spec(uid jobs.UID) jobs.Spec {
	cwd, _ := os.Getwd()
	return jobs.Spec{UID: uid, Name: x.name, Command: x.argv, Dir: cwd}
}

// foreground is a started job seen from jobrun's side: the signals sent to
// jobrun go to the job's process group, and jobrun's terminal size to the
// job's PTY, from the moment the job exists until it ends.
type foreground struct {
	run   *jobs.Run
	pty   ptyOptions
	sigs  chan os.Signal // SIGINT, SIGTERM, SIGHUP sent to jobrun
	winch chan os.Signal // SIGWINCH, when the job's terminal follows jobrun's
	done  chan jobs.Result
}

// startForeground starts the job with runner, catching signals first so
// that none is lost between the start and the loop. Call stop when done.
func (x execJob) startForeground(c *cli.Context, runner *jobs.Runner, spec jobs.Spec) (*foreground, error) {
	f := &foreground{pty: x.pty, sigs: make(chan os.Signal, 4), done: make(chan jobs.Result, 1)}
	signal.Notify(f.sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	r, err := runner.Start(c.Context, spec)
	if err != nil {
		signal.Stop(f.sigs)
		return nil, fmt.Errorf("exec: %w", err)
	}
	f.run = r
	f.winch = x.pty.followResize(r)
	go func() { f.done <- r.Wait() }()
	return f, nil
}

// wait forwards signals and resizes until the job ends; each value from
// also goes to on (nil: none).
func (f *foreground) wait(also <-chan jobs.ID, on func(jobs.ID)) jobs.Result {
	for {
		select {
		case sig := <-f.sigs:
			f.run.Signal(sig)
		case <-f.winch:
			f.pty.resize(f.run)
		case id := <-also:
			on(id)
		case res := <-f.done:
			return res
		}
	}
}

// stop stops catching signals and restores jobrun's terminal (the runner
// does when the job ends; this covers an early return).
func (f *foreground) stop() {
	signal.Stop(f.sigs)
	if f.winch != nil {
		signal.Stop(f.winch)
	}
	f.run.RestoreTerminal()
}
