package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/streamtest"
)

type progressBody struct {
	Points  []api.ProgressPoint `json:"points"`
	LastSeq jobs.Seq            `json:"last_seq"`
}

func getProgress(t *testing.T, base, path string) progressBody {
	t.Helper()
	status, _, body := get(t, base, path)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var p progressBody
	if err := json.Unmarshal(body, &p); err != nil || p.Points == nil {
		t.Fatalf("GET %s: %.300s: %v", path, body, err)
	}
	return p
}

// progressJob stores a job of n line events with a progress event after
// every `every` lines, rising from 0 to 100 over its time, except one dip
// to dip% in the middle; one event a millisecond.
func progressJob(t testing.TB, db *sqlite.DB, n, every int, dip float64) (jobs.Job, []jobs.Event) {
	t.Helper()
	ctx := streamtest.Ctx(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	j := jobs.Job{Name: "progress", Command: []string{"x"}, CreatedAt: start, StartedAt: &start}
	if err := db.CreateJob(ctx, &j); err != nil {
		t.Fatal(err)
	}
	var all, progs []jobs.Event
	seq := jobs.Seq(0)
	at := func() time.Time { return start.Add(time.Duration(seq) * time.Millisecond) }
	steps := n / every
	for i := range steps {
		for range every {
			seq++
			all = append(all, jobs.Event{Seq: seq, Time: at(), Type: jobs.TypeLine, Stream: jobs.StreamStdout,
				Line: int64(seq), Data: fmt.Appendf(nil, "line %d", seq), EOL: "\n"})
		}
		seq++
		pct := float64(i) * 100 / float64(steps-1)
		if i == steps/2 {
			pct = dip
		}
		all = append(all, jobs.Event{Seq: seq, Time: at(), Type: jobs.TypeProgress, Progress: &progress.Report{Percent: pct, Source: "explicit", State: progress.StateNormal}})
		progs = append(progs, all[len(all)-1])
	}
	seq++
	code := 0
	all = append(all, jobs.Event{Seq: seq, Time: at(), Type: jobs.TypeExit, Status: jobs.StatusSucceeded, ExitCode: &code})
	for i := 0; i < len(all); i += 4096 {
		if err := db.AppendEvents(ctx, j.ID, all[i:min(i+4096, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	return j, progs
}

// TestProgressEndpoint: the whole history's progress, downsampled to at
// most points=N: the first and last points, and the dip, are kept.
func TestProgressEndpoint(t *testing.T) {
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j, progs := progressJob(t, db, 40_000, 10, 2)
	last := jobs.Seq(40_000 + len(progs) + 1)

	for _, tc := range []struct {
		query string
		max   int
	}{{"", api.DefaultProgressPoints}, {"?points=100", 100}, {"?points=10", 10}} {
		p := getProgress(t, base, fmt.Sprintf("/api/jobs/%d/progress%s", j.ID, tc.query))
		pts := p.Points
		if len(pts) == 0 || len(pts) > tc.max || p.LastSeq != last {
			t.Fatalf("%s: %d points, last_seq %d; want 1..%d points, last_seq %d", tc.query, len(pts), p.LastSeq, tc.max, last)
		}
		if first, end := pts[0], pts[len(pts)-1]; jobs.Seq(first.Seq) != progs[0].Seq || first.Percent != 0 ||
			jobs.Seq(end.Seq) != progs[len(progs)-1].Seq || end.Percent != 100 || !end.Time.Equal(progs[len(progs)-1].Time) {
			t.Errorf("%s: from %+v to %+v, want the first (0%%) and last (100%%) progress events", tc.query, first, end)
		}
		dip := false
		for i, pt := range pts {
			dip = dip || pt.Percent == 2
			if pt.State != "normal" || i > 0 && pt.Seq <= pts[i-1].Seq {
				t.Errorf("%s: point %d %+v", tc.query, i, pt)
			}
		}
		if !dip {
			t.Errorf("%s: the dip to 2%% is lost", tc.query)
		}
	}
	// A job that reported no progress, one still running (its events so
	// far), and a share of the same answer by uid.
	none := streamtest.NewJob(t, db)
	if p := getProgress(t, base, fmt.Sprintf("/api/jobs/%d/progress", none.ID)); len(p.Points) != 0 || p.LastSeq != 0 {
		t.Errorf("no progress: %+v", p)
	}
	streamtest.Commit(t, db, hub, none.ID, []jobs.Event{{Seq: 1, Time: time.Now(), Type: jobs.TypeProgress,
		Progress: &progress.Report{Percent: 45, State: progress.StatePaused}}})
	if p := getProgress(t, base, "/api/jobs/"+string(none.UID)+"/progress"); len(p.Points) != 1 ||
		p.Points[0].Percent != 45 || p.Points[0].State != "paused" || p.LastSeq != 1 {
		t.Errorf("a running job's progress: %+v", p)
	}
}

func TestProgressEndpointErrors(t *testing.T) {
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	streamtest.NewJob(t, db)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/api/jobs/1/progress?points=9", 400},
		{"/api/jobs/1/progress?points=10001", 400},
		{"/api/jobs/1/progress?points=-1", 400},
		{"/api/jobs/1/progress?points=many", 400},
		{"/api/jobs/Bad.Ref/progress", 400},
		{"/api/jobs/999/progress", 404},
	} {
		status, ctype, body := get(t, base, tc.path)
		if status != tc.status || ctype != "application/json" || !strings.Contains(string(body), fmt.Sprintf(`"code":%d`, tc.status)) {
			t.Errorf("%s: %d %s %s, want %d with a JSON error", tc.path, status, ctype, body, tc.status)
		}
	}
}
