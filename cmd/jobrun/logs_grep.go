package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream/search"
)

// logs --grep: the visual lines of a job that match, as the job page
// shows and searches them (escapes stripped, a \r progress bar as its
// last frame), printed like grep -n: LINE:TEXT. PATTERN is an RE2
// regular expression, case-sensitive, as grep's is a regular expression;
// -F takes it literally, -i ignores case. Found nothing: exit status 1, as
// grep. The search itself is the API's (api.Search on the local
// database, Client.Search on a server), run to the end by search.All.

// grepFlags are the flags of logs --grep.
func grepFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "grep", Usage: "print the lines that match `PATTERN` (an RE2 regular expression), with their line numbers"},
		&cli.BoolFlag{Name: "fixed-strings", Aliases: []string{"F"}, Usage: "with --grep: PATTERN is a plain string"},
		&cli.BoolFlag{Name: "ignore-case", Aliases: []string{"i"}, Usage: "with --grep: ignore case"},
	}
}

// grepQuery reads the search that logs' flags ask for; nil without
// --grep.
func grepQuery(c *cli.Context, only jobs.Stream, after jobs.Seq) (*search.Query, error) {
	if !c.IsSet("grep") {
		if c.Bool("fixed-strings") || c.Bool("ignore-case") {
			return nil, usageError("logs: -F and -i go with --grep PATTERN")
		}
		return nil, nil
	}
	if c.Bool("follow") {
		return nil, usageError("logs: --grep searches what is stored; it does not follow (drop -f)")
	}
	q := &search.Query{
		Text:       c.String("grep"),
		Regex:      !c.Bool("fixed-strings"),
		Case:       !c.Bool("ignore-case"),
		Directives: true, // logs prints them too
		Stream:     only,
		After:      after,
		Limit:      search.MaxLimit,
	}
	if err := q.Check(); err != nil {
		msg := strings.TrimSuffix(err.Error(), ": "+jobs.ErrInvalid.Error())
		return nil, usageError("logs: --grep %s", strings.TrimPrefix(msg, "q="))
	}
	return q, nil
}

// grep prints every match of q that find finds, to the end of the log;
// nothing found is exit status 1.
func grep(ctx context.Context, sio stdio, find func(context.Context, search.Query) (search.Result, error), q search.Query, asJSON bool) error {
	out := bufio.NewWriterSize(sio.out, 64<<10)
	found := false
	err := search.All(ctx, find, q, func(m search.Match) error {
		found = true
		var err error
		if asJSON {
			var b []byte
			if b, err = json.Marshal(m); err == nil {
				_, err = out.Write(append(b, '\n'))
			}
		} else {
			_, err = fmt.Fprintf(out, "%d:%s\n", m.Line, m.Text)
		}
		if err != nil {
			return errStdout
		}
		return nil
	})
	if err == nil {
		err = out.Flush()
		if err != nil {
			return nil // stdout went away
		}
	}
	switch {
	case errors.Is(err, errStdout):
		return nil
	case err != nil:
		return err
	case !found:
		return &statusErr{code: exitRefused}
	}
	return nil
}
