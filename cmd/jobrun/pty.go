package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/jobrun/jobrun/jobs"
)

// ptyOptions is exec's --pty, --cols and --rows: the job's terminal size
// is given, or follows jobrun's own terminal (its stdout) when that is a
// terminal, or is 80x24.
type ptyOptions struct {
	on         bool
	cols, rows int
	follow     int    // fd of jobrun's terminal whose size the job follows, or -1
	eol        string // ends jobrun's own lines: "\r\n" while its terminal is raw
}

func ptyFlags(c *cli.Context, io stdio, stdin *os.File) (ptyOptions, error) {
	o := ptyOptions{on: c.Bool("pty"), cols: c.Int("cols"), rows: c.Int("rows"), follow: -1, eol: "\n"}
	if !o.on {
		if c.IsSet("cols") || c.IsSet("rows") {
			return o, fmt.Errorf("exec: --cols and --rows need --pty")
		}
		return o, nil
	}
	if o.cols < 0 || o.rows < 0 || o.cols > 0xffff || o.rows > 0xffff || c.IsSet("cols") && o.cols == 0 || c.IsSet("rows") && o.rows == 0 {
		return o, fmt.Errorf("exec: --cols %d --rows %d: want 1..65535", o.cols, o.rows)
	}
	if f, ok := io.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			if !c.IsSet("cols") && !c.IsSet("rows") {
				o.follow = int(f.Fd())
			}
			if !c.IsSet("cols") {
				o.cols = w
			}
			if !c.IsSet("rows") {
				o.rows = h
			}
		}
	}
	// jobs.Runner puts a terminal stdin in raw mode, where "\n" does not
	// return the carriage.
	if stdin != nil && term.IsTerminal(int(stdin.Fd())) {
		if f, ok := io.err.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			o.eol = "\r\n"
		}
	}
	return o, nil
}

// followResize returns a channel of SIGWINCH when the job's terminal
// follows jobrun's, else nil (which blocks forever in a select).
func (o ptyOptions) followResize(r *jobs.Run) chan os.Signal {
	if o.follow < 0 {
		return nil
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	o.resize(r) // in case it changed while the job started
	return ch
}

// resize gives the job's terminal the size of jobrun's.
func (o ptyOptions) resize(r *jobs.Run) {
	if w, h, err := term.GetSize(o.follow); err == nil && w > 0 && h > 0 {
		r.Resize(w, h)
	}
}
