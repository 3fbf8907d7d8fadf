package main

// After its job ends, jobrun exec waits only while some viewer still needs
// it (stream/api/viewers.go). Every case runs a real exec with --linger 1h:
// an exec that waited on the timer where it should not would never exit,
// and the test fails at its deadline instead of measuring time.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
)

// waitExit waits up to a minute for exec to exit and returns its status.
func waitExit(t *testing.T, p *proc, why string) int {
	t.Helper()
	select {
	case <-p.done:
		return p.wait(t)
	case <-time.After(60 * time.Second):
		t.Fatalf("exec still running a minute after %s; stderr: %q", why, p.stderrString())
	}
	return -1
}

// wsDial opens the job's stream with a client of our own.
func wsDial(t *testing.T, ctx context.Context, base string, after jobs.Seq, hc *http.Client) *websocket.Conn {
	t.Helper()
	url := strings.Replace(base, "http://", "ws://", 1) + fmt.Sprintf("/api/jobs/1/stream?after=%d", after)
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(256 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readAll reads c to its close, checking that seqs follow after, and
// returns the last seq, whether it was the exit event, and the close code.
func readAll(t *testing.T, ctx context.Context, c *websocket.Conn, after jobs.Seq, pause time.Duration) (jobs.Seq, bool, websocket.StatusCode) {
	t.Helper()
	last, exit := after, false
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return last, exit, websocket.CloseStatus(err)
		}
		var evs []jobs.Event
		if err := json.Unmarshal(msg, &evs); err != nil {
			t.Fatalf("message: %v", err)
		}
		for _, e := range evs {
			if e.Seq != last+1 {
				t.Fatalf("seq %d after %d", e.Seq, last)
			}
			last, exit = e.Seq, e.Type == jobs.TypeExit
		}
		time.Sleep(pause)
	}
}

// throttled reads at most about 8 MB/s: a viewer far behind, but reading.
type throttled struct{ net.Conn }

func (c throttled) Read(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return c.Conn.Read(p[:min(len(p), 16<<10)])
}

// bigOutput prints n thousand lines of 50 bytes.
func bigOutput(n int) string {
	return fmt.Sprintf(`i=0; while [ $i -lt %d ]; do i=$((i+1)); yes 0123456789012345678901234567890123456789012345678 | head -n 1000; done`, n)
}

func TestLingerNoViewerExitsAtOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "--addr", "127.0.0.1:0", "--linger", "1h", "--", "true")
	if code := waitExit(t, p, "a job nobody watched"); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestLingerViewerWithTheEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	gate, open := startGate(t)
	p := startJobrun(t, db, "exec", "-q", "--progress", "off", "--addr", "127.0.0.1:0", "--linger", "1h", "--", "sh", "-c", gate+"seq 1 1000; exit 3")
	base := p.baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := wsDial(t, ctx, base, 0, nil)
	open()
	last, exit, code := readAll(t, ctx, c, 0, 0)
	if !exit || last != 1001 || code != websocket.StatusNormalClosure {
		t.Errorf("viewer got up to seq %d (exit %v), closed %v; want the exit at 1001 and 1000", last, exit, code)
	}
	if code := waitExit(t, p, "its one viewer got the exit event"); code != 3 {
		t.Errorf("exit %d, want the job's 3", code)
	}
}

func TestLingerViewerFarBehindButReading(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	gate, open := startGate(t)
	p := startJobrun(t, db, "exec", "-q", "--progress", "off", "--addr", "127.0.0.1:0", "--linger", "1h", "--", "sh", "-c", gate+bigOutput(60))
	base := p.baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	slow := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(64 << 10) // keep the kernel from reading far ahead for us
		}
		return throttled{c}, nil
	}}}
	c := wsDial(t, ctx, base, 0, slow)
	open()
	last, exit, code := readAll(t, ctx, c, 0, 0)
	if !exit || code != websocket.StatusNormalClosure {
		t.Fatalf("slow viewer got up to seq %d (exit %v), closed %v; want everything and 1000", last, exit, code)
	}
	if code := waitExit(t, p, "the slow viewer got the exit event"); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestLingerStuckViewerIsCut(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	gate, open := startGate(t)
	p := startJobrun(t, db, "exec", "-q", "--progress", "off", "--addr", "127.0.0.1:0", "--linger", "1h", "--", "sh", "-c", gate+bigOutput(600)) // 30 MB: more than the sockets on the way hold
	base := p.baseURL(t)
	// A viewer that opens the stream and never reads a byte.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	fmt.Fprintf(conn, "GET /api/jobs/1/stream HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", strings.TrimPrefix(base, "http://"))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("handshake: %q %v", status, err)
	}
	open()
	if code := waitExit(t, p, "its only viewer stopped reading"); code != 0 {
		t.Errorf("exit %d", code)
	}
	// The job was stored whole all the same.
	out, _ := jobrunOutput(t, db, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	if err := json.Unmarshal(out, &list); err != nil || len(list.Jobs) != 1 || list.Jobs[0].Status != jobs.StatusSucceeded || list.Jobs[0].LastLine != 600000 {
		t.Errorf("ls --json: %v %s", err, out)
	}
}

func TestLingerViewerDroppedJustBeforeTheEndComesBack(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	gate, open := startGate(t)
	p := startJobrun(t, db, "exec", "-q", "--progress", "off", "--addr", "127.0.0.1:0", "--linger", "1h", "--", "sh", "-c",
		"seq 1 100; "+gate+"seq 101 200")
	base := p.baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := wsDial(t, ctx, base, 0, nil)
	var last jobs.Seq
	for last < 100 {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var evs []jobs.Event
		json.Unmarshal(msg, &evs)
		last = evs[len(evs)-1].Seq
	}
	c.CloseNow() // the laptop sleeps
	open()       // and the job ends meanwhile
	waitFor(t, func() bool {
		j := jobStatus(t, db)
		return j.Status.Final()
	})
	time.Sleep(500 * time.Millisecond) // exec waits for the viewer that dropped
	c = wsDial(t, ctx, base, last, nil)
	got, exit, code := readAll(t, ctx, c, last, 0)
	if !exit || got != 201 || code != websocket.StatusNormalClosure {
		t.Errorf("resumed viewer got up to %d (exit %v), closed %v; want the exit at 201", got, exit, code)
	}
	if code := waitExit(t, p, "the viewer came back for the end"); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestLingerPageLoadedBeforeItsStream(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	gate, open := startGate(t)
	p := startJobrun(t, db, "exec", "-q", "--progress", "off", "--addr", "127.0.0.1:0", "--linger", "1h", "--", "sh", "-c", gate+"seq 1 10")
	base := p.baseURL(t)
	resp, err := http.Get(base + "/jobs/1") // the page is loading; its script opens the stream later
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	open()
	waitFor(t, func() bool { return jobStatus(t, db).Status.Final() })
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := wsDial(t, ctx, base, 0, nil)
	if got, exit, _ := readAll(t, ctx, c, 0, 0); !exit || got != 11 {
		t.Errorf("the page's stream got up to %d (exit %v); want the exit at 11", got, exit)
	}
	if code := waitExit(t, p, "the page's stream got the exit event"); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestLingerAfterSIGTERM(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	p := startJobrun(t, db, "exec", "-q", "--progress", "off", "--addr", "127.0.0.1:0", "--linger", "1h", "--", "sh", "-c", "echo ready; exec sleep 600")
	base := p.baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := wsDial(t, ctx, base, 0, nil)
	waitFor(t, func() bool { return jobStatus(t, db).LastSeq >= 1 })
	p.cmd.Process.Signal(syscall.SIGTERM)
	if _, exit, code := readAll(t, ctx, c, 0, 0); !exit || code != websocket.StatusNormalClosure {
		t.Errorf("viewer: exit %v, close %v; want the exit event and 1000", exit, code)
	}
	if code := waitExit(t, p, "SIGTERM, its viewer having the end"); code != 143 {
		t.Errorf("exit %d, want 143", code)
	}
	// Without a viewer, SIGTERM ends exec as soon as the job has ended.
	p2 := startJobrun(t, filepath.Join(t.TempDir(), "jobrun.db"), "exec", "-q", "--progress", "off", "--addr", "127.0.0.1:0", "--linger", "1h", "--", "sleep", "600")
	p2.baseURL(t)
	p2.cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, p2, "SIGTERM with no viewer"); code != 143 {
		t.Errorf("exit %d, want 143", code)
	}
}
