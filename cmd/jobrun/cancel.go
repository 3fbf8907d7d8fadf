package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
)

func cancelCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a running job: SIGTERM to its process group, SIGKILL after its exec's --kill-after",
		ArgsUsage: "JOB",
		Description: "cancel asks a server to stop the job: jobrun serve (which passes it on to the exec --server " +
			"that runs the job, over its connection) or the embedded server of the jobrun exec that runs it. " +
			"Name the server with --server or JOBRUN_SERVER; the default is http://" + defaultAddr + ", " +
			"where jobrun serve or the first jobrun exec listens (an exec that took another port prints its URL).",
		Flags: append([]cli.Flag{
			serverFlag("the jobrun serve, or the jobrun exec, at `URL` (default http://" + defaultAddr + ")"),
		}, clientFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("cancel: want exactly one JOB (an id or uid), got %d arguments", c.NArg())
			}
			ref, err := jobs.ParseRef(c.Args().First())
			if err != nil {
				return usageError("cancel: %v", err)
			}
			cl, err := remoteClient(c, "cancel")
			if err != nil {
				return err
			}
			if cl == nil {
				if cl, err = newRemoteClient(c, "cancel", "http://"+defaultAddr); err != nil {
					return err
				}
			}
			if err := cl.Cancel(c.Context, ref.String()); err != nil {
				return remoteError("cancel", err)
			}
			fmt.Fprintf(io.err, "jobrun: cancel of job %s sent to %s\n", ref, cl.BaseURL)
			return nil
		},
	}
}
