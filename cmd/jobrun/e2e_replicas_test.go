package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/postgres/pgtest"
)

// Several jobrun serve replicas on one PostgreSQL database (a throwaway
// cluster, pgtest), reached directly or through Debian's nginx as the load
// balancer, with the real binary.

// balancerConf is docs/deploy.md's nginx configuration for several
// replicas ("Several servers"), the listen and upstream addresses aside:
// round robin without affinity, WebSocket upgrades, no buffering, and a
// failed replica skipped for new connections.
var balancerConf = template.Must(template.New("balancer").Parse(nginxHead + `
	upstream jobrun {
		{{range .Upstreams}}server {{.}} max_fails=1 fail_timeout=5s;
		{{end}}
	}

	server {
		listen {{.Listen}};
		client_max_body_size 16m;
		location / {
			proxy_pass http://jobrun;
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_connect_timeout 2s;
			proxy_next_upstream error timeout http_502 http_503;
			proxy_read_timeout 1h;
			proxy_send_timeout 1h;
			proxy_buffering off;
			proxy_request_buffering off;
		}
	}
}
`))

// startBalancer runs nginx on listen in front of upstreams and returns its
// base URL and a function that stops it (closing every connection).
func startBalancer(t *testing.T, listen string, upstreams ...string) (string, func()) {
	t.Helper()
	bin := needNginx(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	err := balancerConf.Execute(&conf, map[string]any{"Dir": dir, "Listen": listen, "Upstreams": upstreams,
		"Root": os.Geteuid() == 0})
	if err != nil {
		t.Fatal(err)
	}
	stop := runNginx(t, bin, dir, conf.Bytes(), []string{listen})
	return "http://" + listen, stop
}

// replica is one jobrun serve of a PostgreSQL database.
type replica struct {
	p    *proc
	addr string
	base string
}

// startReplicas starts n jobrun serve replicas of the database at url.
func startReplicas(t *testing.T, url string, n int, args ...string) []*replica {
	t.Helper()
	var rs []*replica
	for range n {
		addr := freeAddr(t)
		rs = append(rs, &replica{p: startServeAt(t, url, addr, args...), addr: addr, base: "http://" + addr})
	}
	return rs
}

// holding returns the replica that logged an agent's connection for job
// 1, waiting for one to.
func holding(t *testing.T, rs []*replica) *replica {
	t.Helper()
	var r *replica
	waitFor(t, func() bool {
		for _, x := range rs {
			if strings.Contains(x.p.stderrString(), "ingest: agent connected") {
				r = x
				return true
			}
		}
		return false
	})
	return r
}

// followResuming reads job id's stream through base until the exit event,
// reconnecting with after= whenever the connection drops, as a page does.
// It returns every event received, so that the caller can check that each
// seq came exactly once. first, if not nil, is called before the first
// event is kept.
func followResuming(ctx context.Context, base string, id jobs.ID, first func()) ([]jobs.Event, error) {
	var evs []jobs.Event
	last := jobs.Seq(0)
	for ctx.Err() == nil {
		url := strings.Replace(base, "http://", "ws://", 1) + fmt.Sprintf("/api/jobs/%d/stream?after=%d", id, last)
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		c.SetReadLimit(256 << 20)
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				break
			}
			var batch []jobs.Event
			if err := json.Unmarshal(msg, &batch); err != nil {
				c.CloseNow()
				return evs, fmt.Errorf("bad message %q: %v", msg, err)
			}
			for _, e := range batch {
				if len(evs) == 0 && first != nil {
					first()
				}
				evs = append(evs, e)
				last = max(last, e.Seq)
				if e.Type == jobs.TypeExit {
					c.Close(websocket.StatusNormalClosure, "done")
					return evs, nil
				}
			}
		}
		c.CloseNow()
	}
	return evs, fmt.Errorf("stream of job %d through %s: no exit event (%d events): %w", id, base, len(evs), ctx.Err())
}

// following runs followResuming in a goroutine; the result comes on the
// channel, the error reported on t.
func following(ctx context.Context, t *testing.T, base string, id jobs.ID, first func()) <-chan []jobs.Event {
	ch := make(chan []jobs.Event, 1)
	go func() {
		evs, err := followResuming(ctx, base, id, first)
		if err != nil {
			t.Error(err)
		}
		ch <- evs
	}()
	return ch
}

// checkEachSeqOnce fails unless evs are seq 1..n, each once, ending with
// the exit, and the lines are want.
func checkEachSeqOnce(t *testing.T, evs []jobs.Event, want []byte) {
	t.Helper()
	checkContiguous(t, evs, 1)
	if len(evs) == 0 || evs[len(evs)-1].Type != jobs.TypeExit {
		t.Fatalf("stream ends without the exit event")
	}
	if got := rebuild(evs, jobs.StreamStdout); !bytes.Equal(got, want) {
		t.Errorf("streamed lines: %d bytes (%d lines), want %d bytes (%d lines)", len(got), bytes.Count(got, []byte("\n")),
			len(want), bytes.Count(want, []byte("\n")))
	}
}

// readDashboard reads the dashboard stream of base until done says so.
func readDashboard(ctx context.Context, t *testing.T, base string, done func(jobs.Job) bool) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+"/api/stream", nil)
	if err != nil {
		t.Errorf("dashboard stream: %v", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Errorf("dashboard stream of %s: %v", base, err)
			return
		}
		var m struct {
			Jobs []jobs.Job `json:"jobs"`
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Errorf("dashboard message %q: %v", msg, err)
			return
		}
		for _, j := range m.Jobs {
			if done(j) {
				return
			}
		}
	}
}

// An agent reports to replica A; a viewer on replica B receives every line
// live (the job waits after its first line until B's viewer has it), and
// B's dashboard shows the job, from running to its end.
func TestReplicasLiveAcrossReplicas(t *testing.T) {
	agentEnv(t)
	url := pgtest.DB(t)
	rs := startReplicas(t, url, 2)
	a, b := rs[0], rs[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// B's dashboard is open before the job starts, and must show it
	// running (before the job may go on) and then succeeded.
	connected, running, dash := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var connectedOnce, runningOnce sync.Once
	go func() {
		defer close(dash)
		readDashboard(ctx, t, b.base, func(j jobs.Job) bool {
			connectedOnce.Do(func() { close(connected) })
			if j.ID == 2 && j.Status == jobs.StatusRunning {
				runningOnce.Do(func() { close(running) })
			}
			return j.ID == 2 && j.Status == jobs.StatusSucceeded
		})
	}()
	gate := filepath.Join(t.TempDir(), "gate")
	// A first job, which the dashboard shows: then it is connected.
	if out, code := jobrunOutput(t, url, "exec", "-q", "--server", b.base, "--", "true"); code != 0 {
		t.Fatalf("first job: exit %d: %s", code, out)
	}
	<-connected
	ex := startJobrun(t, url, "exec", "-q", "--server", a.base, "--", "sh", "-c", gatedJob(gate, 5000))
	waitFor(t, func() bool { _, ok := getJob(t, b.base, "2"); return ok })
	evs, err := followResuming(ctx, b.base, 2, func() {
		<-running
		openGate(t, gate)
	})
	if err != nil {
		t.Fatal(err)
	}
	if code := ex.wait(t); code != 0 {
		t.Fatalf("exec exit %d: %s", code, ex.stderrString())
	}
	checkEachSeqOnce(t, evs, gatedOutput(5000))
	<-dash
	if strings.Count(b.p.stderrString(), "agent connected") != 1 {
		t.Errorf("the second job's agent connected to B too; the test wants it on A only")
	}
}

// The job's agent and a viewer go through nginx to three replicas; the
// replica holding the agent is killed with kill -9 mid-job. The agent
// reconnects through nginx to another replica and resends; the viewer
// resumes with after= and sees each seq once; every replica (the killed
// one restarted) holds the log byte for byte.
func TestReplicasKill9(t *testing.T) {
	agentEnv(t)
	url := pgtest.DB(t)
	rs := startReplicas(t, url, 3)
	lb, _ := startBalancer(t, freeAddr(t), rs[0].addr, rs[1].addr, rs[2].addr)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	ex := startJobrun(t, url, "exec", "-q", "--server", lb, "--", "sh", "-c",
		`i=0; while [ $i -lt 100 ]; do seq $((i*1000+1)) $((i*1000+1000)); i=$((i+1)); sleep 0.02; done`)
	waitFor(t, func() bool { _, ok := getJob(t, lb, "1"); return ok })
	viewed := following(ctx, t, lb, 1, nil)

	victim := holding(t, rs)
	waitFor(t, func() bool { j, ok := getJob(t, lb, "1"); return ok && j.LastSeq > 20000 })
	victim.p.cmd.Process.Signal(syscall.SIGKILL)
	victim.p.wait(t)

	if code := ex.wait(t); code != 0 {
		t.Fatalf("exec exit %d, want 0; stderr %q", code, ex.stderrString())
	}
	if strings.Contains(ex.stderrString(), "NOT DELIVERED") {
		t.Errorf("exec says it did not deliver: %q", ex.stderrString())
	}
	want := numbered(100000)
	checkEachSeqOnce(t, <-viewed, want)
	victim.p = startServeAt(t, url, victim.addr)
	for _, r := range rs {
		checkServerCopy(t, r.base, want)
	}
}

// The agent moves from replica A to replica B (its balancer goes away and
// comes back pointing at B) while a viewer stays on A: A, which published
// the job's first events itself, learns from the database that B goes on
// with it, and the viewer gets every line.
func TestReplicasAgentMovesViewerStays(t *testing.T) {
	agentEnv(t)
	url := pgtest.DB(t)
	rs := startReplicas(t, url, 2)
	a, b := rs[0], rs[1]
	listen := freeAddr(t)
	lb, stop := startBalancer(t, listen, a.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	gate := filepath.Join(t.TempDir(), "gate")
	ex := startJobrun(t, url, "exec", "-q", "--server", lb, "--", "sh", "-c", gatedJob(gate, 3000))
	waitFor(t, func() bool { _, ok := getJob(t, a.base, "1"); return ok })
	firstSeen := make(chan struct{})
	viewed := following(ctx, t, a.base, 1, func() { close(firstSeen) })
	<-firstSeen
	stop() // the agent's connection to A goes
	startBalancer(t, listen, b.addr)
	waitFor(t, func() bool { return strings.Contains(b.p.stderrString(), "ingest: agent connected") })
	openGate(t, gate)
	if code := ex.wait(t); code != 0 {
		t.Fatalf("exec exit %d: %s", code, ex.stderrString())
	}
	checkEachSeqOnce(t, <-viewed, gatedOutput(3000))
}

// A cancel asked of replica B reaches the agent connected to replica A;
// with no agent connected anywhere, B answers 409 as a single server
// does.
func TestReplicasCancel(t *testing.T) {
	agentEnv(t)
	url := pgtest.DB(t)
	rs := startReplicas(t, url, 2)
	a, b := rs[0], rs[1]

	ex := startJobrun(t, url, "exec", "-q", "--kill-after", "5s", "--server", a.base, "--", "sh", "-c",
		`echo started; while :; do echo tick; sleep 0.1; done`)
	waitFor(t, func() bool { j, ok := getJob(t, b.base, "1"); return ok && j.LastSeq >= 2 })
	if out, code := jobrunOutput(t, url, "cancel", "--server", b.base, "1"); code != 0 {
		t.Fatalf("cancel through B: exit %d: %s", code, out)
	}
	if code := ex.wait(t); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exec exit %d after cancel, want %d; stderr %q", code, 128+int(syscall.SIGTERM), ex.stderrString())
	}
	waitStatus(t, b.base, "1", jobs.StatusCanceled)

	// An agent killed with kill -9: its job runs on (until --lost-after),
	// but no replica holds its agent.
	ex = startJobrun(t, url, "exec", "-q", "--server", a.base, "--", "sh", "-c", `echo hi; sleep 60`)
	waitFor(t, func() bool { j, ok := getJob(t, b.base, "2"); return ok && j.LastSeq >= 1 })
	ex.cmd.Process.Signal(syscall.SIGKILL)
	ex.wait(t)
	waitFor(t, func() bool { return strings.Contains(a.p.stderrString(), "ingest: agent disconnected") })
	req, _ := http.NewRequest(http.MethodPost, b.base+"/api/jobs/2/cancel", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body.Error, "agent not connected") {
		t.Errorf("cancel without an agent: %d %q, want 409 saying the agent is not connected", resp.StatusCode, body.Error)
	}
}

// An agent vanishes (stopped) while three replicas run their reapers with
// a short --lost-after: the job gets exactly one lost exit event.
func TestReplicasOneLostEvent(t *testing.T) {
	agentEnv(t)
	t.Setenv("JOBRUN_HEARTBEAT", "100ms")
	url := pgtest.DB(t)
	rs := startReplicas(t, url, 3, "--agent-timeout", "300ms", "--lost-after", "600ms")

	ex := startJobrun(t, url, "exec", "-q", "--server", rs[0].base, "--", "sh", "-c", `seq 1 50; sleep 60`)
	waitFor(t, func() bool { j, ok := getJob(t, rs[1].base, "1"); return ok && j.LastSeq >= 50 })
	ex.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { ex.cmd.Process.Signal(syscall.SIGCONT) })
	j := waitStatus(t, rs[2].base, "1", jobs.StatusLost)
	if j.ExitCode != nil {
		t.Errorf("lost job = %+v, want exit code null", j)
	}
	// Let every reaper have its turns, then look again.
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range rs {
		evs, _ := readStream(ctx, t, r.base, 1, 0, 0)
		exits := 0
		for _, e := range evs {
			if e.Type == jobs.TypeExit {
				exits++
			}
		}
		if exits != 1 || jobs.Seq(len(evs)) != j.LastSeq || evs[len(evs)-1].Status != jobs.StatusLost {
			t.Errorf("%s: %d events with %d exit events, want %d ending with the one lost exit", r.base, len(evs), exits, j.LastSeq)
		}
		checkContiguous(t, evs, 1)
	}
	lost := 0
	for _, r := range rs {
		lost += strings.Count(r.p.stderrString(), "job ended as lost")
	}
	if lost != 1 {
		t.Errorf("%d replicas logged ending the job as lost, want 1", lost)
	}
}
