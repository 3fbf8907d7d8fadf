package ingest_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/ingest"
	"github.com/jobrun/jobrun/stream/streamtest"
)

var _ ingest.Store = (*sqlite.DB)(nil)

// ingestServer serves an Ingest over db (with its Hub) on a loopback
// address.
type ingestServer struct {
	db   *sqlite.DB
	hub  *stream.Hub
	in   *ingest.Server
	srv  *http.Server
	addr string
	done chan struct{}
}

// startIngest serves db's ingest endpoint on addr ("" for a fresh port),
// with the Ingest's fields as set by opts, if any.
func startIngest(t testing.TB, db *sqlite.DB, addr string, opts ...func(*ingest.Server)) *ingestServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &ingestServer{db: db, addr: ln.Addr().String(), done: make(chan struct{})}
	s.hub = stream.NewHub(db, stream.HubOptions{Logger: slog.New(slog.DiscardHandler)})
	s.in = &ingest.Server{Store: db, Hub: s.hub, Heartbeat: 200 * time.Millisecond, AgentTimeout: 20 * time.Second,
		Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s.in)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/ingest", s.in)
	s.srv = &http.Server{Handler: mux}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *ingestServer) base() string { return "http://" + s.addr }

// stop closes the agents' connections (1001) and the listener.
func (s *ingestServer) stop() {
	s.in.Close()
	s.srv.Close()
	<-s.done
	s.hub.Close()
}

// rawAgent is a hand-driven ingest connection.
type rawAgent struct {
	t *testing.T
	c *websocket.Conn
}

func dialIngest(t *testing.T, base string) *rawAgent {
	t.Helper()
	c, _, err := websocket.Dial(streamtest.Ctx(t), streamtest.WSURL(base, "/api/ingest"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &rawAgent{t: t, c: c}
}

func (a *rawAgent) send(v any) {
	a.t.Helper()
	var p []byte
	switch v := v.(type) {
	case string:
		p = []byte(v)
	default:
		var err error
		if p, err = json.Marshal(v); err != nil {
			a.t.Fatal(err)
		}
	}
	if err := a.c.Write(streamtest.Ctx(a.t), websocket.MessageText, p); err != nil {
		a.t.Fatalf("send: %v", err)
	}
}

// next reads the next message other than a heartbeat; on a close it
// returns the close code.
func (a *rawAgent) next() (map[string]any, websocket.StatusCode) {
	a.t.Helper()
	for {
		_, p, err := a.c.Read(streamtest.Ctx(a.t))
		if err != nil {
			return nil, websocket.CloseStatus(err)
		}
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			a.t.Fatalf("bad message %q", p)
		}
		if m["type"] != "heartbeat" {
			return m, -1
		}
	}
}

func hello(uid jobs.UID) map[string]any {
	return map[string]any{"type": "hello", "job": map[string]any{"uid": uid, "name": "remote", "command": []string{"make"},
		"cwd": "/src", "host": "buildbox", "created_at": time.Now(), "started_at": time.Now()}}
}

func eventsMsg(evs []jobs.Event) map[string]any {
	return map[string]any{"type": "events", "events": evs}
}

// welcome says hello and returns the welcome's id and last_seq.
func (a *rawAgent) welcome(uid jobs.UID) (jobs.ID, jobs.Seq) {
	a.t.Helper()
	a.send(hello(uid))
	m, code := a.next()
	if m["type"] != "welcome" {
		a.t.Fatalf("answer to hello: %v (close %v), want a welcome", m, code)
	}
	if hb, _ := m["heartbeat_ms"].(float64); hb != 200 {
		a.t.Errorf("welcome's heartbeat_ms = %v, want 200", m["heartbeat_ms"])
	}
	return jobs.ID(m["id"].(float64)), jobs.Seq(m["last_seq"].(float64))
}

// ack sends evs and returns the acknowledged seq.
func (a *rawAgent) ack(evs []jobs.Event) jobs.Seq {
	a.t.Helper()
	a.send(eventsMsg(evs))
	m, code := a.next()
	if m["type"] != "ack" {
		a.t.Fatalf("answer to events: %v (close %v), want an ack", m, code)
	}
	return jobs.Seq(m["seq"].(float64))
}

// closed waits for the server to close the connection and returns the
// code.
func (a *rawAgent) closed() websocket.StatusCode {
	a.t.Helper()
	for {
		m, code := a.next()
		if m == nil {
			return code
		}
	}
}

func TestIngestRegistersOnceAndResends(t *testing.T) {
	db := streamtest.OpenDB(t)
	s := startIngest(t, db, "")
	uid := jobs.NewUID()

	a := dialIngest(t, s.base())
	id, last := a.welcome(uid)
	if last != 0 {
		t.Fatalf("first welcome: last_seq %d, want 0", last)
	}
	sub := s.hub.Subscribe(id, 0) // a viewer on the server
	defer sub.Close()
	all := streamtest.Lines(1, 7)
	if got := a.ack(all[:5]); got != 5 {
		t.Fatalf("ack %d, want 5", got)
	}
	b, err := sub.Next(streamtest.Ctx(t))
	if err != nil || b.First != 1 || b.Last != 5 {
		t.Fatalf("viewer got %v, %v; want seq 1..5, published after the commit", b, err)
	}

	// A second connection with the same uid (a retry) is the same job, and
	// resends are stored once.
	b2 := dialIngest(t, s.base())
	id2, last2 := b2.welcome(uid)
	if id2 != id || last2 != 5 {
		t.Fatalf("second welcome = id %d, last_seq %d; want %d, 5", id2, last2, id)
	}
	if got := b2.ack(all[2:7]); got != 7 {
		t.Fatalf("ack of an overlapping resend = %d, want 7", got)
	}
	if got := a.ack(all); got != 7 {
		t.Fatalf("ack of a pure resend = %d, want 7", got)
	}
	list, err := db.Jobs(streamtest.Ctx(t), store.JobsQuery{})
	if err != nil || len(list) != 1 || list[0].UID != uid || !list[0].Agent || list[0].Host != "buildbox" {
		t.Fatalf("jobs = %+v, %v; want one agent job", list, err)
	}

	// A resend with other bytes: 4422, and the stored log is unchanged.
	bad := append([]jobs.Event(nil), all[5:]...)
	bad[0].Data = []byte("not what was sent before")
	b2.send(eventsMsg(bad))
	if code := b2.closed(); code != stream.CodeMismatch {
		t.Errorf("conflicting resend closed with %v, want %d", code, stream.CodeMismatch)
	}
	// Seq 0 or below is malformed (4400), not a resend that differs.
	for _, first := range []jobs.Seq{0, -1} {
		c := dialIngest(t, s.base())
		c.welcome(uid)
		c.send(eventsMsg(streamtest.Lines(first, 3)))
		if code := c.closed(); code != stream.CodeInvalid {
			t.Errorf("a batch from seq %d closed with %v, want %d", first, code, stream.CodeInvalid)
		}
	}
	evs, err := db.Events(streamtest.Ctx(t), id, 0, 100)
	if err != nil || len(evs) != 7 || string(evs[5].Data) != string(all[5].Data) {
		t.Errorf("stored events after the conflict: %d, %v; want the 7 first ones unchanged", len(evs), err)
	}
}

func TestIngestRefusesBadInput(t *testing.T) {
	db := streamtest.OpenDB(t)
	s := startIngest(t, db, "")
	tooMany := streamtest.Lines(1, ingest.MaxEvents+1)
	long := streamtest.Lines(1, 1)
	long[0].Data = []byte(strings.Repeat("x", jobs.MaxLineBytes+1))
	for _, tc := range []struct {
		name  string
		hello bool
		msg   any
		want  websocket.StatusCode
	}{
		{"not json", false, "{", stream.CodeInvalid},
		{"no hello first", false, eventsMsg(streamtest.Lines(1, 1)), stream.CodeInvalid},
		{"bad uid", false, map[string]any{"type": "hello", "job": map[string]any{"uid": "NOT A UID"}}, stream.CodeInvalid},
		{"gap", true, eventsMsg(streamtest.Lines(2, 1)), stream.CodeInvalid},
		{"unknown type", true, map[string]any{"type": "surprise"}, stream.CodeInvalid},
		{"empty batch", true, map[string]any{"type": "events", "events": []any{}}, stream.CodeInvalid},
		{"too many events", true, eventsMsg(tooMany), stream.CodeInvalid},
		{"line too long", true, eventsMsg(long), stream.CodeInvalid},
		{"exit not last", true, eventsMsg([]jobs.Event{streamtest.ExitEvent(1), streamtest.Lines(2, 1)[0]}), stream.CodeInvalid},
		{"seq 0", true, eventsMsg(streamtest.Lines(0, 2)), stream.CodeInvalid},
		{"negative seq", true, eventsMsg(streamtest.Lines(-1, 3)), stream.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := dialIngest(t, s.base())
			if tc.hello {
				a.welcome(jobs.NewUID())
			}
			a.send(tc.msg)
			if code := a.closed(); code != tc.want {
				t.Errorf("closed with %v, want %v", code, tc.want)
			}
		})
	}
	// A message over the read limit: 1009 (with a small limit, so that the
	// whole message is written before the server refuses it).
	small := startIngest(t, db, "", func(in *ingest.Server) { in.ReadLimit = 32 << 10 })
	a := dialIngest(t, small.base())
	a.welcome(jobs.NewUID())
	a.send(`{"type":"events","events":[],"pad":"` + strings.Repeat("x", 64<<10) + `"}`)
	if code := a.closed(); code != websocket.StatusMessageTooBig {
		t.Errorf("a message over the read limit: closed with %v, want 1009", code)
	}

	// The server goes on serving others.
	a = dialIngest(t, s.base())
	a.welcome(jobs.NewUID())
	if got := a.ack(streamtest.Lines(1, 3)); got != 3 {
		t.Errorf("after the bad ones, ack %d, want 3", got)
	}
}

func TestIngestLostJobRefused(t *testing.T) {
	db := streamtest.OpenDB(t)
	s := startIngest(t, db, "")
	uid := jobs.NewUID()
	a := dialIngest(t, s.base())
	id, _ := a.welcome(uid)
	a.ack(streamtest.Lines(1, 2))
	a.c.Close(websocket.StatusNormalClosure, "")
	if exp, err := db.ExpireAgents(streamtest.Ctx(t), time.Now().Add(time.Second)); err != nil || len(exp) != 1 || exp[0].ID != id {
		t.Fatalf("ExpireAgents = %v, %v", exp, err)
	}
	b := dialIngest(t, s.base())
	b.send(hello(uid))
	if code := b.closed(); code != stream.CodeGone {
		t.Errorf("hello for a lost job closed with %v, want %d", code, stream.CodeGone)
	}
}

// spoolJob makes a spool with a running job, as exec --server does.
func spoolJob(t testing.TB) (*sqlite.Spool, jobs.Job) {
	t.Helper()
	uid := jobs.NewUID()
	sp, err := sqlite.CreateSpool(streamtest.Ctx(t), filepath.Join(t.TempDir(), "spool"), uid, sqlite.Options{Host: "agenthost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	j := jobs.Job{UID: uid, Name: "spooled", Command: []string{"make"}, Cwd: "/src"}
	if err := sp.CreateJob(streamtest.Ctx(t), &j); err != nil {
		t.Fatal(err)
	}
	return sp, j
}

// sameLog checks that the server's copy of a job is the spool's, event
// for event.
func sameLog(t *testing.T, server *sqlite.DB, sid jobs.ID, spool *sqlite.DB, lid jobs.ID) {
	t.Helper()
	want, err := spool.Events(streamtest.Ctx(t), lid, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got, err := server.Events(streamtest.Ctx(t), sid, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("server holds %d events, the spool %d", len(got), len(want))
	}
	for i := range got {
		if g, w := string(got[i].AppendJSON(nil)), string(want[i].AppendJSON(nil)); g != w {
			t.Fatalf("event %d: server %.200s, spool %.200s", i, g, w)
		}
	}
}

func TestAgentDeliversAcrossServerRestart(t *testing.T) {
	serverDB := streamtest.OpenDB(t)
	s := startIngest(t, serverDB, "")
	addr := s.addr
	sp, j := spoolJob(t)
	var welcomes atomic.Int32
	ag := ingest.NewAgent(sp.DB, ingest.AgentOptions{URL: s.base(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Window: 2, OnWelcome: func(jobs.ID) { welcomes.Add(1) }})
	defer ag.Close()
	// Events exist before the agent starts; more come while it runs.
	streamtest.Commit(t, sp.DB, nil, j.ID, streamtest.Lines(1, 1000))
	ag.Start(j)
	next := jobs.Seq(1001)
	for ; next < 20001; next += 500 {
		evs := streamtest.Lines(next, 500)
		streamtest.Commit(t, sp.DB, nil, j.ID, evs)
		ag.Publish(j.ID, evs)
	}
	if err := ag.Wait(streamtest.Ctx(t), next-1); err != nil {
		t.Fatal(err)
	}

	// The server goes away; the job goes on; the server comes back.
	s.stop()
	for ; next < 40001; next += 500 {
		evs := streamtest.Lines(next, 500)
		streamtest.Commit(t, sp.DB, nil, j.ID, evs)
		ag.Publish(j.ID, evs)
	}
	end := []jobs.Event{streamtest.ExitEvent(next)}
	streamtest.Commit(t, sp.DB, nil, j.ID, end)
	ag.Publish(j.ID, end)
	s2 := startIngest(t, serverDB, addr)
	if err := ag.Wait(streamtest.Ctx(t), next); err != nil {
		t.Fatalf("Wait for the exit: %v", err)
	}
	if welcomes.Load() < 2 {
		t.Errorf("%d welcomes, want a reconnect", welcomes.Load())
	}
	acked, sid := ag.Acked()
	if acked != next || sid <= 0 {
		t.Errorf("Acked = %d, %d; want %d and the server's id", acked, sid, next)
	}
	sameLog(t, s2.db, sid, sp.DB, j.ID)
	sj, err := serverDB.Job(streamtest.Ctx(t), jobs.Ref{UID: j.UID})
	if err != nil || sj.Status != jobs.StatusSucceeded || sj.Host != "agenthost" {
		t.Errorf("server's job = %+v, %v; want succeeded, of agenthost", sj, err)
	}
}

func TestAgentCancelAndRefusal(t *testing.T) {
	serverDB := streamtest.OpenDB(t)
	s := startIngest(t, serverDB, "")
	sp, j := spoolJob(t)
	canceled := make(chan struct{}, 1)
	welcomed := make(chan jobs.ID, 1)
	ag := ingest.NewAgent(sp.DB, ingest.AgentOptions{URL: s.base(),
		OnWelcome: func(id jobs.ID) { welcomed <- id },
		OnCancel:  func() { canceled <- struct{}{} }})
	defer ag.Close()
	ag.Start(j)
	id := <-welcomed
	if err := s.in.Cancel(streamtest.Ctx(t), id); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	select {
	case <-canceled:
	case <-streamtest.Ctx(t).Done():
		t.Fatal("the cancel never reached the agent")
	}
	if err := s.in.Cancel(streamtest.Ctx(t), id+1); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("Cancel of a job without agent: %v, want ErrConflict", err)
	}

	// The server ends the job as lost behind the agent's back (as after
	// --lost-after): the agent's next events are refused with 4410, for
	// good.
	ag.Close()
	if _, err := serverDB.ExpireAgents(streamtest.Ctx(t), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	streamtest.Commit(t, sp.DB, nil, j.ID, streamtest.Lines(1, 3))
	ag2 := ingest.NewAgent(sp.DB, ingest.AgentOptions{URL: s.base()})
	defer ag2.Close()
	ag2.Start(j)
	err := ag2.Wait(streamtest.Ctx(t), 3)
	var ce *stream.CloseError
	if !errors.As(err, &ce) || ce.Code != stream.CodeGone || !errors.Is(err, jobs.ErrGone) {
		t.Errorf("Wait after the job was lost: %v, want a 4410 CloseError", err)
	}
}
