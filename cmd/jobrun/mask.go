package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// maskValues returns the values of the environment variables that
// --mask-env names, for jobs.Runner.Mask. A name that is not set masks
// nothing, and says so: a misspelled name would otherwise leak quietly.
func maskValues(c *cli.Context, io stdio) []string {
	var values []string
	for _, name := range c.StringSlice("mask-env") {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			fmt.Fprintf(io.err, "jobrun: warning: --mask-env %s: %s is not set, so nothing is masked for it\n", name, name)
			continue
		}
		values = append(values, v)
	}
	return values
}
