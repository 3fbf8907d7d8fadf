package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// dashMsg is a dashboard stream message.
type dashMsg struct {
	Type  string     `json:"type"`
	Jobs  []jobs.Job `json:"jobs"`
	Error string     `json:"error"`
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

	c := dial(t, ctx, base, "/api/stream?limit=0")
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != stream.CodeInvalid {
		t.Errorf("limit=0: %v, want 4400", err)
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

	c = dial(t, ctx, base, "/api/stream")
	if m, err := readDash(t, ctx, c); err != nil || m.Type != "snapshot" {
		t.Fatal(m, err)
	}
	for range 3 {
		if m, err := readDash(t, ctx, c); err != nil || m.Type != "heartbeat" {
			t.Fatalf("got %+v, %v; want heartbeats", m, err)
		}
	}
}
