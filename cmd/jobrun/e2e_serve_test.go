package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
)

var serveURLRE = regexp.MustCompile(`listening.* url=(http://[^/\s]+)/`)

// startServe starts jobrun serve on a free loopback port and returns its
// base URL.
func startServe(t *testing.T, db string) (*proc, string) {
	t.Helper()
	p := startJobrun(t, db, "serve", "--addr", "127.0.0.1:0")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := serveURLRE.FindStringSubmatch(p.stderrString()); m != nil {
			return p, m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no URL: %q", p.stderrString())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeStreamsJobsOfOtherProcesses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	srv, base := startServe(t, db)

	// A job run by a separate exec process on the same database.
	ex := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo "line $i"; if [ $((i % 50)) = 0 ]; then sleep 0.05; fi; done`)
	ex.baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	evs, status := readStream(ctx, t, base, 1, 0, 0)
	if status != websocket.StatusNormalClosure {
		t.Errorf("serve's stream closed with %v, want 1000", status)
	}
	checkContiguous(t, evs, 1)
	if len(evs) != 501 || evs[500].Type != jobs.TypeExit {
		t.Errorf("got %d events from serve, want 500 lines and the exit", len(evs))
	}
	ex.wait(t)

	// Graceful shutdown closes live viewers with 1001.
	ex2 := startJobrun(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sleep", "30")
	ex2.baseURL(t)
	url := strings.Replace(base, "http://", "ws://", 1) + "/api/jobs/2/stream"
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	for {
		if _, _, err = c.Read(ctx); err != nil {
			break
		}
	}
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("viewer of a running job at serve shutdown: close %v (%v), want 1001", got, err)
	}
	if code := srv.wait(t); code != 0 {
		t.Errorf("serve exit code %d after SIGTERM, want 0", code)
	}
	ex2.cmd.Process.Signal(syscall.SIGTERM)
	ex2.wait(t)
}

func TestServeRefusesPublicAddrWithoutToken(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	_, code := jobrunOutput(t, db, "serve", "--addr", "0.0.0.0:0")
	if code != 2 {
		t.Errorf("serve on 0.0.0.0 without a token: exit %d, want 2", code)
	}
}
