package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/remote"
	"github.com/jobrun/jobrun/stream/search"
)

// remoteClient returns a client for the server named by --server or
// JOBRUN_SERVER, or nil when none is named.
func remoteClient(c *cli.Context, cmd string) (*remote.Client, error) {
	s := c.String("server")
	if s == "" {
		return nil, nil
	}
	server, err := normalizeServer(s)
	if err != nil {
		return nil, usageError("%s: %v", cmd, err)
	}
	return newRemoteClient(c, cmd, server)
}

// newRemoteClient returns a client for server with the token and the
// certificate authority of clientFlags.
func newRemoteClient(c *cli.Context, cmd, server string) (*remote.Client, error) {
	hc, err := remoteHTTP(c, server)
	if err != nil {
		return nil, usageError("%s: %v", cmd, err)
	}
	return &remote.Client{BaseURL: server, HTTP: hc}, nil
}

// withRemote adds --server (and JOBRUN_SERVER) to cmd: when a server is
// named, remote runs instead of cmd's own action, against that server's
// API. A named server wins over --db.
func withRemote(cmd *cli.Command, remote func(c *cli.Context, cl *remote.Client) error) *cli.Command {
	cmd.Flags = append(cmd.Flags, serverFlag("work against the jobrun server at `URL` instead of the local database"))
	cmd.Flags = append(cmd.Flags, clientFlags()...)
	local := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		cl, err := remoteClient(c, cmd.Name)
		if err != nil {
			return err
		}
		if cl == nil {
			return local(c)
		}
		return remote(c, cl)
	}
	return cmd
}

// remoteError names the command in a failed request to a server and adds
// a hint for a refused token or an untrusted certificate. Of the server's
// answers only an unknown job keeps its sentinel (exit 1); any other
// refusal is jobrun failing to do what was asked (125).
func remoteError(cmd string, err error) error {
	var he *stream.HTTPError
	if errors.As(err, &he) && he.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s: %v (set JOBRUN_TOKEN, or --token-file, to the server's token)", cmd, err)
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return fmt.Errorf("%s: %v (for a private certificate authority, name it with --ca-cert FILE)", cmd, err)
	}
	if errors.Is(err, jobs.ErrNotFound) {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return fmt.Errorf("%s: %v", cmd, err)
}

// remoteLs lists the server's jobs (GET /api/jobs).
func remoteLs(c *cli.Context, io stdio, cl *remote.Client) error {
	f, err := lsArgs(c, time.Now())
	if err != nil {
		return err
	}
	page, err := cl.Jobs(c.Context, f, c.Int("limit"), 0)
	if err != nil {
		return remoteError("ls", err)
	}
	if c.Bool("json") {
		return json.NewEncoder(io.out).Encode(page)
	}
	return printJobs(io, page.Jobs, time.Now())
}

// remoteLogsAction checks logs' arguments as runLogs does, then runs
// remoteLogs.
func remoteLogsAction(c *cli.Context, sio stdio, cl *remote.Client) error {
	ref, only, after, err := logsArgs(c)
	if err != nil {
		return err
	}
	q, err := grepQuery(c, only, after)
	if err != nil {
		return err
	}
	if q != nil {
		err := grep(c.Context, sio, func(ctx context.Context, q search.Query) (search.Result, error) {
			return cl.Search(ctx, ref.String(), q)
		}, *q, c.Bool("json"))
		var st *statusErr
		if err != nil && !errors.As(err, &st) {
			return remoteError("logs", err)
		}
		return err
	}
	return remoteLogs(c, sio, cl, ref, only, after)
}

// remoteLogs prints or follows a job of the server: the raw bytes from
// /log, or the events from the stream (with --json, --after or -f), which
// Client.Follow resumes by seq when the connection drops.
func remoteLogs(c *cli.Context, sio stdio, cl *remote.Client, ref jobs.Ref, only jobs.Stream, after jobs.Seq) error {
	ctx := c.Context
	job, err := cl.Job(ctx, ref.String())
	if err != nil {
		return remoteError("logs", err)
	}
	follow := c.Bool("follow")
	out := bufio.NewWriterSize(sio.out, 64<<10)
	defer out.Flush()
	if !follow && !c.Bool("json") && after == 0 {
		body, err := cl.Log(ctx, ref.String(), only)
		if err != nil {
			return remoteError("logs", err)
		}
		defer body.Close()
		if _, err := io.Copy(out, body); err != nil {
			return fmt.Errorf("logs: %v", err)
		}
		out.Flush()
		return (&eventWriter{}).incomplete(job)
	}
	if after > job.LastSeq {
		return fmt.Errorf("logs: --after %d is beyond job %s's last event (seq %d)", after, ref, job.LastSeq)
	}
	if after == job.LastSeq && (job.Status.Final() || !follow) {
		if follow {
			return jobExit(job)
		}
		return (&eventWriter{}).incomplete(job)
	}
	// Without -f, stop at the last event stored when we asked.
	stop := job.LastSeq
	errEnough := errors.New("enough")
	w := eventWriter{out: out, only: only, json: c.Bool("json")}
	var last *jobs.Event
	err = cl.Follow(ctx, ref.String(), after, func(evs []jobs.Event) error {
		if !follow && evs[len(evs)-1].Seq >= stop {
			evs = evs[:stop-evs[0].Seq+1]
		}
		if err := w.write(evs); err != nil {
			return errStdout
		}
		if follow {
			out.Flush()
		}
		last = &evs[len(evs)-1]
		if !follow && last.Seq >= stop {
			return errEnough
		}
		return nil
	})
	switch {
	case errors.Is(err, errStdout):
		return nil
	case err != nil && !errors.Is(err, errEnough):
		return remoteError("logs", err)
	case !follow:
		out.Flush()
		return w.incomplete(job)
	}
	out.Flush()
	if last == nil || last.Type != jobs.TypeExit {
		// The stream ended where we started: the job had ended before.
		if job, err = cl.Job(context.WithoutCancel(ctx), ref.String()); err != nil {
			return remoteError("logs", err)
		}
		return jobExit(job)
	}
	return jobExit(jobs.Job{ID: job.ID, Status: last.Status, ExitCode: last.ExitCode,
		Incomplete: last.Incomplete, IncompleteReason: last.IncompleteReason})
}

// errStdout: our stdout went away (jobrun logs ... | head).
var errStdout = errors.New("stdout closed")
