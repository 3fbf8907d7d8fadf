package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/stream/api"
)

func lsCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "ls",
		Usage: "list jobs, newest first",
		Flags: []cli.Flag{
			dbFlag(),
			&cli.BoolFlag{Name: "json", Usage: `print {"jobs":[...],"next_before":...} as GET /api/jobs does`},
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Value: 50, Usage: "show at most `N` jobs"},
			&cli.StringSliceFlag{Name: "status", Usage: "only jobs with this `STATUS` (running, unreachable, succeeded, failed, canceled, lost; repeatable, or a comma list)"},
			&cli.StringFlag{Name: "host", Usage: "only jobs of this `HOST`"},
			&cli.StringFlag{Name: "name", Usage: "only jobs whose name contains `TEXT` (ignoring the case of ASCII letters)"},
			&cli.StringFlag{Name: "since", Usage: "only jobs created since `WHEN`: a duration ago (24h, 7d) or an RFC 3339 time"},
		},
		Action: func(c *cli.Context) error {
			f, err := lsArgs(c, time.Now())
			if err != nil {
				return err
			}
			db, err := openExistingDB(c)
			if err != nil {
				return err
			}
			defer db.Close()
			list, err := db.Jobs(c.Context, store.JobsQuery{Limit: c.Int("limit"), Filter: f})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(io.out).Encode(api.NewJobsPage(list, c.Int("limit")))
			}
			return printJobs(io, list, time.Now())
		},
	}
}

// lsArgs checks ls's arguments and returns its filter; --since is a
// duration before now or a time.
func lsArgs(c *cli.Context, now time.Time) (jobs.Filter, error) {
	var f jobs.Filter
	if c.NArg() > 0 {
		return f, usageError("ls: unexpected argument %q", c.Args().First())
	}
	if n := c.Int("limit"); n < 1 || n > 1000 {
		return f, usageError("ls: --limit must be 1..1000, not %d", n)
	}
	for _, v := range c.StringSlice("status") {
		sts, err := jobs.ParseStatuses(v)
		if err != nil {
			return f, usageError("ls: --status: %v", err)
		}
		f.Statuses = append(f.Statuses, sts...)
	}
	f.Host, f.Name = c.String("host"), c.String("name")
	if v := c.String("since"); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			f.Since = t
		} else if d, err := parseAge(v); err == nil {
			f.Since = now.Add(-d)
		} else {
			return f, usageError("ls: --since %q: want a duration such as 24h or 7d, or an RFC 3339 time such as 2026-11-25T21:00:00Z", v)
		}
	}
	if err := f.Validate(); err != nil {
		return f, usageError("ls: %v", err)
	}
	return f, nil
}

func printJobs(io stdio, list []jobs.Job, now time.Time) error {
	tw := tabwriter.NewWriter(io.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tEXIT\tSTARTED\tDURATION\tPROGRESS")
	for _, j := range list {
		exit := "-"
		if j.ExitCode != nil {
			exit = fmt.Sprint(*j.ExitCode)
		}
		started, dur := "-", "-"
		if j.StartedAt != nil {
			started = j.StartedAt.Local().Format("2006-01-02 15:04:05")
			end := now
			if j.FinishedAt != nil {
				end = *j.FinishedAt
			}
			dur = end.Sub(*j.StartedAt).Round(100 * time.Millisecond).String()
		}
		status := string(j.Status)
		if j.Incomplete {
			status += " (log incomplete)" // the runner could not store all of the output
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, clip(j.Name, 40), status, exit, started, dur, progressCell(j))
	}
	return tw.Flush()
}

// progressCell is the PROGRESS column: the latest percent, with the ETA
// while the job runs ("45% eta 1m20s"), or for a running job without
// progress how long its earlier runs took ("usually 4m10s"), else "-".
func progressCell(j jobs.Job) string {
	running := !j.Status.Final()
	switch p := j.Progress; {
	case p != nil:
		s := formatPercent(p.Percent)
		if p.State == progress.StateError || p.State == progress.StatePaused {
			s += " " + p.State
		}
		if running && p.ETASeconds != nil {
			s += " eta " + formatSeconds(*p.ETASeconds)
		}
		return s
	case running && j.ExpectedSeconds != nil:
		return "usually " + formatSeconds(*j.ExpectedSeconds)
	}
	return "-"
}

// clip shortens s for a table cell, keeping it one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
