package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs/progress"
)

func progressCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "progress",
		Usage:     "print a ::progress line: run inside a job to report its progress",
		ArgsUsage: "PERCENT|CURRENT/TOTAL [MESSAGE...]",
		Description: `Prints the directive line that jobrun exec reads as the job's progress, for
example "::progress 45 compiling" or "::progress 3/10 step three". PERCENT is
0..100 (a trailing % is allowed); CURRENT/TOTAL is a count with
0 <= CURRENT <= TOTAL and TOTAL > 0. The line goes to stdout, so it works
anywhere; inside a job it is stored and echoed like any output, marked as a
directive, and followed by a progress event.`,
		// Everything after PERCENT is the message, even "-x" or "--".
		SkipFlagParsing: true,
		Action:          func(c *cli.Context) error { return runProgress(c, io) },
	}
}

func runProgress(c *cli.Context, io stdio) error {
	args := c.Args().Slice()
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return cli.ShowSubcommandHelp(c)
	}
	if len(args) == 0 {
		return usageError("progress: want PERCENT (0..100) or CURRENT/TOTAL, then an optional message")
	}
	// The parser that reads the line in a job decides what is valid, so
	// that jobrun progress never prints a line that would not count.
	line := "::progress " + args[0]
	if msg := strings.Join(strings.Fields(strings.Join(args[1:], " ")), " "); msg != "" { // one line
		line += " " + msg
	}
	p, ok := (&progress.Parser{Mode: progress.Explicit}).Parse([]byte(line))
	if !ok || p.Source != progress.SourceExplicit || strings.ContainsAny(args[0], "\r\n") {
		return usageError("progress: %q is not a progress value: want PERCENT (0..100, e.g. 45 or 45.5%%) or CURRENT/TOTAL (0 <= CURRENT <= TOTAL, TOTAL > 0, e.g. 3/10)", args[0])
	}
	if _, err := fmt.Fprintln(io.out, progress.FormatDirective(p)); err != nil {
		return &statusErr{code: exitRefused, msg: fmt.Sprintf("progress: %v", err)} // stdout is gone: 1, as printf(1)
	}
	return nil
}
