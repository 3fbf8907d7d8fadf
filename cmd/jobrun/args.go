package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// permuteArgs moves flags that follow a command's positional arguments in
// front of them, so that "jobrun logs 7 -f" means "jobrun logs -f 7". The
// flag package stops at the first positional argument and would otherwise
// leave "-f" as a second job argument. exec is left alone: everything after
// its command belongs to the command.
func permuteArgs(app *cli.App, args []string) []string {
	i := subcommandIndex(args)
	if i < 0 {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil || cmd.Name == "exec" || cmd.SkipFlagParsing {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, positional []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			positional = append(positional, rest[j+1:]...)
			break
		}
		if len(a) > 1 && strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if k := strings.IndexByte(name, '='); k >= 0 {
				continue
			}
			if takesValue[name] && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
			continue
		}
		positional = append(positional, a)
	}
	out := append([]string{}, args[:i+1]...)
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// subcommandIndex is the index in args of the subcommand's name, after the
// global flags, or -1.
func subcommandIndex(args []string) int {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		i++
	}
	if i >= len(args) {
		return -1
	}
	return i
}

// subcommand is the name of the subcommand that args run, or "".
func subcommand(app *cli.App, args []string) string {
	if i := subcommandIndex(args); i >= 0 {
		if cmd := app.Command(args[i]); cmd != nil {
			return cmd.Name
		}
	}
	return ""
}
