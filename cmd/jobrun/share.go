package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream/access"
	"github.com/jobrun/jobrun/stream/api"
)

func shareCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "share",
		Usage:     "print a link that lets anyone who has it watch one job, read-only, until it expires",
		ArgsUsage: "JOB",
		Description: "share prints a link to the job's page with a token signed by the server: whoever opens it can watch " +
			"that job (its page, log and live stream), and nothing else, without the server's token, until the link expires. " +
			"With --server (or JOBRUN_SERVER) the server makes the link (it needs the full token). Without, share signs it " +
			"with the secret next to the local database (<db>.secret), for the jobrun serve of that database, whose address " +
			"--url gives.",
		Flags: append([]cli.Flag{
			dbFlag(),
			serverFlag("ask the jobrun serve at `URL` for the link"),
			&cli.DurationFlag{Name: "expires", Value: 24 * time.Hour, Usage: "the link works for this long (at most 8784h, a year)"},
			&cli.StringFlag{Name: "url", EnvVars: []string{"JOBRUN_PUBLIC_URL"},
				Usage: "without --server: the address of the jobrun serve of the database, as the link's readers reach it (default http://" + defaultAddr + ")"},
		}, clientFlags()...),
		Action: func(c *cli.Context) error { return runShare(c, io) },
	}
}

func runShare(c *cli.Context, io stdio) error {
	if c.NArg() != 1 {
		return usageError("share: want exactly one JOB (an id or uid), got %d arguments", c.NArg())
	}
	ref, err := jobs.ParseRef(c.Args().First())
	if err != nil {
		return usageError("share: %v", err)
	}
	ttl := c.Duration("expires")
	if ttl < time.Second || ttl > access.MaxShareTTL {
		return usageError("share: --expires %s: want from 1s to %s", ttl, access.MaxShareTTL)
	}
	cl, err := remoteClient(c, "share")
	if err != nil {
		return err
	}
	var link api.ShareLink
	if cl != nil {
		if link, err = cl.Share(c.Context, ref.String(), ttl); err != nil {
			return remoteError("share", err)
		}
	} else if link, err = localShare(c, io, ref, ttl); err != nil {
		return err
	}
	fmt.Fprintln(io.out, link.URL)
	fmt.Fprintf(io.err, "jobrun: anyone with this link can watch job %d (read-only) until %s\n",
		link.Job, link.ExpiresAt.Local().Format("2006-01-02 15:04 MST"))
	return nil
}

// localShare signs a link with the local database's secret.
func localShare(c *cli.Context, io stdio, ref jobs.Ref, ttl time.Duration) (api.ShareLink, error) {
	base := "http://" + defaultAddr
	if u := c.String("url"); u != "" {
		var err error
		if base, err = normalizeServer(u); err != nil {
			return api.ShareLink{}, usageError("share: --url: %v", strings.TrimPrefix(err.Error(), "--server "))
		}
	}
	db, err := openExistingDB(c)
	if err != nil {
		return api.ShareLink{}, err
	}
	defer db.Close()
	j, err := db.Job(c.Context, ref)
	if err != nil {
		return api.ShareLink{}, remoteError("share", err)
	}
	secret, err := db.secret(c.Context, func(w string) { fmt.Fprintln(io.err, "jobrun: warning:", w) })
	if err != nil {
		return api.ShareLink{}, fmt.Errorf("share: %w", err)
	}
	exp := time.Now().Add(ttl).Truncate(time.Second)
	tok := access.ShareToken(secret, j.UID, exp)
	return api.ShareLink{URL: api.ShareURL(base, j.UID, tok), Token: tok, Job: j.ID, UID: j.UID, ExpiresAt: exp}, nil
}
