package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/remote"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// dial opens a stream WebSocket.
func dial(t *testing.T, ctx context.Context, base, path string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, streamtest.WSURL(base, path), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readEvents reads one message as an array of events.
func readEvents(ctx context.Context, c *websocket.Conn) ([]jobs.Event, []byte, error) {
	typ, p, err := c.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	if typ != websocket.MessageText {
		return nil, p, fmt.Errorf("message type %v, want text", typ)
	}
	var evs []jobs.Event
	if err := json.Unmarshal(p, &evs); err != nil {
		return nil, p, fmt.Errorf("message %.100s: %v", p, err)
	}
	return evs, p, nil
}

func TestStreamCloseCodes(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, append(streamtest.Lines(1, 4), streamtest.ExitEvent(5)))

	for _, tc := range []struct {
		name, path string
		code       websocket.StatusCode
	}{
		{"unknown job", "/api/jobs/999/stream", stream.CodeNotFound},
		{"unknown uid", "/api/jobs/abcdefghijklmnopqrstuvwxyz/stream", stream.CodeNotFound},
		{"bad ref", "/api/jobs/Bad.Ref/stream", stream.CodeInvalid},
		{"after not a number", "/api/jobs/1/stream?after=x", stream.CodeInvalid},
		{"after negative", "/api/jobs/1/stream?after=-1", stream.CodeInvalid},
		{"after beyond last", "/api/jobs/1/stream?after=6", stream.CodeConflict},
		{"after the exit", "/api/jobs/1/stream?after=5", websocket.StatusNormalClosure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ctx, base, tc.path)
			_, _, err := c.Read(ctx)
			if got := websocket.CloseStatus(err); got != tc.code {
				t.Errorf("close status = %v (%v), want %v", got, err, tc.code)
			}
		})
	}

	// The whole job, then 1000 after the exit event.
	c := dial(t, ctx, base, "/api/jobs/1/stream?after=2")
	evs, _, err := readEvents(ctx, c)
	if err != nil || len(evs) != 3 || evs[0].Seq != 3 || evs[2].Type != jobs.TypeExit {
		t.Fatalf("got %v, %v; want seq 3..5 ending with exit", evs, err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after exit: %v, want close 1000", err)
	}
}

// TestStreamResume: a client that disconnects mid-stream while the job
// runs and resumes with after= gets 1..N exactly once.
func TestStreamResume(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{RingBytes: 32 << 10})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)
	const total = 6000
	for s := jobs.Seq(1); s <= 1000; s += 100 {
		streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(s, 100))
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for s := jobs.Seq(1001); s <= total; s += 50 {
			streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(s, 50))
		}
		streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(total + 1)})
	})

	var check streamtest.SeqChecker
	c := dial(t, ctx, base, "/api/jobs/1/stream")
	for check.Last < 2500 {
		evs, _, err := readEvents(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := check.Add(evs); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseNow() // drop mid-stream

	cl := &remote.Client{BaseURL: base}
	if err := cl.Follow(ctx, "1", check.Last, check.Add); err != nil {
		t.Fatalf("follow: %v", err)
	}
	if check.Last != total+1 {
		t.Errorf("last seq %d, want %d", check.Last, total+1)
	}
}

// TestHeartbeat: a quiet stream gets "[]" messages.
func TestHeartbeat(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	srv.Heartbeat = 20 * time.Millisecond
	base := streamtest.Serve(t, srv)
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 2))

	c := dial(t, ctx, base, "/api/jobs/1/stream")
	evs, _, err := readEvents(ctx, c)
	if err != nil || len(evs) != 2 {
		t.Fatalf("first message: %v, %v", evs, err)
	}
	for range 3 {
		_, p, err := readEvents(ctx, c)
		if err != nil || string(p) != "[]" {
			t.Fatalf("got %s, %v; want a heartbeat []", p, err)
		}
	}
	streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(3)})
	for {
		evs, p, err := readEvents(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if string(p) == "[]" {
			continue
		}
		if len(evs) != 1 || evs[0].Seq != 3 {
			t.Fatalf("got %s, want the exit event", p)
		}
		break
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after exit: %v, want close 1000", err)
	}
}

// TestPings: the server sends protocol pings every Heartbeat (a client
// answers them while it reads).
func TestPings(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	srv.Heartbeat = 10 * time.Millisecond
	base := streamtest.Serve(t, srv)
	streamtest.NewJob(t, db)
	var pings atomic.Int64
	c, _, err := websocket.Dial(ctx, streamtest.WSURL(base, "/api/jobs/1/stream"), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for pings.Load() < 3 {
		if _, p, err := readEvents(ctx, c); err != nil || string(p) != "[]" {
			t.Fatalf("got %s, %v; want heartbeats", p, err)
		}
	}
}

// TestClientMessages: messages from the viewer get out-of-band notices and
// leave the stream working.
func TestClientMessages(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	base := streamtest.Serve(t, srv)
	streamtest.NewJob(t, db)

	c := dial(t, ctx, base, "/api/jobs/1/stream")
	for _, tc := range []struct{ send, want string }{
		{`{"type":"hello"}`, `[{"type":"error","error":"unsupported message","code":400}]`},
		{`not json`, `[{"type":"error","error":"unsupported message","code":400}]`},
		{`{"type":"cancel"}`, `[{"type":"error","error":"job 1 is not run by this process; cancel it where it runs: conflict","code":409}]`},
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(tc.send)); err != nil {
			t.Fatal(err)
		}
		evs, p, err := readEvents(ctx, c)
		if err != nil || string(p) != tc.want {
			t.Errorf("sent %s: got %s, %v; want %s", tc.send, p, err, tc.want)
		}
		if len(evs) != 1 || evs[0].Seq != 0 {
			t.Errorf("notice %s decodes to %v, want one event without seq", p, evs)
		}
	}
	streamtest.Commit(t, db, hub, 1, streamtest.Lines(1, 3))
	evs, _, err := readEvents(ctx, c)
	if err != nil || len(evs) != 3 {
		t.Errorf("after notices: %v, %v; want 3 events", evs, err)
	}
}

// TestServerClose: Server.Close closes open streams with 1001, and
// streams opened after it at once.
func TestServerClose(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	base := streamtest.Serve(t, srv)
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 2))

	c := dial(t, ctx, base, "/api/jobs/1/stream")
	if _, _, err := readEvents(ctx, c); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("on Server.Close: %v, want close 1001", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
	c2 := dial(t, ctx, base, "/api/jobs/1/stream")
	if _, _, err := c2.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("after Server.Close: %v, want close 1001", err)
	}
}

// TestOrigin: a foreign Origin cannot open a stream unless allowed.
func TestOrigin(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	srv.OriginPatterns = []string{"trusted.example"}
	base := streamtest.Serve(t, srv)
	streamtest.NewJob(t, db)
	host := strings.TrimPrefix(base, "http://")

	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"http://trusted.example", true},
		{"http://evil.example", false},
		{"http://" + host + ".evil.example", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, resp, err := websocket.Dial(ctx, streamtest.WSURL(base, "/api/jobs/1/stream"), &websocket.DialOptions{HTTPHeader: h})
		if tc.ok {
			if err != nil {
				t.Errorf("Origin %q: %v, want accepted", tc.origin, err)
				continue
			}
			c.CloseNow()
			continue
		}
		if err == nil {
			c.CloseNow()
			t.Errorf("Origin %q: accepted, want refused", tc.origin)
		} else if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %q: %v, want 403", tc.origin, err)
		}
	}
}

// TestClientErrors: Follow and Job report the server's refusals as typed
// errors that unwrap to the jobs sentinels.
func TestClientErrors(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	base := streamtest.Serve(t, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 3))
	cl := &remote.Client{BaseURL: base}

	got, err := cl.Job(ctx, string(j.UID))
	if err != nil || got.ID != j.ID || got.LastSeq != 3 {
		t.Errorf("Job = %+v, %v", got, err)
	}
	_, err = cl.Job(ctx, "999")
	var he *stream.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 || !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Job(999) = %v, want an *HTTPError 404 that is jobs.ErrNotFound", err)
	}

	nop := func([]jobs.Event) error { return nil }
	for _, tc := range []struct {
		ref      string
		after    jobs.Seq
		code     int
		sentinel error
	}{
		{"999", 0, stream.CodeNotFound, jobs.ErrNotFound},
		{"1", 5, stream.CodeConflict, jobs.ErrConflict},
		{"Bad.Ref", 0, stream.CodeInvalid, jobs.ErrInvalid},
	} {
		err := cl.Follow(ctx, tc.ref, tc.after, nop)
		var ce *stream.CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code || !errors.Is(err, tc.sentinel) {
			t.Errorf("Follow(%s, after %d) = %v, want a *CloseError %d", tc.ref, tc.after, err, tc.code)
		}
	}

	// Following a finished job from its exit returns at once.
	streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(4)})
	if err := cl.Follow(ctx, "1", 4, nop); err != nil {
		t.Errorf("Follow after the exit = %v, want nil", err)
	}

	// fn's error ends Follow.
	stop := errors.New("stop")
	if err := cl.Follow(ctx, "1", 0, func([]jobs.Event) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Follow with failing fn = %v, want it", err)
	}
}
