package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/search"
)

func logsCommand(sio stdio) *cli.Command {
	cmd := &cli.Command{
		Name:      "logs",
		Usage:     "print a job's stored output; -f follows it live; --grep searches it",
		ArgsUsage: "JOB",
		Flags: []cli.Flag{
			dbFlag(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow until the job ends, then exit with its exit status"},
			&cli.StringFlag{Name: "stream", Usage: "only `stdout` or stderr"},
			&cli.Int64Flag{Name: "after", Usage: "start after event `SEQ`"},
			&cli.BoolFlag{Name: "json", Usage: "print events (with --grep: matches) as JSON lines instead of the raw output"},
		},
		Action: func(c *cli.Context) error { return runLogs(c, sio) },
	}
	cmd.Flags = append(cmd.Flags, grepFlags()...)
	return cmd
}

// logsArgs checks the arguments that local and remote logs share: the
// job, --stream and --after.
func logsArgs(c *cli.Context) (ref jobs.Ref, only jobs.Stream, after jobs.Seq, err error) {
	if c.NArg() != 1 {
		return ref, "", 0, usageError("logs: want exactly one JOB (an id or uid), got %d arguments", c.NArg())
	}
	if ref, err = jobs.ParseRef(c.Args().First()); err != nil {
		return ref, "", 0, usageError("logs: %v", err)
	}
	only = jobs.Stream(c.String("stream"))
	if only != "" && only != jobs.StreamStdout && only != jobs.StreamStderr && only != jobs.StreamTTY {
		return ref, "", 0, usageError("logs: --stream must be stdout or stderr, not %q", only)
	}
	if after = jobs.Seq(c.Int64("after")); after < 0 {
		return ref, "", 0, usageError("logs: --after must not be negative")
	}
	return ref, only, after, nil
}

func runLogs(c *cli.Context, sio stdio) error {
	ref, only, after, err := logsArgs(c)
	if err != nil {
		return err
	}
	q, err := grepQuery(c, only, after)
	if err != nil {
		return err
	}
	db, err := openExistingDB(c)
	if err != nil {
		return err
	}
	defer db.Close()
	job, err := db.Job(c.Context, ref)
	if err != nil {
		if errors.Is(err, jobs.ErrNotFound) {
			return fmt.Errorf("logs: no job %s in %s: %w", ref, db.name(), jobs.ErrNotFound)
		}
		return err
	}
	if q != nil {
		return grep(c.Context, sio, func(ctx context.Context, q search.Query) (search.Result, error) {
			return search.Find(ctx, db, job, q, search.Budget{})
		}, *q, c.Bool("json"))
	}
	out := bufio.NewWriterSize(sio.out, 64<<10)
	defer out.Flush()
	w := eventWriter{out: out, only: only, json: c.Bool("json")}

	if !c.Bool("follow") {
		for {
			evs, err := db.Events(c.Context, job.ID, after, 4096)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				out.Flush()
				return w.incomplete(job)
			}
			if err := w.write(evs); err != nil {
				return nil // stdout went away
			}
			after = evs[len(evs)-1].Seq
		}
	}
	switch {
	case after > job.LastSeq:
		return fmt.Errorf("logs: --after %d is beyond job %s's last event (seq %d)", after, ref, job.LastSeq)
	case after == job.LastSeq && job.Status.Final():
		return jobExit(job) // nothing will follow
	}
	if f, ok := sio.out.(*os.File); ok && !w.json {
		w.bar = newProgressBar(out, f, job, after == 0)
	}
	return followLocal(c.Context, db, job, after, &w)
}

// followLocal follows a job in the database until its exit event,
// noticing other processes' writes through the database's Changes
// (SQLite's data version polled, PostgreSQL's LISTEN), and exits with
// the job's exit status.
func followLocal(ctx context.Context, db database, job jobs.Job, after jobs.Seq, w *eventWriter) error {
	hub := stream.NewHub(db, stream.HubOptions{Changes: db.changes()})
	defer hub.Close()
	// A runner killed with SIGKILL never writes its exit event; notice it
	// while following, as any process opening the database would.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // before the caller closes db
	defer cancel()
	wg.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n, _ := db.recoverLost(ctx); n > 0 {
					hub.Poke()
				}
			}
		}
	})
	sub := hub.Subscribe(job.ID, after)
	defer sub.Close()
	for {
		b, err := sub.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := w.write(b.Events); err != nil {
			return nil
		}
		w.out.Flush()
	}
	if w.bar != nil {
		w.bar.clear()
	}
	w.out.Flush()
	final, err := db.Job(context.WithoutCancel(ctx), jobs.Ref{ID: job.ID})
	if err != nil {
		return err
	}
	return jobExit(final)
}

// jobExit is the exit status of logs -f for a finished job: its exit
// code, or 125 when it was lost or its stored log is incomplete (with a
// warning saying why).
func jobExit(j jobs.Job) error {
	if j.Incomplete {
		return &statusErr{code: exitFailure, msg: incompleteWarning(j)}
	}
	if j.Status == jobs.StatusLost || j.ExitCode == nil {
		return &statusErr{code: exitFailure}
	}
	return exitWith(*j.ExitCode)
}

// incompleteWarning says that job j's stored log ends early, and why.
func incompleteWarning(j jobs.Job) string {
	return fmt.Sprintf("logs: warning: the stored log of job %d is incomplete: %s", j.ID, j.IncompleteReason)
}

// eventWriter writes events as raw bytes or JSON lines, and keeps a
// progress bar under the raw bytes when bar is set.
type eventWriter struct {
	out  *bufio.Writer
	only jobs.Stream
	json bool
	buf  []byte
	bar  *progressBar // nil: no bar
	exit *jobs.Event  // the exit event, once written (or filtered out)
}

// incomplete is the verdict of logs without -f once the log is written:
// exit status 3 with a warning when job j (as read before, or as its exit
// event says) has an incomplete stored log, else nil.
func (w *eventWriter) incomplete(j jobs.Job) error {
	if e := w.exit; e != nil && e.Incomplete {
		j.Incomplete, j.IncompleteReason = true, e.IncompleteReason
	}
	if !j.Incomplete {
		return nil
	}
	return &statusErr{code: exitIncomplete, msg: incompleteWarning(j)}
}

func (w *eventWriter) write(evs []jobs.Event) error {
	if w.bar != nil {
		w.bar.clear()
		defer w.bar.draw()
	}
	for i := range evs {
		e := &evs[i]
		if w.bar != nil && e.Type == jobs.TypeProgress {
			w.bar.update(e)
		}
		if e.Type == jobs.TypeExit {
			exit := *e
			w.exit = &exit
		}
		if w.only != "" && (e.Type != jobs.TypeLine || e.Stream != w.only) {
			continue
		}
		if w.json {
			w.buf = append(e.AppendJSON(w.buf[:0]), '\n')
			if _, err := w.out.Write(w.buf); err != nil {
				return err
			}
			continue
		}
		if e.Type != jobs.TypeLine {
			continue
		}
		w.out.Write(e.Data)
		if _, err := w.out.WriteString(e.EOL); err != nil {
			return err
		}
		if w.bar != nil && len(e.Data)+len(e.EOL) > 0 {
			w.bar.wrote(e.EOL)
		}
	}
	return nil
}
