package jobs_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

func TestParseStatuses(t *testing.T) {
	got, err := jobs.ParseStatuses("failed, lost,running")
	if want := []jobs.Status{jobs.StatusFailed, jobs.StatusLost, jobs.StatusRunning}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseStatuses = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "done", "failed,", "Failed"} {
		if _, err := jobs.ParseStatuses(bad); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("ParseStatuses(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	j := jobs.Job{Name: "Deploy ÉTÉ prod", Host: "web1", Status: jobs.StatusUnreachable, CreatedAt: at}
	for _, tc := range []struct {
		f    jobs.Filter
		want bool
	}{
		{jobs.Filter{}, true},
		{jobs.Filter{Statuses: []jobs.Status{jobs.StatusUnreachable}}, true},
		{jobs.Filter{Statuses: []jobs.Status{jobs.StatusRunning}}, false},
		{jobs.Filter{Name: "deploy été"}, false},
		{jobs.Filter{Name: "dEPLOY ÉTÉ"}, true},
		{jobs.Filter{Host: "web1"}, true},
		{jobs.Filter{Host: "Web1"}, false},
		{jobs.Filter{Since: at}, true},
		{jobs.Filter{Since: at.Add(1)}, false},
		{jobs.Filter{Until: at}, false},
		{jobs.Filter{Until: at.Add(1)}, true},
	} {
		if got := tc.f.Match(j); got != tc.want {
			t.Errorf("%+v.Match = %v, want %v", tc.f, got, tc.want)
		}
	}
	if got := jobs.LowerASCII("ABC Été"); got != "abc Été" {
		t.Errorf("LowerASCII = %q", got)
	}
}
