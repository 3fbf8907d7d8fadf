package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/stream/remote"
)

func rmCommand(io stdio) *cli.Command {
	return withRemote(&cli.Command{
		Name:      "rm",
		Usage:     "remove finished jobs and their output",
		ArgsUsage: "JOB...",
		Description: "rm removes each JOB (an id or uid) and all its output, and gives the space back to the file system " +
			"(in a database created by this version of jobrun; see jobrun prune --vacuum). A job that is still running " +
			"is not removed: cancel it first. With --server, the server removes them.",
		Flags: []cli.Flag{dbFlag()},
		Action: func(c *cli.Context) error {
			refs, err := rmArgs(c)
			if err != nil {
				return err
			}
			db, err := openExistingDB(c)
			if err != nil {
				return err
			}
			defer db.Close()
			var failed error
			for _, ref := range refs {
				j, err := db.RemoveJob(c.Context, ref, store.RemoveOptions{})
				if err != nil {
					failed = changeError("rm", err)
					fmt.Fprintln(io.err, "jobrun:", failed)
					continue
				}
				fmt.Fprintf(io.err, "jobrun: removed job %d (%s)\n", j.ID, jobName(j))
			}
			if freed, err := db.Reclaim(c.Context); err != nil {
				return fmt.Errorf("rm: give the space back: %v", err)
			} else if freed > 0 {
				fmt.Fprintf(io.err, "jobrun: %s given back to the file system\n", humanBytes(freed))
			}
			return silent(failed)
		},
	}, func(c *cli.Context, cl *remote.Client) error {
		refs, err := rmArgs(c)
		if err != nil {
			return err
		}
		var failed error
		for _, ref := range refs {
			j, err := cl.Remove(c.Context, ref.String())
			if err != nil {
				failed = changeError("rm", err)
				fmt.Fprintln(io.err, "jobrun:", failed)
				continue
			}
			fmt.Fprintf(io.err, "jobrun: removed job %d (%s) from %s\n", j.ID, jobName(j), cl.BaseURL)
		}
		return silent(failed)
	})
}

// rmArgs parses rm's job references.
func rmArgs(c *cli.Context) ([]jobs.Ref, error) {
	if c.NArg() == 0 {
		return nil, usageError("rm: want at least one JOB (an id or uid)")
	}
	refs := make([]jobs.Ref, c.NArg())
	for i, a := range c.Args().Slice() {
		ref, err := jobs.ParseRef(a)
		if err != nil {
			return nil, usageError("rm: %v", err)
		}
		refs[i] = ref
	}
	return refs, nil
}

// jobName is how messages name a job: its name, or its command.
func jobName(j jobs.Job) string {
	if j.Name != "" {
		return j.Name
	}
	return strings.Join(j.Command, " ")
}
