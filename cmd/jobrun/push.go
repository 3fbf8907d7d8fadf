package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/store/sqlite"
)

func pushCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "push",
		Usage: "deliver the output that exec --server could not deliver (pending spools) to its server",
		Description: "Each job that jobrun exec reports to a server is kept in a spool under $XDG_STATE_HOME/jobrun/spool/ " +
			"until the server has acknowledged all of it. push delivers every pending spool, to the server it was made for " +
			"(only those of --server when given), and removes what was delivered. Spools of jobs that are still running are left to their exec.",
		Flags: append([]cli.Flag{
			serverFlag("deliver only the spools made for the server at `URL`"),
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up on a job that is not delivered within this long"},
		}, clientFlags()...),
		Action: func(c *cli.Context) error { return runPush(c, io) },
	}
}

func runPush(c *cli.Context, io stdio) error {
	if c.NArg() > 0 {
		return usageError("push: unexpected argument %q", c.Args().First())
	}
	root, err := spoolRoot()
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	var servers []string
	if s := c.String("server"); s != "" {
		server, err := normalizeServer(s)
		if err != nil {
			return usageError("push: %v", err)
		}
		servers = []string{server}
	} else {
		ents, err := os.ReadDir(root)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("push: %v", err)
		}
		for _, e := range ents {
			if s, err := url.QueryUnescape(e.Name()); err == nil && e.IsDir() {
				if server, err := normalizeServer(s); err == nil && spoolDir(root, server) == spoolDir(root, s) {
					servers = append(servers, server)
				}
			}
		}
	}
	logger := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: slog.LevelError}))
	hcs := make(map[string]*http.Client, len(servers))
	for _, server := range servers {
		hc, err := remoteHTTP(c, server)
		if err != nil {
			return usageError("push: %v", err)
		}
		hcs[server] = hc
	}
	var delivered, pending, refused int
	for _, server := range servers {
		dir := spoolDir(root, server)
		uids, err := sqlite.Spools(dir)
		if err != nil {
			return fmt.Errorf("push: %v", err)
		}
		for _, uid := range uids {
			res, err := deliverSpool(c.Context, server, hcs[server], dir, uid, c.Duration("timeout"), logger)
			switch res.outcome {
			case spoolDelivered:
				delivered++
				fmt.Fprintf(io.err, "jobrun: job %s delivered: %s/jobs/%d\n", uid, server, res.id)
			case spoolBusy:
				fmt.Fprintf(io.err, "jobrun: job %s: skipped, its exec is still running and delivers it\n", uid)
			case spoolRefused:
				refused++
				fmt.Fprintf(io.err, "jobrun: job %s: the server %s refused it (%v); its output is kept in %s\n", uid, server, err, res.path)
			default:
				pending++
				fmt.Fprintf(io.err, "jobrun: job %s: NOT DELIVERED to %s (%v); it stays in %s\n", uid, server, err, res.path)
			}
		}
	}
	fmt.Fprintf(io.err, "jobrun: push: %d delivered, %d pending, %d refused\n", delivered, pending, refused)
	if pending+refused > 0 {
		return exitWith(1)
	}
	return nil
}
