package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// countingMetrics records what a Server counts.
type countingMetrics struct {
	mu                               sync.Mutex
	opened, closed, dropped, resumed map[string]int
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{opened: map[string]int{}, closed: map[string]int{}, dropped: map[string]int{}, resumed: map[string]int{}}
}

func (m *countingMetrics) ViewerOpened(tr string)  { m.add(m.opened, tr) }
func (m *countingMetrics) ViewerClosed(tr string)  { m.add(m.closed, tr) }
func (m *countingMetrics) ViewerDropped(tr string) { m.add(m.dropped, tr) }
func (m *countingMetrics) ViewerResumed(tr string) { m.add(m.resumed, tr) }

func (m *countingMetrics) add(c map[string]int, tr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c[tr]++
}

// get reads one count: "opened ws", "closed sse", ...
func (m *countingMetrics) get(what, tr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return map[string]map[string]int{"opened": m.opened, "closed": m.closed, "dropped": m.dropped, "resumed": m.resumed}[what][tr]
}

// waitCount waits until count what of transport tr is want.
func (m *countingMetrics) waitCount(t *testing.T, what, tr string, want int) {
	t.Helper()
	ctx := streamtest.Ctx(t)
	for m.get(what, tr) != want {
		select {
		case <-ctx.Done():
			t.Fatalf("%s %s = %d, want %d", what, tr, m.get(what, tr), want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestMetricsViewers: each transport counts its viewers while they are
// connected, and resumes.
func TestMetricsViewers(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	m := newCountingMetrics()
	srv := streamtest.NewServer(db, hub)
	srv.Metrics = m
	base := streamtest.Serve(t, srv)
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 3))

	// WebSocket, from the start and resuming.
	ws, _, err := websocket.Dial(ctx, streamtest.WSURL(base, fmt.Sprintf("/api/jobs/%d/stream", j.ID)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws2, _, err := websocket.Dial(ctx, streamtest.WSURL(base, fmt.Sprintf("/api/jobs/%d/stream?after=2", j.ID)), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.waitCount(t, "opened", api.TransportWS, 2)
	if got := m.get("resumed", api.TransportWS); got != 1 {
		t.Errorf("resumed ws = %d, want 1 (the stream with after=2)", got)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	ws2.Close(websocket.StatusNormalClosure, "")
	m.waitCount(t, "closed", api.TransportWS, 2)

	// Dashboard.
	dash, _, err := websocket.Dial(ctx, streamtest.WSURL(base, "/api/stream"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.waitCount(t, "opened", api.TransportDashboard, 1)
	dash.Close(websocket.StatusNormalClosure, "")
	m.waitCount(t, "closed", api.TransportDashboard, 1)

	// Server-Sent Events resuming with Last-Event-ID.
	sctx, scancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, fmt.Sprintf("%s/api/jobs/%d/events", base, j.ID), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "id: 2") {
		t.Fatalf("event stream's first line %q, %v; want id: 2", line, err)
	}
	m.waitCount(t, "opened", api.TransportSSE, 1)
	if got := m.get("resumed", api.TransportSSE); got != 1 {
		t.Errorf("resumed sse = %d, want 1", got)
	}
	scancel()
	resp.Body.Close()
	m.waitCount(t, "closed", api.TransportSSE, 1)

	// A long poll counts while it waits.
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("%s/api/jobs/%d/events?after=3&wait=30s", base, j.ID))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		answered <- err
	}()
	m.waitCount(t, "opened", api.TransportLongPoll, 1)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(4, 1))
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	m.waitCount(t, "closed", api.TransportLongPoll, 1)
	if got := m.get("dropped", api.TransportWS) + m.get("dropped", api.TransportSSE); got != 0 {
		t.Errorf("%d viewers counted as dropped, want none", got)
	}
}

// TestMetricsDropped: a WebSocket viewer cut off with 4429 counts as
// dropped, and as resumed when it comes back with after=.
func TestMetricsDropped(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{RingBytes: 64 << 10})
	logs := &streamtest.LogBuffer{}
	m := newCountingMetrics()
	srv := streamtest.NewServer(db, hub)
	srv.Logger = slog.New(slog.NewTextHandler(logs, nil))
	srv.WriteTimeout = 300 * time.Millisecond
	srv.Heartbeat = time.Hour
	srv.Metrics = m
	sn := &slowNet{addrs: map[string]bool{}}
	ts := sn.server(t, srv)
	j := streamtest.NewJob(t, db)
	slow := dialSlow(t, ctx, sn, ts)
	for s := jobs.Seq(1); s <= 2000; s += 100 {
		evs := streamtest.Lines(s, 100)
		for i := range evs {
			evs[i].Data = append(evs[i].Data, make([]byte, 100)...)
		}
		streamtest.Commit(t, db, hub, j.ID, evs)
	}
	streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(2001)})
	if err := sn.cutOff(ctx, logs); err != nil {
		t.Fatal(err)
	}
	if got := m.get("dropped", api.TransportWS); got != 1 {
		t.Errorf("dropped ws = %d, want 1", got)
	}
	var check streamtest.SeqChecker
	readUntilClosed(ctx, slow, &check)
	if err := fastClient(ts).Follow(ctx, "1", check.Last, check.Add); err != nil || check.Last != 2001 {
		t.Fatalf("resume: %v, last seq %d", err, check.Last)
	}
	if check.Last > 0 && m.get("resumed", api.TransportWS) < 1 {
		t.Errorf("resumed ws = %d, want at least 1", m.get("resumed", api.TransportWS))
	}
}

func TestHealth(t *testing.T) {
	var fail, writes error
	var mu sync.Mutex
	ts := httptest.NewServer(api.Health(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return fail
	}, func() error {
		mu.Lock()
		defer mu.Unlock()
		return writes
	}))
	defer ts.Close()
	set := func(f, w error) {
		mu.Lock()
		defer mu.Unlock()
		fail, writes = f, w
	}
	code, typ, body := get(t, ts.URL, "/healthz")
	if code != 200 || typ != "application/json" || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("healthy: %d %s %s", code, typ, body)
	}
	set(nil, fmt.Errorf("writes fail: disk full"))
	code, typ, body = get(t, ts.URL, "/healthz")
	if code != 503 || typ != "application/json" || strings.TrimSpace(string(body)) != `{"status":"degraded","error":"writes fail: disk full"}` {
		t.Errorf("writes failing: %d %s %s", code, typ, body)
	}
	set(fmt.Errorf("database is locked"), fmt.Errorf("writes fail: disk full"))
	code, typ, body = get(t, ts.URL, "/healthz")
	if code != 503 || typ != "application/json" || !strings.Contains(string(body), `"status":"unavailable","error":"database is locked"`) {
		t.Errorf("unhealthy: %d %s %s", code, typ, body)
	}
}
