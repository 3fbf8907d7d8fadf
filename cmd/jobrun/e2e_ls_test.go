package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// TestLsFilters: jobrun ls --status/--host/--name/--since select the same
// jobs from the database and through a server.
func TestLsFilters(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	dashJobs(t, db, 12) // failed: 3, 6, 9, 12; named deploy: 5, 10
	_, base := startServe(t, db)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	lsJSON := func(t *testing.T, args ...string) (page struct {
		Jobs       []jobs.Job `json:"jobs"`
		NextBefore *jobs.ID   `json:"next_before"`
	}) {
		t.Helper()
		out, stderr, code := jobrunRun(t, db, append([]string{"ls", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("ls %v: exit %d: %s", args, code, stderr)
		}
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("ls %v: %s: %v", args, out, err)
		}
		return page
	}
	all := lsJSON(t).Jobs
	if len(all) != 12 {
		t.Fatalf("ls lists %d jobs, want 12", len(all))
	}
	sixth := all[len(all)-6].CreatedAt // job 6
	for _, mode := range []struct {
		name string
		args []string
	}{{"local", nil}, {"server", []string{"--server", base}}} {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range []struct {
				args []string
				want []jobs.ID
				more bool // a full page: next_before is set
			}{
				{nil, []jobs.ID{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, false},
				{[]string{"--status", "failed"}, []jobs.ID{12, 9, 6, 3}, false},
				{[]string{"--status", "failed,running", "--limit", "2"}, []jobs.ID{12, 9}, true},
				{[]string{"--status", "canceled", "--status", "failed"}, []jobs.ID{12, 9, 6, 3}, false},
				{[]string{"--status", "succeeded", "--name", "DEPLOY"}, []jobs.ID{10, 5}, false},
				{[]string{"--name", "deploy 1"}, []jobs.ID{10}, false},
				{[]string{"--host", host, "--status", "failed"}, []jobs.ID{12, 9, 6, 3}, false},
				{[]string{"--host", "elsewhere"}, []jobs.ID{}, false},
				{[]string{"--since", "1h"}, []jobs.ID{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, false},
				{[]string{"--since", "1d", "--name", "deploy"}, []jobs.ID{10, 5}, false},
				{[]string{"--since", sixth.Format(time.RFC3339Nano)}, []jobs.ID{12, 11, 10, 9, 8, 7, 6}, false},
				{[]string{"--since", time.Now().Add(time.Hour).Format(time.RFC3339)}, []jobs.ID{}, false},
			} {
				page := lsJSON(t, append(slices.Clone(mode.args), tc.args...)...)
				got := []jobs.ID{}
				for _, j := range page.Jobs {
					got = append(got, j.ID)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("ls %v: %v, want %v", tc.args, got, tc.want)
				}
				if tc.more != (page.NextBefore != nil) {
					t.Errorf("ls %v: next_before %v", tc.args, page.NextBefore)
				}
			}
			// The table prints the same selection.
			out, _, code := jobrunRun(t, db, append(append([]string{"ls"}, mode.args...), "--status", "failed", "--name", "1")...)
			if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], "12 ") {
				t.Errorf("ls table: exit %d:\n%s\nwant the header and job 12", code, out)
			}
			for _, bad := range [][]string{{"--status", "done"}, {"--status", "failed,"}, {"--since", "yesterday"}, {"--since", "-1h"}} {
				_, stderr, code := jobrunRun(t, db, append(append([]string{"ls"}, mode.args...), bad...)...)
				if code != 2 || !strings.Contains(stderr, bad[0]) {
					t.Errorf("ls %v: exit %d, %q; want 2 and a message about %s", bad, code, stderr, bad[0])
				}
			}
		})
	}
}
