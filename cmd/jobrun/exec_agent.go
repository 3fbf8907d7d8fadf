package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream/ingest"
)

// runExecAgent runs the job here and reports it to server: the runner
// stores it in a spool of its own, and an agent delivers the spool. The
// job starts at once, whether or not the server can be reached; when it
// ends, exec waits up to --flush-timeout for the server to acknowledge
// everything, and settleSpool decides what becomes of the spool.
func runExecAgent(c *cli.Context, io stdio, server string, x execJob) error {
	root, err := spoolRoot()
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	dir := spoolDir(root, server)
	uid := jobs.NewUID()
	maxPages, err := maxPagesFromEnv() // a test knob: a full spool
	if err != nil {
		return err
	}
	sp, err := sqlite.CreateSpool(c.Context, dir, uid, sqlite.Options{MaxPages: maxPages})
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	defer sp.Close()
	logger, err := newLogger(c, io.err, slog.LevelWarn)
	if err != nil {
		return err
	}

	var fg *foreground
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
		OnCancel: func() { fg.run.Cancel() },
	})
	defer ag.Close()
	fg, err = x.startForeground(c, x.runner(c, io, sp.DB, ag, logger), x.spec(uid))
	if err != nil {
		sp.Remove()
		return err
	}
	defer fg.stop()
	ag.Start(fg.run.Job())

	// Spools that earlier execs could not deliver to this server go too,
	// in the background, for as long as this exec runs.
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(c.Context))
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		pushPending(bgCtx, server, x.http, dir, uid, logger)
	}()
	defer func() { bgCancel(); <-bgDone }()

	url := &jobURL{say: func(s string) { fmt.Fprint(io.err, s+x.pty.eol) }, server: server, uid: uid, spool: sp.Path()}
	first := time.AfterFunc(time.Second, func() { url.print(0) }) // not registered yet: the uid's URL
	defer first.Stop()
	res := fg.wait(welcomed, url.print)

	job := fg.run.Job()
	ferr := flush(c, ag, fg, job.LastSeq, welcomed, url)
	acked, id := ag.Acked()
	url.print(id)
	ag.Close()
	reportDelivery(io, sp, server, uid, job, ferr, acked, c.Duration("flush-timeout"))
	return exitWith(res.ExitCode)
}

// jobURL prints the job's URL once: the server's id once it has
// registered the job, or its uid (which the server accepts too) while it
// cannot be reached.
type jobURL struct {
	say         func(string)
	server      string
	uid         jobs.UID
	spool       string
	mu          sync.Mutex
	printedOnce bool
}

func (u *jobURL) print(id jobs.ID) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.printedOnce {
		return
	}
	u.printedOnce = true
	if id > 0 {
		u.say(fmt.Sprintf("jobrun: job %d: %s/jobs/%d", id, u.server, id))
		return
	}
	u.say(fmt.Sprintf("jobrun: job %s: %s/jobs/%s (the server cannot be reached yet; the output is kept in %s and delivered when it can)",
		u.uid, u.server, u.uid, u.spool))
}

// flush waits for the server to acknowledge the job's end (seq last),
// within --flush-timeout; a signal stops waiting. A job that ended before
// the server registered it gets its URL now.
func flush(c *cli.Context, ag *ingest.Agent, fg *foreground, last jobs.Seq, welcomed <-chan jobs.ID, url *jobURL) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("flush-timeout"))
	defer cancel()
	flushed := make(chan error, 1)
	go func() { flushed <- ag.Wait(ctx, last) }()
	for {
		select {
		case err := <-flushed:
			return err
		case id := <-welcomed:
			url.print(id)
		case <-fg.sigs:
			cancel()
		}
	}
}

// reportDelivery settles the spool after a delivery that ended with ferr
// and says what became of the job.
func reportDelivery(io stdio, sp *sqlite.Spool, server string, uid jobs.UID, job jobs.Job, ferr error, acked jobs.Seq, timeout time.Duration) {
	say := func(format string, a ...any) {
		fmt.Fprintf(io.err, "jobrun: job %s: "+format+"\n", append([]any{uid}, a...)...)
	}
	switch out, path, err := settleSpool(sp, ferr, job.Status.Final()); out {
	case spoolDelivered:
		if err != nil {
			say("delivered, but the spool could not be removed: %v", err)
		}
	case spoolRefused:
		say("the server %s refused the job (%v); its output is kept in %s", server, ferr, path)
	default:
		switch {
		case ferr == nil:
			say("its end could not be stored; the spool %s is kept, and jobrun push will report the job as lost", path)
		case isHTTPRefusal(ferr):
			say("NOT DELIVERED: the server %s refuses the connection (%v); the output is kept in %s for `jobrun push`",
				server, ferr, path)
		default:
			say("NOT DELIVERED: the server %s has acknowledged seq %d of %d within %s; the rest is kept in %s, and `jobrun push` (or the next exec to this server) delivers it",
				server, acked, job.LastSeq, timeout, path)
		}
	}
}
