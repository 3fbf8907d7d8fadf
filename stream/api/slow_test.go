package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/remote"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// slowNet injects a slow network: clients from it have a tiny socket
// receive buffer, and the server's sockets to them a tiny send buffer, so
// that a client that stops reading stalls the server's writes at once.
type slowNet struct {
	mu    sync.Mutex
	addrs map[string]bool // local addresses of slowNet clients
}

func (n *slowNet) client() *http.Client {
	d := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return err
	}}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			n.mu.Lock()
			n.addrs[c.LocalAddr().String()] = true
			n.mu.Unlock()
		}
		return c, err
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial}}
}

// server starts srv on 127.0.0.1, shrinking the send buffer of
// connections from slowNet clients.
func (n *slowNet) server(t *testing.T, srv *api.Server) *httptest.Server {
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ConnState = func(c net.Conn, s http.ConnState) {
		// The client records its address right after connect, which may
		// be after the server's accept: StateActive comes with the first
		// request, which the client sends only after recording.
		if s == http.StateActive {
			n.mu.Lock()
			slow := n.addrs[c.RemoteAddr().String()]
			n.mu.Unlock()
			if slow {
				c.(*net.TCPConn).SetWriteBuffer(4096)
			}
		}
	}
	ts.Start()
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return ts
}

// cutOff waits until the server logged that it cut off a slowNet client.
func (n *slowNet) cutOff(ctx context.Context, logs *streamtest.LogBuffer) error {
	for {
		n.mu.Lock()
		for addr := range n.addrs {
			if logs.HasLine("viewer too slow", "remote="+addr) {
				n.mu.Unlock()
				return nil
			}
		}
		n.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("the stalled viewer was never cut off: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// slowSetup starts a server whose writes time out after 300 ms, with a
// job; logs records the server's log.
func slowSetup(t *testing.T) (*slowNet, *httptest.Server, *streamtest.LogBuffer, func() jobs.Seq) {
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{RingBytes: 64 << 10})
	logs := &streamtest.LogBuffer{}
	srv := streamtest.NewServer(db, hub)
	srv.Logger = slog.New(slog.NewTextHandler(logs, nil))
	srv.WriteTimeout = 300 * time.Millisecond
	srv.Heartbeat = time.Hour // no pings: the write timeout is what cuts it off
	sn := &slowNet{addrs: map[string]bool{}}
	ts := sn.server(t, srv)
	j := streamtest.NewJob(t, db)
	// publish commits and publishes about 400 KB, far more than the
	// socket buffers and the ring hold, and the exit event; it returns the
	// last seq.
	publish := func() jobs.Seq {
		const total = 2000
		for s := jobs.Seq(1); s <= total; s += 100 {
			evs := streamtest.Lines(s, 100)
			for i := range evs {
				evs[i].Data = append(evs[i].Data, make([]byte, 100)...)
			}
			streamtest.Commit(t, db, hub, j.ID, evs)
		}
		streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(total + 1)})
		return total + 1
	}
	return sn, ts, logs, publish
}

// fastClient is a Client that reads as fast as it can. Under load it may
// still miss a write timeout now and then; it then resumes at once.
func fastClient(ts *httptest.Server) *remote.Client {
	return &remote.Client{BaseURL: ts.URL, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

// dialSlow opens a stream from a client that will not read for now.
func dialSlow(t *testing.T, ctx context.Context, sn *slowNet, ts *httptest.Server) *websocket.Conn {
	c, _, err := websocket.Dial(ctx, streamtest.WSURL(ts.URL, "/api/jobs/1/stream"),
		&websocket.DialOptions{HTTPClient: sn.client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(64 << 20)
	return c
}

// readUntilClosed reads events into check until the connection ends.
func readUntilClosed(ctx context.Context, c *websocket.Conn, check *streamtest.SeqChecker) error {
	for {
		evs, _, err := readEvents(ctx, c)
		if err != nil {
			return err
		}
		if err := check.Add(evs); err != nil {
			return err
		}
	}
}

// TestSlowViewer: a viewer that stops reading does not slow Publish or a
// second viewer; it is cut off, and resumes with after= to get everything
// exactly once.
func TestSlowViewer(t *testing.T) {
	ctx := streamtest.Ctx(t)
	sn, ts, logs, publish := slowSetup(t)
	slow := dialSlow(t, ctx, sn, ts)

	fast := make(chan error, 1)
	var fastCheck streamtest.SeqChecker
	go func() {
		cl := fastClient(ts)
		fast <- cl.Follow(ctx, "1", 0, fastCheck.Add)
	}()
	last := publish() // returns: Publish did not wait for the slow viewer

	// The other viewer gets everything while the slow one reads nothing.
	if err := <-fast; err != nil || fastCheck.Last != last {
		t.Fatalf("fast viewer: %v, last seq %d", err, fastCheck.Last)
	}
	if err := sn.cutOff(ctx, logs); err != nil {
		t.Fatal(err)
	}

	// Now it reads what was in flight, then the end: 4429 if the close
	// frame could still be sent, else a torn-down connection.
	var check streamtest.SeqChecker
	err := readUntilClosed(ctx, slow, &check)
	if code := websocket.CloseStatus(err); code != stream.CodeTooSlow {
		t.Logf("slow viewer ended without a close frame: %v", err)
	}
	if check.Last >= last {
		t.Fatalf("the slow viewer got everything (last %d) before being cut off", check.Last)
	}
	if err := fastClient(ts).Follow(ctx, "1", check.Last, check.Add); err != nil || check.Last != last {
		t.Fatalf("resume: %v, last seq %d", err, check.Last)
	}
}

// TestTooSlowCloseCode: a stalled viewer that resumes reading soon after
// it was cut off gets what was in flight and then the close code 4429.
func TestTooSlowCloseCode(t *testing.T) {
	ctx := streamtest.Ctx(t)
	sn, ts, logs, publish := slowSetup(t)
	slow := dialSlow(t, ctx, sn, ts)
	last := publish()
	if err := sn.cutOff(ctx, logs); err != nil {
		t.Fatal(err)
	}
	var check streamtest.SeqChecker
	err := readUntilClosed(ctx, slow, &check)
	if code := websocket.CloseStatus(err); code != stream.CodeTooSlow {
		t.Fatalf("slow viewer ended with %v, want close 4429", err)
	}
	if check.Last >= last {
		t.Fatalf("the slow viewer got everything (last %d) before being cut off", check.Last)
	}
}

// TestFollowResumesAfterTooSlow: Client.Follow itself reconnects after
// being cut off and continues exactly after the last seq it delivered.
func TestFollowResumesAfterTooSlow(t *testing.T) {
	ctx := streamtest.Ctx(t)
	sn, ts, logs, publish := slowSetup(t)
	last := publish()

	// fn stalls on its first call until the server has given up on the
	// connection, so the stream is cut off mid-way.
	var check streamtest.SeqChecker
	stalled := false
	cl := fastClient(ts)
	cl.HTTP = sn.client()
	err := cl.Follow(ctx, "1", 0, func(evs []jobs.Event) error {
		if !stalled {
			stalled = true
			if err := sn.cutOff(ctx, logs); err != nil {
				return err
			}
		}
		return check.Add(evs)
	})
	if err != nil || check.Last != last {
		t.Fatalf("follow: %v, last seq %d", err, check.Last)
	}
}

// steadyConn reads about 100 KB/s: a viewer on a slow link, reading
// steadily.
type steadyConn struct{ net.Conn }

func (c steadyConn) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return c.Conn.Read(p[:min(len(p), 1<<10)])
}

// TestSteadySlowViewerIsNotCut: a viewer that takes a message more slowly
// than the write timeout, but steadily, is not a stalled one: its writes
// progress, and its pong, queued behind the data, comes late. It gets
// everything and the normal close, never 4429.
func TestSteadySlowViewerIsNotCut(t *testing.T) {
	ctx := streamtest.Ctx(t)
	sn, ts, logs, publish := slowSetup(t)
	last := publish()
	// Pings every 100 ms, answered only after the data before them; a
	// write timeout of 2 s, well under what the history's message takes
	// (about 5 s), and a margin for a loaded machine.
	srv := ts.Config.Handler.(*api.Server)
	srv.Heartbeat = 100 * time.Millisecond
	srv.WriteTimeout = 2 * time.Second
	steady := sn.client()
	dial := steady.Transport.(*http.Transport).DialContext
	steady.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return steadyConn{c}, nil
	}
	c, _, err := websocket.Dial(ctx, streamtest.WSURL(ts.URL, "/api/jobs/1/stream"), &websocket.DialOptions{HTTPClient: steady})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	var check streamtest.SeqChecker
	err = readUntilClosed(ctx, c, &check)
	if code := websocket.CloseStatus(err); code != websocket.StatusNormalClosure || check.Last != last {
		t.Fatalf("steady slow viewer ended with %v at seq %d, want 1000 after seq %d; server log:\n%s", err, check.Last, last, logs)
	}
	if logs.HasLine("viewer too slow") {
		t.Error("the steady viewer was taken for a stalled one")
	}
}
