package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// request sends a GET with headers (name, value, ...) and returns the
// response with its body read.
func request(t *testing.T, ctx context.Context, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, body
}

// getEvents does a range read or long poll and decodes the answer.
func getEvents(t *testing.T, ctx context.Context, base, path string) (int, http.Header, []jobs.Event) {
	t.Helper()
	resp, body := request(t, ctx, base+path)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, resp.Header, nil
	}
	var evs []jobs.Event
	if err := json.Unmarshal(body, &evs); err != nil {
		t.Fatalf("GET %s: %v in %.200s", path, err, body)
	}
	return resp.StatusCode, resp.Header, evs
}

// seqRange checks that evs are exactly seq first..last.
func seqRange(t *testing.T, what string, evs []jobs.Event, first, last jobs.Seq) {
	t.Helper()
	if first > last {
		if len(evs) != 0 {
			t.Errorf("%s: got %d events from seq %d, want none", what, len(evs), evs[0].Seq)
		}
		return
	}
	if len(evs) != int(last-first+1) || evs[0].Seq != first || evs[len(evs)-1].Seq != last {
		got := "none"
		if len(evs) > 0 {
			got = fmt.Sprintf("%d events, seq %d..%d", len(evs), evs[0].Seq, evs[len(evs)-1].Seq)
		}
		t.Errorf("%s: got %s, want seq %d..%d", what, got, first, last)
	}
}

func TestRangeReads(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)
	for s := jobs.Seq(1); s <= 3000; s += 500 {
		streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(s, 500))
	}
	streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(3001)})

	for _, tc := range []struct {
		query       string
		first, last jobs.Seq // first > last: none
	}{
		{"", 1, 1000},
		{"?after=0&limit=10", 1, 10},
		{"?after=2990", 2991, 3001},
		{"?after=3001", 1, 0},
		{"?limit=10000", 1, 3001},
		{"?tail=5", 2997, 3001},
		{"?tail=10000", 1, 3001},
		{"?before=101&limit=50", 51, 100},
		{"?before=3002&limit=2", 3000, 3001},
		{"?before=1", 1, 0},
		{"?before=30", 1, 29},
		{"?line=100&limit=3", 100, 102},
		{"?line=2999", 2999, 3001}, // and the exit event after the last line
		{"?line=99999", 1, 0},
		{"?after=10&limit=5&collapse=0", 11, 15},
	} {
		status, h, evs := getEvents(t, ctx, base, "/api/jobs/1/events"+tc.query)
		if status != 200 {
			t.Errorf("%s: status %d", tc.query, status)
			continue
		}
		seqRange(t, tc.query, evs, tc.first, tc.last)
		if got := h.Get("X-Jobrun-Last-Seq"); got != "3001" {
			t.Errorf("%s: X-Jobrun-Last-Seq = %q, want 3001", tc.query, got)
		}
	}

	for _, tc := range []struct {
		query string
		code  int
	}{
		{"?after=3002", 409},
		{"?before=3003", 409},
		{"?after=-1", 400},
		{"?tail=0", 400},
		{"?tail=10001", 400},
		{"?limit=0", 400},
		{"?limit=10001", 400},
		{"?after=1&tail=2", 400},
		{"?line=3&before=9", 400},
		{"?tail=5&limit=3", 400},
		{"?line=0", 400},
		{"?before=0", 400},
		{"?collapse=yes", 400},
		{"?wait=-1s", 400},
		{"?wait=soon", 400},
		{"?tail=3&wait=1s", 400},
	} {
		resp, body := request(t, ctx, base+"/api/jobs/1/events"+tc.query)
		if resp.StatusCode != tc.code || !strings.Contains(string(body), fmt.Sprintf(`"code":%d`, tc.code)) {
			t.Errorf("%s: %d %s, want %d with a JSON body", tc.query, resp.StatusCode, body, tc.code)
		}
	}
	for path, code := range map[string]int{
		"/api/jobs/999/events":              404,
		"/api/jobs/999/events?tail=3":       404,
		"/api/jobs/999/events?line=3":       404,
		"/api/jobs/Bad.Ref/events?before=3": 400,
	} {
		if resp, body := request(t, ctx, base+path); resp.StatusCode != code {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, body, code)
		}
	}
}

// TestRangeReadBytes: an answer stops at about MaxAnswerBytes, but holds at
// least one event.
func TestRangeReadBytes(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)
	big := streamtest.Lines(1, 80) // 5 MiB
	for i := range big {
		big[i].Data = []byte(strings.Repeat("x", jobs.MaxLineBytes))
	}
	streamtest.Commit(t, db, hub, j.ID, big)
	most := api.MaxAnswerBytes/(jobs.MaxLineBytes+96) + 1

	for _, q := range []string{"?limit=10000", "?tail=10000", "?before=81&limit=10000", "?line=1&limit=10000"} {
		_, _, evs := getEvents(t, ctx, base, "/api/jobs/1/events"+q)
		if len(evs) == 0 || len(evs) > most {
			t.Errorf("%s: %d events of 64 KiB, want 1..%d", q, len(evs), most)
		}
	}
	_, _, evs := getEvents(t, ctx, base, "/api/jobs/1/events?tail=10000")
	if evs[len(evs)-1].Seq != 80 {
		t.Errorf("tail ends at seq %d, want 80", evs[len(evs)-1].Seq)
	}
}

func TestLongPoll(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 2))

	_, _, evs := getEvents(t, ctx, base, "/api/jobs/1/events?after=0&wait=30s")
	seqRange(t, "stored events", evs, 1, 2)
	status, h, evs := getEvents(t, ctx, base, "/api/jobs/1/events?after=2&wait=0")
	if status != 200 || evs == nil || len(evs) != 0 || h.Get("X-Jobrun-Last-Seq") != "2" {
		t.Errorf("wait=0 with nothing new: %d %v %q, want 200 []", status, evs, h.Get("X-Jobrun-Last-Seq"))
	}
	status, _, evs = getEvents(t, ctx, base, "/api/jobs/1/events?after=2&wait=20ms")
	if status != 200 || evs == nil || len(evs) != 0 {
		t.Errorf("timeout: %d %v, want 200 []", status, evs)
	}

	// A waiting poll answers when an event is committed.
	for _, next := range [][]jobs.Event{streamtest.Lines(3, 4), {streamtest.ExitEvent(7)}} {
		got := make(chan []jobs.Event, 1)
		go func() {
			_, _, evs := getEvents(t, ctx, base, fmt.Sprintf("/api/jobs/1/events?after=%d&wait=60s", next[0].Seq-1))
			got <- evs
		}()
		waitFor(t, func() bool { return hubWaiting(hub, j.ID) })
		streamtest.Commit(t, db, hub, j.ID, next)
		seqRange(t, "woken", <-got, next[0].Seq, next[len(next)-1].Seq)
	}
	// limit applies to a long poll too.
	status, _, evs = getEvents(t, ctx, base, "/api/jobs/1/events?after=2&limit=2&wait=1s")
	if status != 200 {
		t.Fatal(status)
	}
	seqRange(t, "limit", evs, 3, 4)
	if status, _, _ := getEvents(t, ctx, base, "/api/jobs/1/events?after=7&wait=60s"); status != http.StatusNoContent {
		t.Errorf("at the exit: %d, want 204", status)
	}
	if status, _, _ := getEvents(t, ctx, base, "/api/jobs/1/events?after=8&wait=60s"); status != http.StatusConflict {
		t.Errorf("beyond the exit: %d, want 409", status)
	}
}

// hubWaiting reports whether a long poll is subscribed to job id: a
// publish now reaches it. It probes with WaitDelivered, which waits only
// while some subscription has not delivered the seq.
func hubWaiting(hub *stream.Hub, id jobs.ID) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	return hub.WaitDelivered(ctx, id, 1<<40) != nil
}

// waitFor polls cond until it holds (bounded by a generous timeout).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	id, event, data string
}

// readSSE reads an event stream until it ends or stop returns true.
func readSSE(t *testing.T, body io.Reader, stop func(sseEvent) bool) ([]sseEvent, error) {
	t.Helper()
	br := bufio.NewReaderSize(body, 1<<20)
	var out []sseEvent
	var cur sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return out, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if cur.data != "" || cur.event != "" {
				out = append(out, cur)
				if stop != nil && stop(cur) {
					return out, nil
				}
			}
			cur = sseEvent{}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			cur.id = value
		case "event":
			cur.event = value
		case "data":
			cur.data += value
		}
	}
}

// sseEvents decodes the data of the unnamed events and checks their ids.
func sseEvents(t *testing.T, es []sseEvent) []jobs.Event {
	t.Helper()
	var evs []jobs.Event
	for _, e := range es {
		if e.event != "" {
			continue
		}
		var ev jobs.Event
		if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
			t.Fatalf("data %.200s: %v", e.data, err)
		}
		if e.id != strconv.FormatInt(int64(ev.Seq), 10) {
			t.Fatalf("id %q for seq %d", e.id, ev.Seq)
		}
		evs = append(evs, ev)
	}
	return evs
}

// openSSE starts an event stream request.
func openSSE(t *testing.T, ctx context.Context, url string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestSSE(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	srv.Heartbeat = 20 * time.Millisecond
	base := streamtest.Serve(t, srv)
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 5))

	// A running job: history, heartbeats, live events, the end.
	resp := openSSE(t, ctx, base+"/api/jobs/1/events?after=1")
	for name, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
		"X-Accel-Buffering": "no", "X-Jobrun-Last-Seq": "5",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	es, err := readSSE(t, resp.Body, func(e sseEvent) bool { return e.event == "heartbeat" })
	if err != nil {
		t.Fatal(err)
	}
	seqRange(t, "history", sseEvents(t, es), 2, 5)
	if last := es[len(es)-1]; last.data != "{}" {
		t.Errorf("heartbeat data %q, want {}", last.data)
	}
	streamtest.Commit(t, db, hub, j.ID, append(streamtest.Lines(6, 2), streamtest.ExitEvent(8)))
	es, err = readSSE(t, resp.Body, nil)
	if err != io.EOF {
		t.Errorf("after the exit: %v, want the response to end", err)
	}
	seqRange(t, "live", sseEvents(t, es), 6, 8)

	// Last-Event-ID wins over after=, as a browser's reconnect sends both.
	resp = openSSE(t, ctx, base+"/api/jobs/1/events?after=1", "Last-Event-ID", "6")
	es, _ = readSSE(t, resp.Body, nil)
	seqRange(t, "Last-Event-ID", sseEvents(t, es), 7, 8)

	for _, tc := range []struct {
		query, lastID string
		code          int
	}{
		{"?after=8", "", http.StatusNoContent},
		{"", "8", http.StatusNoContent},
		{"?after=9", "", http.StatusConflict},
		{"", "9", http.StatusConflict},
		{"", "x", http.StatusBadRequest},
		{"?tail=3", "", http.StatusBadRequest},
		{"?wait=1s", "", http.StatusBadRequest},
		{"?limit=3", "", http.StatusBadRequest},
	} {
		h := []string{}
		if tc.lastID != "" {
			h = []string{"Last-Event-ID", tc.lastID}
		}
		resp := openSSE(t, ctx, base+"/api/jobs/1/events"+tc.query, h...)
		if resp.StatusCode != tc.code {
			t.Errorf("%s (Last-Event-ID %q): %d, want %d", tc.query, tc.lastID, resp.StatusCode, tc.code)
		}
	}
	if resp := openSSE(t, ctx, base+"/api/jobs/999/events"); resp.StatusCode != 404 {
		t.Errorf("unknown job: %d, want 404", resp.StatusCode)
	}
}

// readWS reads a job stream from after until it closes.
func readWS(t *testing.T, ctx context.Context, base, query string) ([]jobs.Event, websocket.StatusCode) {
	t.Helper()
	c := dial(t, ctx, base, "/api/jobs/1/stream"+query)
	var all []jobs.Event
	for {
		evs, _, err := readEvents(ctx, c)
		if err != nil {
			return all, websocket.CloseStatus(err)
		}
		all = append(all, evs...)
	}
}

// readSSEAll reads a job's event stream to the end.
func readSSEAll(t *testing.T, ctx context.Context, base, query string) []jobs.Event {
	t.Helper()
	resp := openSSE(t, ctx, base+"/api/jobs/1/events"+query)
	es, err := readSSE(t, resp.Body, nil)
	if err != io.EOF {
		t.Errorf("event stream: %v", err)
	}
	return sseEvents(t, es)
}

// pollAll long-polls a job from after until 204.
func pollAll(t *testing.T, ctx context.Context, base string, after jobs.Seq, extra string) []jobs.Event {
	t.Helper()
	var all []jobs.Event
	for {
		status, _, evs := getEvents(t, ctx, base, fmt.Sprintf("/api/jobs/1/events?after=%d&wait=30s%s", after, extra))
		if status == http.StatusNoContent {
			return all
		}
		if status != 200 {
			t.Fatalf("long poll after %d: %d", after, status)
		}
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
		}
		all = append(all, evs...)
	}
}

// pageForward reads a finished job with range reads after=.
func pageForward(t *testing.T, ctx context.Context, base, extra string) []jobs.Event {
	t.Helper()
	var all []jobs.Event
	after := jobs.Seq(0)
	for {
		_, _, evs := getEvents(t, ctx, base, fmt.Sprintf("/api/jobs/1/events?after=%d&limit=777%s", after, extra))
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Seq
	}
}

// pageBackward reads a finished job from its tail up with before=.
func pageBackward(t *testing.T, ctx context.Context, base, extra string) []jobs.Event {
	t.Helper()
	_, _, all := getEvents(t, ctx, base, "/api/jobs/1/events?tail=500"+extra)
	for len(all) > 0 {
		_, _, evs := getEvents(t, ctx, base, fmt.Sprintf("/api/jobs/1/events?before=%d&limit=333%s", all[0].Seq, extra))
		if len(evs) == 0 {
			break
		}
		all = append(evs, all...)
	}
	return all
}

// sameWire checks that two transports gave the same events, compared by
// their wire JSON.
func sameWire(t *testing.T, what string, got, want []jobs.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if g, w := string(got[i].AppendJSON(nil)), string(want[i].AppendJSON(nil)); g != w {
			t.Errorf("%s: event %d:\n got %.200s\nwant %.200s", what, i, g, w)
			return
		}
	}
}

// mixedOutput is a log with what transports must carry exactly: \r bars,
// fragments, invalid UTF-8, stderr, long lines, text that looks like SSE
// framing, and progress events. Line numbers follow jobrun's rules and
// depend on seq only: in each group of 7 events, stdout draws line 2k+1 as
// a bar that ends with a newline, and stderr writes line 2k+2 meanwhile.
func mixedOutput(first jobs.Seq, n int) []jobs.Event {
	evs := make([]jobs.Event, 0, n)
	now := time.Now()
	for i := range n {
		seq := first + jobs.Seq(i)
		k, pos := int64(seq-1)/7, (seq-1)%7
		e := jobs.Event{Seq: seq, Time: now, Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 2*k + 1}
		switch pos {
		case 0:
			e.Data, e.EOL = fmt.Appendf(nil, "\x1b[32m%d%%\x1b[0m", k%100), "\r"
		case 1:
			e.Data, e.EOL = []byte("bad \xff\xfe utf-8 \r in the middle\ndata: not an event\n\nid: 0"), "\r"
		case 2:
			e.Stream, e.Line, e.EOL = jobs.StreamStderr, 2*k+2, "\n"
			e.Data = []byte("warning: \u2028 \"quoted\" \\ },{\"seq\":1}")
		case 3:
			e.Data, e.EOL = []byte(strings.Repeat("long ", 400)), ""
		case 4:
			e = jobs.Event{Seq: seq, Time: now, Type: jobs.TypeProgress,
				Progress: &progress.Report{Percent: float64(k % 100), Message: "step\nwith newline"}}
		case 5:
			e.Data, e.EOL = []byte(" more"), "\r"
		case 6:
			e.Data, e.EOL = fmt.Appendf(nil, "plain line %d", seq), "\n"
		}
		evs = append(evs, e)
	}
	return evs
}

// TestTransportsAgree: one job read live through the WebSocket, the event
// stream and long polling, and after its end through range reads, gives
// the same events in the same order; with collapse=1 too.
func TestTransportsAgree(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{RingBytes: 64 << 10})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)
	const total = 3000
	streamtest.Commit(t, db, hub, j.ID, mixedOutput(1, 1000))

	var ws, sse, poll []jobs.Event
	var wg sync.WaitGroup
	wg.Go(func() { ws, _ = readWS(t, ctx, base, "") })
	wg.Go(func() { sse = readSSEAll(t, ctx, base, "") })
	wg.Go(func() { poll = pollAll(t, ctx, base, 0, "") })
	for s := jobs.Seq(1001); s <= total; s += 250 {
		streamtest.Commit(t, db, hub, j.ID, mixedOutput(s, 250))
	}
	streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(total + 1)})
	wg.Wait()

	var check streamtest.SeqChecker
	if err := check.Add(ws); err != nil || check.Last != total+1 {
		t.Fatalf("websocket: %v, last %d", err, check.Last)
	}
	sameWire(t, "event stream", sse, ws)
	sameWire(t, "long poll", poll, ws)
	sameWire(t, "range reads forward", pageForward(t, ctx, base, ""), ws)
	sameWire(t, "range reads backward", pageBackward(t, ctx, base, ""), ws)

	// Collapsed, the finished job's history reads the same everywhere.
	cws, _ := readWS(t, ctx, base, "?collapse=1")
	if len(cws) >= len(ws) || len(cws) == 0 {
		t.Errorf("collapsed: %d events of %d", len(cws), len(ws))
	}
	sameWire(t, "collapsed event stream", readSSEAll(t, ctx, base, "?collapse=1"), cws)
	sameWire(t, "collapsed long poll", pollAll(t, ctx, base, 0, "&collapse=1"), cws)
	sameWire(t, "collapsed range reads forward", pageForward(t, ctx, base, "&collapse=1"), cws)
	sameWire(t, "collapsed range reads backward", pageBackward(t, ctx, base, "&collapse=1"), cws)
}

// bar commits a job that redraws a \r bar n times, prints "done" and ends.
func bar(t *testing.T, db *sqlite.DB, hub *stream.Hub, n int) jobs.Job {
	t.Helper()
	j := streamtest.NewJob(t, db)
	now := time.Now()
	for first := 1; first <= n; first += 10000 {
		evs := make([]jobs.Event, 0, 10000)
		for s := first; s < first+10000 && s <= n; s++ {
			evs = append(evs, jobs.Event{Seq: jobs.Seq(s), Time: now, Type: jobs.TypeLine, Stream: jobs.StreamStdout,
				Line: 1, Data: fmt.Appendf(nil, "[%-50s] %d/%d", strings.Repeat("#", s*50/n), s, n), EOL: "\r"})
		}
		streamtest.Commit(t, db, hub, j.ID, evs)
	}
	streamtest.Commit(t, db, hub, j.ID, []jobs.Event{
		{Seq: jobs.Seq(n + 1), Time: now, Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1, Data: []byte("done"), EOL: "\n"},
		streamtest.ExitEvent(jobs.Seq(n + 2)),
	})
	return j
}

// TestCollapseLateViewer: a late viewer of a job that redrew a \r bar
// 100,000 times gets a handful of events with collapse=1, on every
// transport and range read, and they render the same final line.
func TestCollapseLateViewer(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	const n = 100000
	bar(t, db, hub, n)

	want := []jobs.Seq{n + 1, n + 2} // "done\n" and the exit
	got := func(what string, evs []jobs.Event) {
		t.Helper()
		var seqs []jobs.Seq
		for _, e := range evs {
			seqs = append(seqs, e.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(want) {
			t.Errorf("%s: seq %v, want %v", what, seqs, want)
		}
	}
	ws, code := readWS(t, ctx, base, "?collapse=1")
	if code != websocket.StatusNormalClosure {
		t.Errorf("websocket closed with %v", code)
	}
	got("websocket", ws)
	got("event stream", readSSEAll(t, ctx, base, "?collapse=1"))
	got("long poll", pollAll(t, ctx, base, 0, "&collapse=1"))
	_, _, evs := getEvents(t, ctx, base, "/api/jobs/1/events?tail=100&collapse=1")
	got("tail", evs)
	_, _, evs = getEvents(t, ctx, base, "/api/jobs/1/events?line=1&collapse=1")
	got("line", evs)
	_, _, evs = getEvents(t, ctx, base, fmt.Sprintf("/api/jobs/1/events?before=%d&collapse=1", n+2))
	if len(evs) != 1 || evs[0].Seq != n+1 {
		t.Errorf("before the exit: %d events, want just done (seq %d)", len(evs), n+1)
	}
	// A viewer that stopped in the middle of the bar resumes with the
	// frames it has not seen collapsed too.
	_, _, evs = getEvents(t, ctx, base, "/api/jobs/1/events?after=5000&collapse=1")
	got("after 5000", evs)
	// Without collapse, everything.
	_, h, evs := getEvents(t, ctx, base, "/api/jobs/1/events?after=0&limit=10000")
	if len(evs) != 10000 || h.Get("X-Jobrun-Last-Seq") != strconv.Itoa(n+2) {
		t.Errorf("uncollapsed: %d events, last seq %q", len(evs), h.Get("X-Jobrun-Last-Seq"))
	}
}

// TestCollapseNeverSkipsLive: with collapse=1, frames stored before the
// viewer came are collapsed, frames that come live are all delivered.
func TestCollapseNeverSkipsLive(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)
	frame := func(s jobs.Seq, eol string) jobs.Event {
		return jobs.Event{Seq: s, Time: time.Now(), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 1,
			Data: fmt.Appendf(nil, "frame %d", s), EOL: eol}
	}
	for s := jobs.Seq(1); s <= 10; s++ {
		streamtest.Commit(t, db, hub, j.ID, []jobs.Event{frame(s, "\r")})
	}
	c := dial(t, ctx, base, "/api/jobs/1/stream?collapse=1")
	evs, _, err := readEvents(ctx, c)
	if err != nil || len(evs) != 1 || evs[0].Seq != 10 {
		t.Fatalf("history: %v, %v; want the last stored frame, seq 10", evs, err)
	}
	for s := jobs.Seq(11); s <= 15; s++ {
		streamtest.Commit(t, db, hub, j.ID, []jobs.Event{frame(s, "\r")})
	}
	streamtest.Commit(t, db, hub, j.ID, []jobs.Event{frame(16, "\n"), streamtest.ExitEvent(17)})
	var check streamtest.SeqChecker
	check.Last = 10
	for check.Last < 17 {
		evs, _, err := readEvents(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := check.Add(evs); err != nil {
			t.Fatalf("live events skipped: %v", err)
		}
	}
}

// TestCloseEndsHTTPStreams: Server.Close ends event streams and long polls
// and waits for them; later ones get 503.
func TestCloseEndsHTTPStreams(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	base := streamtest.Serve(t, srv)
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 1))

	polled := make(chan int, 1)
	go func() {
		status, _, evs := getEvents(t, ctx, base, "/api/jobs/1/events?after=1&wait=60s")
		if evs == nil {
			status = -status
		}
		polled <- status
	}()
	waitFor(t, func() bool { return hubWaiting(hub, j.ID) }) // the poll waits
	resp := openSSE(t, ctx, base+"/api/jobs/1/events")
	if _, err := readSSE(t, resp.Body, func(e sseEvent) bool { return e.id == "1" }); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := readSSE(t, resp.Body, nil); !errors.Is(err, io.EOF) {
		t.Errorf("event stream after Close: %v, want its end", err)
	}
	if status := <-polled; status != 200 {
		t.Errorf("long poll on Close: %d, want 200 []", status)
	}
	for _, h := range [][]string{{"Accept", "text/event-stream"}, {}} {
		url := base + "/api/jobs/1/events?after=1"
		if len(h) == 0 {
			url += "&wait=1s"
		}
		if resp, _ := request(t, ctx, url, h...); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("after Close (%v): %d, want 503", h, resp.StatusCode)
		}
	}
}
