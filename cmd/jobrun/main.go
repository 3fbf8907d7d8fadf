// Command jobrun runs long jobs, stores every byte of their output in
// SQLite and streams it live to browsers and terminals.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/stream/remote"
)

func main() {
	os.Exit(run(context.Background(), os.Args, stdio{os.Stdin, os.Stdout, os.Stderr}))
}

// stdio is the process's standard files; tests pass their own.
type stdio struct {
	in       *os.File
	out, err io.Writer
}

// run is the testable seam of main: it never calls os.Exit. Every
// subcommand's error becomes its exit status and message in exitStatus.
func run(ctx context.Context, args []string, io stdio) int {
	app := newApp(io)
	ran := false
	for _, cmd := range app.Commands {
		action := cmd.Action
		cmd.Action = func(c *cli.Context) error {
			ran = true
			return action(c)
		}
	}
	cmd := subcommand(app, args)
	err := app.RunContext(ctx, permuteArgs(app, args))
	if err != nil && !ran && !errors.Is(err, errUsage) {
		// Errors before any action come from parsing the command line.
		err = &usageErr{msg: err.Error()}
	}
	code, msg := exitStatus(cmd, err)
	if msg != "" {
		fmt.Fprintln(io.err, "jobrun:", msg)
	}
	return code
}

func newApp(io stdio) *cli.App {
	return &cli.App{
		Name:            "jobrun",
		Usage:           "run long jobs, keep every byte of their output, watch them live in a browser",
		Version:         version(),
		Reader:          io.in,
		Writer:          io.out,
		ErrWriter:       io.err,
		HideHelpCommand: true,
		// A usage mistake prints one line to stderr, not the whole help
		// to stdout, where it would pollute piped output.
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError("%v (see jobrun --help)", err)
		},
		// Errors are printed and mapped to exit codes by run, never by os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			execCommand(io),
			withRemote(lsCommand(io), func(c *cli.Context, cl *remote.Client) error { return remoteLs(c, io, cl) }),
			withRemote(logsCommand(io), func(c *cli.Context, cl *remote.Client) error { return remoteLogsAction(c, io, cl) }),
			serveCommand(io),
			progressCommand(io),
			pushCommand(io),
			cancelCommand(io),
			rmCommand(io),
			pruneCommand(io),
			shareCommand(io),
			doctorCommand(io),
			migrateCommand(io),
			secretCommand(io),
		},
	}
}

// version is the module version stamped by the go command, or "dev".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
