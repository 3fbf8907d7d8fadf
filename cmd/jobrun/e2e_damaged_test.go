package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobrun/jobrun/stream/streamtest"
)

// TestLogsOfDamagedDatabase: reading a log through a damaged page of a
// real database file fails loudly, locally and through a server: jobrun
// logs prints what it could read and exits non-zero, never 0 with a
// truncated log.
func TestLogsOfDamagedDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	d := streamtest.DamagedDB(t, db)
	base := serveDB(t, db)
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"local", []string{"logs", "1"}, "damaged"},
		{"local --json", []string{"logs", "--json", "1"}, "damaged"},
		{"remote", []string{"logs", "--server", base, "1"}, "the transfer broke off"},
		{"remote --json", []string{"logs", "--server", base, "--json", "1"}, "stream closed with 1011"},
		{"remote -f", []string{"logs", "--server", base, "-f", "1"}, "stream closed with 1011"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runJobrun(t, []string{"JOBRUN_DB=" + db}, tc.args...)
			if code != exitFailure || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitFailure, tc.want)
			}
			if !strings.Contains(tc.name, "json") && (len(out) == 0 || len(out) >= len(d.Log) || !bytes.HasPrefix(d.Log, []byte(out))) {
				t.Errorf("printed %d of %d bytes; want what could be read, a proper prefix", len(out), len(d.Log))
			}
		})
	}
}
