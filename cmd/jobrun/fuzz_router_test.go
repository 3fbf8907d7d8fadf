package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/jobs/progress"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/access"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// fuzzToken is the full token of the fuzzed server that has one.
const fuzzToken = "fuzz-token-0123456789abcdef"

// handledHeader marks the answers of jobrun's handler, as opposed to those
// of net/http itself for requests it cannot parse (400, 431, 501, 505).
const handledHeader = "X-Fuzz-Handled"

// fuzzServer is serve's whole front (serveFront, on startFront's server)
// over a real database, for FuzzServeRouter.
type fuzzServer struct {
	addr string
	logs *streamtest.LogBuffer
}

// startFuzzServer serves db as serve does, with token ("" none: loopback
// only, the Host check) on a loopback port.
func startFuzzServer(t testing.TB, sq *sqlite.DB, token string) *fuzzServer {
	t.Helper()
	logs := &streamtest.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := serveConfig{addr: "127.0.0.1:0", loopback: true, logger: logger,
		sec: &serveSecurity{auth: &access.Auth{Token: token, Secret: []byte(strings.Repeat("s", 32))}, maxConns: access.DefaultMaxClientConns}}
	db := database{serverStore: sq, sq: sq}
	metrics := newServerMetrics()
	metrics.watchStore(db, logger)
	hub := stream.NewHub(db, stream.HubOptions{Logger: logger})
	apiSrv, ingestSrv := serveHandlers(cfg, db, hub, metrics)
	front := serveFront(cfg, db, apiSrv, ingestSrv, metrics)
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		t.Fatal(err)
	}
	f := startFront(ln, apiSrv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(handledHeader, "1")
		front.ServeHTTP(w, r)
	}), logger)
	t.Cleanup(func() {
		ingestSrv.Close()
		f.shutdown(time.Second)
		hub.Close()
	})
	return &fuzzServer{addr: ln.Addr().String(), logs: logs}
}

// fuzzDB is a database with a few finished jobs: one with lines, progress
// and an exit, one incomplete, one of an agent.
func fuzzDB(t testing.TB) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db := streamtest.OpenDBAt(t, filepath.Join(t.TempDir(), "jobrun.db"))
	j := streamtest.NewJob(t, db)
	evs := streamtest.Lines(1, 50)
	evs = append(evs, jobs.Event{Seq: 51, Time: time.Now(), Type: jobs.TypeProgress, Progress: &progress.Report{Percent: 40, Message: "m"}})
	evs = append(evs, jobs.Event{Seq: 52, Time: time.Now(), Type: jobs.TypeLine, Stream: jobs.StreamStdout, Line: 51, Data: []byte("frame"), EOL: "\r"})
	evs = append(evs, streamtest.ExitEvent(53))
	streamtest.Commit(t, db, nil, j.ID, evs)
	j2 := streamtest.NewJob(t, db)
	exit := streamtest.ExitEvent(3)
	exit.Incomplete, exit.IncompleteReason = true, "storing the output failed after seq 2: disk full"
	streamtest.Commit(t, db, nil, j2.ID, append(streamtest.Lines(1, 2), exit))
	uid := jobs.NewUID()
	id, _, err := db.RegisterJob(ctx, jobs.Job{UID: uid, Name: "agent", Command: []string{"make"}, Host: "box"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, id, append(streamtest.Lines(1, 3), streamtest.ExitEvent(4))); err != nil {
		t.Fatal(err)
	}
	return db
}

// Header sets FuzzServeRouter adds to a request, by the bits of its kind.
var fuzzHeaders = []string{
	"Authorization: Bearer " + fuzzToken,
	"Accept: text/event-stream",
	"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
	"Origin: https://evil.example",
	"Content-Type: application/json",
	"Authorization: Bearer s1.abc.1.x",
	"Cookie: jobrun_session_00000000=v1.full.1.x; jobrun_share_abc=s1.abc.99999999999.x",
	"X-Forwarded-For: 10.0.0.1, ::1\r\nLast-Event-ID: 3",
}

// FuzzServeRouter sends arbitrary requests (method, target with any path
// and query, some headers, a body) to serve's whole front, the API, the
// pages and the gate as serve wires them over a real database, with and
// without a token: bad input never gets a 5xx from jobrun's handler, and
// nothing panics.
func FuzzServeRouter(f *testing.F) {
	for _, seed := range []struct {
		method, target string
		kind           uint8
		body           string
	}{
		{"GET", "/assets/%c0%ae%c0%ae/etc/passwd", 0, ""},
		{"GET", "/assets/style.css", 0, ""},
		{"GET", "/assets/../../etc/passwd", 0, ""},
		{"GET", "/", 1, ""},
		{"GET", "/jobs/1?token=" + fuzzToken, 0, ""},
		{"GET", "/jobs/%ff", 1, ""},
		{"POST", "/login", 0, "token=x&next=//evil"},
		{"POST", "/logout", 8, ""},
		{"GET", "/api/auth?next=%2F%2Fx", 64, ""},
		{"GET", "/api/info", 32, ""},
		{"GET", "/api/jobs?limit=-1&before=x", 1, ""},
		{"GET", "/api/jobs/1", 1, ""},
		{"GET", "/api/jobs/99999999999999999999999", 1, ""},
		{"GET", "/api/jobs/1/log?stream=tty", 1, ""},
		{"GET", "/api/jobs/2/log", 1, ""},
		{"GET", "/api/jobs/1/events?tail=5&collapse=1", 1, ""},
		{"GET", "/api/jobs/1/events?before=52&limit=3&collapse=1", 1, ""},
		{"GET", "/api/jobs/1/events?line=2&limit=2", 1, ""},
		{"GET", "/api/jobs/1/events?after=53&wait=1s", 1, ""},
		{"GET", "/api/jobs/1/events?after=0", 3, ""},
		{"GET", "/api/jobs/1/events", 131, ""},
		{"GET", "/api/jobs/1/stream?after=0&collapse=1", 5, ""},
		{"GET", "/api/stream?limit=5", 5, ""},
		{"POST", "/api/jobs/1/cancel", 17, "{}"},
		{"POST", "/api/jobs/1/share", 17, `{"expires":"1h"}`},
		{"DELETE", "/api/jobs/1", 17, "{}"},
		{"POST", "/api/prune", 17, `{"older_than_seconds":1,"keep":0}`},
		{"GET", "/api/ingest", 5, ""},
		{"GET", "/api/probe/sse?hold=1ms", 3, ""},
		{"GET", "/api/probe/poll?wait=0s", 1, ""},
		{"GET", "/healthz", 0, ""},
		{"GET", "/metrics", 1, ""},
		{"PATCH", "/api/jobs/1/events?after=%zz", 1, ""},
	} {
		f.Add(seed.method, seed.target, seed.kind, seed.body)
	}
	db := fuzzDB(f)
	servers := []*fuzzServer{startFuzzServer(f, db, fuzzToken), startFuzzServer(f, db, "")}
	f.Fuzz(func(t *testing.T, method, target string, kind uint8, body string) {
		var hdr strings.Builder
		for i, h := range fuzzHeaders {
			if kind&(1<<i) != 0 {
				hdr.WriteString(h + "\r\n")
			}
		}
		for _, s := range servers {
			req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				method, target, s.addr, hdr.String(), len(body), body)
			checkAnswer(t, s, req)
		}
	})
}

// checkAnswer sends the raw request req to s and checks the status of its
// answer (a handler that takes longer than a few seconds, a long poll, is
// left alone) and that the server logged no panic.
func checkAnswer(t *testing.T, s *fuzzServer, req string) {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return // the server closed the connection on a request it refused whole
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil && resp.StatusCode >= 500 && resp.Header.Get(handledHeader) != "" {
		t.Errorf("%q: %s", req, resp.Status)
	}
	if strings.Contains(s.logs.String(), "panic") {
		t.Fatalf("%q: the server panicked:\n%s", req, s.logs)
	}
}
