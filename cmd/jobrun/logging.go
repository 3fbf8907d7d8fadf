package main

import (
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"
)

// logFlags are --log-format and --log-level, for the commands that log
// (serve, exec).
func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "write log records as `text` (key=value) or json (one object a line)",
			EnvVars: []string{"JOBRUN_LOG_FORMAT"}},
		&cli.StringFlag{Name: "log-level", Usage: "log records at `LEVEL` and above: debug, info, warn or error (default: info for serve, error for exec)",
			EnvVars: []string{"JOBRUN_LOG_LEVEL"}},
	}
}

// newLogger builds the command's one logger from logFlags, writing to w;
// level is the command's default level. Everything the command starts
// gets this logger (or one derived from it), never slog.Default.
func newLogger(c *cli.Context, w io.Writer, level slog.Level) (*slog.Logger, error) {
	if v := c.String("log-level"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, usageError("%s: --log-level %q: want debug, info, warn or error", c.Command.Name, v)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := c.String("log-format"); f {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usageError("%s: --log-format %q: want text or json", c.Command.Name, f)
	}
}
