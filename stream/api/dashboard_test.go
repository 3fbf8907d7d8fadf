package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// dashMsg is a dashboard stream message.
type dashMsg struct {
	Type       string     `json:"type"`
	Jobs       []jobs.Job `json:"jobs"`
	ID         jobs.ID    `json:"id"`
	NextBefore *jobs.ID   `json:"next_before"`
	Error      string     `json:"error"`
}

func readDash(t *testing.T, ctx context.Context, c *websocket.Conn) (dashMsg, error) {
	t.Helper()
	_, p, err := c.Read(ctx)
	if err != nil {
		return dashMsg{}, err
	}
	var m dashMsg
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("message %.200s: %v", p, err)
	}
	return m, nil
}

// nextJobs reads messages until a "jobs" message, skipping heartbeats.
func nextJobs(t *testing.T, ctx context.Context, c *websocket.Conn) []jobs.Job {
	t.Helper()
	for {
		m, err := readDash(t, ctx, c)
		if err != nil {
			t.Fatalf("waiting for jobs: %v", err)
		}
		if m.Type == "jobs" {
			return m.Jobs
		}
		if m.Type != "heartbeat" {
			t.Fatalf("got a %q message, want jobs", m.Type)
		}
	}
}

// waitJob reads "jobs" messages until one has job id with status st.
func waitJob(t *testing.T, ctx context.Context, c *websocket.Conn, id jobs.ID, st jobs.Status) jobs.Job {
	t.Helper()
	return waitJobWith(t, ctx, c, id, func(j jobs.Job) bool { return j.Status == st })
}

// waitJobWith reads "jobs" messages until one has job id with ok(job).
func waitJobWith(t *testing.T, ctx context.Context, c *websocket.Conn, id jobs.ID, ok func(jobs.Job) bool) jobs.Job {
	t.Helper()
	for {
		for _, j := range nextJobs(t, ctx, c) {
			if j.ID == id && ok(j) {
				return j
			}
		}
	}
}

func TestDashboardStream(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	// No poller: only what is published here, and Poke, reach dashboards.
	hub := streamtest.NewHub(t, db, stream.HubOptions{PollInterval: -1})
	srv := streamtest.NewServer(db, hub)
	srv.DashboardInterval = time.Millisecond
	base := streamtest.Serve(t, srv)
	done := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, done.ID, append(streamtest.Lines(1, 2), streamtest.ExitEvent(3)))
	running := streamtest.NewJob(t, db)

	c := dial(t, ctx, base, "/api/stream")
	m, err := readDash(t, ctx, c)
	if err != nil || m.Type != "snapshot" || len(m.Jobs) != 2 || m.Jobs[0].ID != running.ID || m.Jobs[1].Status != jobs.StatusSucceeded {
		t.Fatalf("first message %+v, %v; want a snapshot of both jobs, newest first", m, err)
	}

	// A job created here without publishing: noticed on Poke.
	third := streamtest.NewJob(t, db)
	hub.Poke()
	if j := waitJob(t, ctx, c, third.ID, jobs.StatusRunning); j.Name != "test" {
		t.Errorf("new job %+v", j)
	}
	// Progress, published here.
	for i, pct := range []float64{10, 42} {
		streamtest.Commit(t, db, hub, running.ID, []jobs.Event{{Seq: jobs.Seq(i + 1), Time: time.Now(), Type: jobs.TypeProgress,
			Progress: &progress.Report{Percent: pct, Message: "step"}}})
	}
	waitJobWith(t, ctx, c, running.ID, func(j jobs.Job) bool { return j.Progress != nil && j.Progress.Percent == 42 })
	// The end of a job, published here.
	streamtest.Commit(t, db, hub, running.ID, append(streamtest.Lines(3, 3), streamtest.ExitEvent(6)))
	if j := waitJob(t, ctx, c, running.ID, jobs.StatusSucceeded); j.ExitCode == nil || *j.ExitCode != 0 {
		t.Errorf("ended job %+v", j)
	}

	// A second dashboard with a limit gets its own snapshot and the same
	// updates.
	c2 := dial(t, ctx, base, "/api/stream?limit=1")
	m, err = readDash(t, ctx, c2)
	if err != nil || m.Type != "snapshot" || len(m.Jobs) != 1 || m.Jobs[0].ID != third.ID {
		t.Fatalf("limited snapshot %+v, %v", m, err)
	}
	streamtest.Commit(t, db, hub, third.ID, []jobs.Event{streamtest.ExitEvent(1)})
	for _, conn := range []*websocket.Conn{c, c2} {
		waitJob(t, ctx, conn, third.ID, jobs.StatusSucceeded)
	}

	// Client messages get an error object; the stream goes on.
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := readDash(t, ctx, c); err != nil || m.Type != "error" || m.Error != "unsupported message" {
		t.Errorf("answer to a client message: %+v, %v", m, err)
	}

	// Close ends dashboards with 1001.
	go srv.Close()
	for _, conn := range []*websocket.Conn{c, c2} {
		for {
			if _, err := readDash(t, ctx, conn); err != nil {
				if websocket.CloseStatus(err) != websocket.StatusGoingAway {
					t.Errorf("on Close: %v, want 1001", err)
				}
				break
			}
		}
	}
}

// TestDashboardOtherProcess: jobs that another process creates and
// finishes reach the dashboard through the Hub's poller.
func TestDashboardOtherProcess(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{PollInterval: 5 * time.Millisecond})
	srv := streamtest.NewServer(db, hub)
	srv.DashboardInterval = time.Millisecond
	base := streamtest.Serve(t, srv)

	c := dial(t, ctx, base, "/api/stream")
	if m, err := readDash(t, ctx, c); err != nil || m.Type != "snapshot" || m.Jobs == nil || len(m.Jobs) != 0 {
		t.Fatalf("snapshot of no jobs: %+v, %v; want jobs: []", m, err)
	}
	other := streamtest.OpenDBAt(t, db.Path())
	j := streamtest.NewJob(t, other)
	waitJob(t, ctx, c, j.ID, jobs.StatusRunning)
	streamtest.Commit(t, other, nil, j.ID, append(streamtest.Lines(1, 5), streamtest.ExitEvent(6)))
	waitJob(t, ctx, c, j.ID, jobs.StatusSucceeded)
	// Removed by the other process: noticed when the job is missing from
	// the listing.
	if _, err := other.RemoveJob(ctx, jobs.Ref{ID: j.ID}, store.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRemove(t, ctx, c, j.ID, jobs.Filter{})
}

// TestDashboardCoalesces: changes within DashboardInterval of the last
// update wait for it, merged into one message per connection.
func TestDashboardCoalesces(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{PollInterval: -1})
	srv := streamtest.NewServer(db, hub)
	srv.DashboardInterval = time.Hour
	base := streamtest.Serve(t, srv)

	c := dial(t, ctx, base, "/api/stream")
	if m, err := readDash(t, ctx, c); err != nil || m.Type != "snapshot" {
		t.Fatal(m, err)
	}
	a := streamtest.NewJob(t, db)
	hub.Poke() // the first update goes out at once
	if got := nextJobs(t, ctx, c); len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("first update %+v, want job %d", got, a.ID)
	}
	for range 100 {
		j := streamtest.NewJob(t, db)
		streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(1)})
		hub.Poke()
	}
	// The next update is an hour away: Close comes first.
	go srv.Close()
	m, err := readDash(t, ctx, c)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("got %+v, %v; want no update before the interval, then 1001", m, err)
	}
}

func TestDashboardErrors(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	srv.Heartbeat = 10 * time.Millisecond
	base := streamtest.Serve(t, srv)

	for _, query := range []string{"limit=0", "status=done", "since=yesterday", "before=3", "q=" + strings.Repeat("x", 2000)} {
		c := dial(t, ctx, base, "/api/stream?"+query)
		if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != stream.CodeInvalid {
			t.Errorf("%.40s: %v, want 4400", query, err)
		}
		if status, _, body := get(t, base, "/api/stream?"+query); status != http.StatusBadRequest || !strings.Contains(string(body), `"code":400`) {
			t.Errorf("%.40s without upgrade: %d %s, want 400", query, status, body)
		}
	}
	if status, _, body := get(t, base, "/api/stream"); status != http.StatusUpgradeRequired {
		t.Errorf("without upgrade: %d %s, want 426", status, body)
	}
	// A Server without its Store is a wiring mistake: it says so on every
	// request instead of serving from the Hub's memory.
	noStore := &api.Server{Hub: hub, Logger: slog.New(slog.DiscardHandler)}
	noList := streamtest.Serve(t, noStore)
	for _, path := range []string{"/api/stream", "/api/jobs", "/api/jobs/1"} {
		if status, _, body := get(t, noList, path); status != http.StatusInternalServerError || !strings.Contains(string(body), "misconfigured") {
			t.Errorf("%s without a Store: %d %s, want 500 misconfigured", path, status, body)
		}
	}

	c := dial(t, ctx, base, "/api/stream")
	if m, err := readDash(t, ctx, c); err != nil || m.Type != "snapshot" {
		t.Fatal(m, err)
	}
	for range 3 {
		if m, err := readDash(t, ctx, c); err != nil || m.Type != "heartbeat" {
			t.Fatalf("got %+v, %v; want heartbeats", m, err)
		}
	}
}

// nextChange reads messages until a "jobs" or "remove" message, skipping
// heartbeats; every job sent must be one that f selects.
func nextChange(t *testing.T, ctx context.Context, c *websocket.Conn, f jobs.Filter) dashMsg {
	t.Helper()
	for {
		m, err := readDash(t, ctx, c)
		if err != nil {
			t.Fatalf("waiting for a change: %v", err)
		}
		switch m.Type {
		case "heartbeat":
			continue
		case "jobs":
			for _, j := range m.Jobs {
				if !f.Match(j) {
					t.Errorf("sent job %d (%s, %q), which the filter %+v does not select", j.ID, j.Status, j.Name, f)
				}
			}
		case "remove":
			if m.ID <= 0 || m.Jobs != nil {
				t.Errorf("remove message %+v", m)
			}
		default:
			t.Fatalf("got a %q message", m.Type)
		}
		return m
	}
}

// waitRemove reads changes until the removal of job id.
func waitRemove(t *testing.T, ctx context.Context, c *websocket.Conn, id jobs.ID, f jobs.Filter) {
	t.Helper()
	for {
		if m := nextChange(t, ctx, c, f); m.Type == "remove" && m.ID == id {
			return
		}
	}
}

// waitSent reads changes until job id is sent with status st.
func waitSent(t *testing.T, ctx context.Context, c *websocket.Conn, id jobs.ID, st jobs.Status, f jobs.Filter) {
	t.Helper()
	for {
		m := nextChange(t, ctx, c, f)
		if m.Type == "remove" && m.ID == id {
			t.Fatalf("job %d removed, want it sent as %s", id, st)
		}
		for _, j := range m.Jobs {
			if j.ID == id && j.Status == st {
				return
			}
		}
	}
}

// removingServer serves a Server that removes jobs, whose dashboard
// sends changes at once and hears only of what is published here.
func removingServer(t *testing.T) (context.Context, *sqlite.DB, *stream.Hub, string) {
	t.Helper()
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{PollInterval: -1})
	srv := streamtest.NewServer(db, hub)
	srv.DashboardInterval = time.Millisecond
	srv.Remover = remover{db}
	return streamtest.Ctx(t), db, hub, streamtest.Serve(t, srv)
}

// deleteJob removes job id through the API.
func deleteJob(t *testing.T, base string, id jobs.ID) {
	t.Helper()
	if status, body := send(t, "DELETE", fmt.Sprintf("%s/api/jobs/%d", base, id), "{}",
		"Content-Type", "application/json", "Origin", base); status != 200 {
		t.Fatalf("remove job %d: %d %s", id, status, body)
	}
}

// TestDashboardFilter: the stream's snapshot and updates hold only the
// jobs its filter selects; a job that leaves the filter (its status
// changed) or is removed is sent as {"type":"remove","id":N}.
func TestDashboardFilter(t *testing.T) {
	ctx, db, hub, base := removingServer(t)
	now := time.Now()
	a := namedJob(t, db, "Deploy A", "h", now)
	b := namedJob(t, db, "build", "h", now)
	failed := namedJob(t, db, "deploy failed", "h", now)
	endJob(t, db, hub, failed.ID, 1, jobs.StatusFailed)
	c := namedJob(t, db, "deploy C", "h", now)

	f := jobs.Filter{Statuses: []jobs.Status{jobs.StatusRunning}, Name: "deploy"}
	conn := dial(t, ctx, base, "/api/stream?status=running&q=deploy")
	all := dial(t, ctx, base, "/api/stream")
	paged := dial(t, ctx, base, "/api/stream?limit=2&status=running")
	m, err := readDash(t, ctx, conn)
	if err != nil || m.Type != "snapshot" || len(m.Jobs) != 2 || m.Jobs[0].ID != c.ID || m.Jobs[1].ID != a.ID || m.NextBefore != nil {
		t.Fatalf("snapshot %+v, %v; want jobs %d and %d, next_before null", m, err, c.ID, a.ID)
	}
	if m, err := readDash(t, ctx, all); err != nil || m.Type != "snapshot" || len(m.Jobs) != 4 {
		t.Fatalf("unfiltered snapshot %+v, %v", m, err)
	}
	if m, err := readDash(t, ctx, paged); err != nil || m.Type != "snapshot" || len(m.Jobs) != 2 ||
		m.NextBefore == nil || *m.NextBefore != b.ID {
		t.Fatalf("snapshot of 2: %+v, %v; want next_before %d", m, err, b.ID)
	}

	// A job the filter does not select ends: the filtered dashboard hears
	// nothing of it, the others do.
	endJob(t, db, hub, b.ID, 1, jobs.StatusSucceeded)
	waitSent(t, ctx, all, b.ID, jobs.StatusSucceeded, jobs.Filter{})
	// A selected job ends: it leaves the filter.
	endJob(t, db, hub, a.ID, 1, jobs.StatusFailed)
	waitRemove(t, ctx, conn, a.ID, f)
	waitSent(t, ctx, all, a.ID, jobs.StatusFailed, jobs.Filter{})
	// A new job that the filter selects is sent.
	d := namedJob(t, db, "DEPLOY D", "h", now)
	hub.Poke()
	waitSent(t, ctx, conn, d.ID, jobs.StatusRunning, f)
	// A removed job is removed from every dashboard that may hold it.
	deleteJob(t, base, b.ID)
	waitRemove(t, ctx, all, b.ID, jobs.Filter{})
	endJob(t, db, hub, c.ID, 1, jobs.StatusSucceeded)
	waitRemove(t, ctx, conn, c.ID, f)
	waitSent(t, ctx, all, c.ID, jobs.StatusSucceeded, jobs.Filter{})
	// Jobs that ended left the other filtered dashboard too.
	running := jobs.Filter{Statuses: []jobs.Status{jobs.StatusRunning}}
	waitRemove(t, ctx, paged, b.ID, running)
	waitRemove(t, ctx, paged, a.ID, running)
	// The filtered dashboard only ever got what it selects (nextChange
	// checked every message); the job it still holds is d.
	endJob(t, db, hub, d.ID, 1, jobs.StatusCanceled)
	waitRemove(t, ctx, conn, d.ID, f)
}

// TestDashboardRemoveOldJob: a job removed here that is older than every
// dashboard's newest jobs (paged in by a page, not in any snapshot) is
// still removed from them.
func TestDashboardRemoveOldJob(t *testing.T) {
	ctx, db, hub, base := removingServer(t)
	old := namedJob(t, db, "old", "h", time.Now())
	endJob(t, db, hub, old.ID, 1, jobs.StatusSucceeded)
	for range 3 {
		namedJob(t, db, "newer", "h", time.Now())
	}
	conn := dial(t, ctx, base, "/api/stream?limit=1")
	if m, err := readDash(t, ctx, conn); err != nil || m.Type != "snapshot" || len(m.Jobs) != 1 {
		t.Fatalf("snapshot %+v, %v", m, err)
	}
	deleteJob(t, base, old.ID)
	waitRemove(t, ctx, conn, old.ID, jobs.Filter{})
}
