package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
)

// nginxPath is Debian's nginx, which scripts/test.sh installs.
const nginxPath = "/usr/sbin/nginx"

// needNginx returns nginx's path, or skips the test without it; under
// CI=true a missing nginx fails the test instead.
func needNginx(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(nginxPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx is missing (%v): scripts/test.sh installs it (apt-get install -y nginx)", err)
		}
		t.Skipf("nginx is missing (%v); apt-get install -y nginx", err)
	}
	return nginxPath
}

// nginxHead is the start of every nginx configuration the tests run: a
// child process that keeps everything in the test's folder {{.Dir}}, and
// the map that sends Connection: upgrade only for upgrade requests. The
// http block stays open for the servers.
const nginxHead = `
# Written by cmd/jobrun's tests.
worker_processes 1;
pid {{.Dir}}/nginx.pid;
lock_file {{.Dir}}/nginx.lock;
error_log {{.Dir}}/error.log info;
{{if .Root}}user root;{{end}}
events { worker_connections 256; }

http {
	access_log {{.Dir}}/access.log;
	client_body_temp_path {{.Dir}}/tmp/body;
	proxy_temp_path {{.Dir}}/tmp/proxy;
	fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
	uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
	scgi_temp_path {{.Dir}}/tmp/scgi;

	map $http_upgrade $connection_upgrade {
		default upgrade;
		''      close;
	}
`

// nginxConf is the configuration the tests run: the first server block is
// the one docs/deploy.md recommends (the upstream and listen addresses
// aside); the others are common mistakes: a plain proxy_pass, which does
// not pass WebSocket upgrades (HTTP/1.0 to the upstream, no Upgrade
// header); buffering that ignores jobrun's X-Accel-Buffering: no, with
// compression of event streams (which holds them back); and a
// read timeout shorter than the streams' heartbeat.
var nginxConf = template.Must(template.New("nginx").Parse(nginxHead + `

	server {
		listen {{.Good}};
		client_max_body_size 16m;
		location / {
			proxy_pass http://{{.Upstream}};
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_read_timeout 1h;
			proxy_send_timeout 1h;
			proxy_buffering off;
			proxy_request_buffering off;
		}
	}

	server {
		listen {{.NoUpgrade}};
		location / {
			proxy_pass http://{{.Upstream}};
			proxy_set_header Host $http_host;
		}
	}

	server {
		listen {{.Buffering}};
		location / {
			proxy_pass http://{{.Upstream}};
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Host $http_host;
			proxy_buffering on;
			proxy_ignore_headers X-Accel-Buffering;
			gzip on;
			gzip_types text/event-stream application/json;
			gzip_min_length 0;
		}
	}

	server {
		listen {{.ShortIdle}};
		location / {
			proxy_pass http://{{.Upstream}};
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Host $http_host;
			proxy_buffering off;
			proxy_read_timeout {{.ShortTimeout}};
			proxy_send_timeout {{.ShortTimeout}};
		}
	}
}
`))

// nginxBases are the base URLs of nginxConf's server blocks.
type nginxBases struct {
	good      string // docs/deploy.md's configuration
	noUpgrade string // upgrades do not pass
	buffering string // event streams are buffered
	shortIdle string // a read timeout of nginxShortTimeout
}

// nginxShortTimeout is the read timeout of the shortIdle server block.
const nginxShortTimeout = time.Second

// startNginx runs nginx in front of upstream (host:port) as a child
// process with a configuration of its own in a temp folder, and returns the
// base URLs of its server blocks.
func startNginx(t *testing.T, upstream string) nginxBases {
	t.Helper()
	bin := needNginx(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)}
	var conf bytes.Buffer
	err := nginxConf.Execute(&conf, map[string]any{"Dir": dir, "Good": addrs[0], "NoUpgrade": addrs[1],
		"Buffering": addrs[2], "ShortIdle": addrs[3], "ShortTimeout": fmt.Sprintf("%dms", nginxShortTimeout.Milliseconds()),
		"Upstream": upstream, "Root": os.Geteuid() == 0})
	if err != nil {
		t.Fatal(err)
	}
	runNginx(t, bin, dir, conf.Bytes(), addrs)
	return nginxBases{good: "http://" + addrs[0], noUpgrade: "http://" + addrs[1],
		buffering: "http://" + addrs[2], shortIdle: "http://" + addrs[3]}
}

// runNginx runs nginx with configuration conf in dir until the test ends
// or stop is called, and waits until it answers at each of addrs.
func runNginx(t *testing.T, bin, dir string, conf []byte, addrs []string) (stop func()) {
	t.Helper()
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath, "-g", "daemon off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers go with it
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // fast: master and workers close every connection
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
			if t.Failed() {
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Logf("nginx error.log:\n%s", log)
			}
		})
	}
	t.Cleanup(stop)
	for _, addr := range addrs {
		base := "http://" + addr
		waitFor(t, func() bool {
			select {
			case err := <-exited:
				t.Fatalf("nginx exited: %v: %s", err, out.String())
			default:
			}
			resp, err := http.Get(base + "/api/info")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	return stop
}

// gatedJob is the shell script of a job that prints "first", waits until
// the file gate exists, then prints 2..n.
func gatedJob(gate string, n int) string {
	return fmt.Sprintf(`echo first; while [ ! -e %q ]; do sleep 0.05; done; seq 2 %d`, gate, n)
}

// gatedOutput is what gatedJob prints.
func gatedOutput(n int) []byte {
	return append([]byte("first\n"), bytes.TrimPrefix(numbered(n), []byte("1\n"))...)
}

// openGate creates the gate file.
func openGate(t *testing.T, gate string) {
	t.Helper()
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// readSSE reads a job's event stream from base until it ends, calling
// first (if not nil) after the first event. It returns the events.
func readSSE(t *testing.T, ctx context.Context, base string, id jobs.ID, first func()) []jobs.Event {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/jobs/%d/events", base, id), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("event stream: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var evs []jobs.Event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "{}" { // heartbeats carry {}
			continue
		}
		var e jobs.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatalf("event stream data %q: %v", data, err)
		}
		evs = append(evs, e)
		if len(evs) == 1 && first != nil {
			first()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("event stream: %v", err)
	}
	return evs
}

// longPoll reads a job's events by long polling from base until the
// server answers 204 (the job is over and everything was read).
func longPoll(ctx context.Context, base string, id jobs.ID) ([]jobs.Event, error) {
	var all []jobs.Event
	for {
		after := jobs.Seq(0)
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("%s/api/jobs/%d/events?after=%d&wait=10s", base, id, after), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return all, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return all, err
		}
		switch resp.StatusCode {
		case http.StatusNoContent:
			return all, nil
		case http.StatusOK:
			var evs []jobs.Event
			if err := json.Unmarshal(body, &evs); err != nil {
				return all, fmt.Errorf("long poll answer %.200q: %v", body, err)
			}
			all = append(all, evs...)
		default:
			return all, fmt.Errorf("long poll: %d %s", resp.StatusCode, body)
		}
	}
}

// logOf rebuilds a job's output from its events.
func logOf(evs []jobs.Event) []byte {
	var b []byte
	for _, e := range evs {
		if e.Type == jobs.TypeLine {
			b = append(append(b, e.Data...), e.EOL...)
		}
	}
	return b
}

// TestNginxProxy: with the configuration of docs/deploy.md, the dashboard,
// a live job stream over WebSocket, the dashboard stream, an unbuffered
// event stream and ingest (exec --server) all work through nginx.
func TestNginxProxy(t *testing.T) {
	agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	startServeAt(t, db, addr)
	good := startNginx(t, addr).good
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The dashboard page.
	resp, err := http.Get(good + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(page, []byte("<html")) {
		t.Fatalf("dashboard through nginx: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Ingest through nginx: a whole job, byte for byte.
	if _, stderr, code := jobrunRun(t, db, "exec", "-q", "--server", good, "--", "seq", "1", "20000"); code != 0 || strings.Contains(stderr, "NOT DELIVERED") {
		t.Fatalf("exec --server through nginx: exit %d, %q", code, stderr)
	}
	checkServerCopy(t, "http://"+addr, numbered(20000))

	// The dashboard stream through nginx: a snapshot with that job.
	dash, _, err := websocket.Dial(ctx, strings.Replace(good, "http://", "ws://", 1)+"/api/stream", nil)
	if err != nil {
		t.Fatalf("dashboard stream through nginx: %v", err)
	}
	_, msg, err := dash.Read(ctx)
	dash.CloseNow()
	if err != nil || !bytes.Contains(msg, []byte(`"type":"snapshot"`)) || !bytes.Contains(msg, []byte(`"id":1`)) {
		t.Fatalf("dashboard stream's first message %.200q, %v; want a snapshot with job 1", msg, err)
	}

	// A live job, watched over WebSocket and Server-Sent Events through
	// nginx: the first line reaches both while the job waits (nothing
	// is buffered), then the whole log.
	gate := filepath.Join(t.TempDir(), "gate")
	ex := startJobrun(t, db, "exec", "-q", "--server", good, "--", "sh", "-c", gatedJob(gate, 5000))
	waitFor(t, func() bool { j, ok := getJob(t, good, "2"); return ok && j.LastSeq >= 1 })
	ws, _, err := websocket.Dial(ctx, strings.Replace(good, "http://", "ws://", 1)+"/api/jobs/2/stream", nil)
	if err != nil {
		t.Fatalf("job stream through nginx: %v", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20)
	_, first, err := ws.Read(ctx)
	if err != nil || !bytes.Contains(first, []byte(`"text":"first"`)) {
		t.Fatalf("job stream's first message %.200q, %v; want the first line while the job waits", first, err)
	}
	sse := readSSE(t, ctx, good, 2, func() { openGate(t, gate) })
	if code := ex.wait(t); code != 0 {
		t.Fatalf("exec exit %d: %q", code, ex.stderrString())
	}
	checkContiguous(t, sse, 1)
	if got, want := logOf(sse), gatedOutput(5000); !bytes.Equal(got, want) || sse[len(sse)-1].Type != jobs.TypeExit {
		t.Errorf("event stream through nginx: %d bytes, want %d, ending with the exit", len(got), len(want))
	}
	// The WebSocket goes on to the exit and closes with 1000.
	evs, code := readStreamConn(ctx, t, ws)
	if code != websocket.StatusNormalClosure {
		t.Errorf("job stream through nginx closed with %v, want 1000", code)
	}
	var firstEvs []jobs.Event
	json.Unmarshal(first, &firstEvs)
	evs = append(firstEvs, evs...)
	checkContiguous(t, evs, 1)
	if got := logOf(evs); !bytes.Equal(got, gatedOutput(5000)) {
		t.Errorf("job stream through nginx: %d bytes, want %d", len(got), len(gatedOutput(5000)))
	}
}

// readStreamConn reads stream messages from c until it closes, returning
// the events and the close status.
func readStreamConn(ctx context.Context, t *testing.T, c *websocket.Conn) ([]jobs.Event, websocket.StatusCode) {
	t.Helper()
	var all []jobs.Event
	for {
		_, p, err := c.Read(ctx)
		if err != nil {
			return all, websocket.CloseStatus(err)
		}
		var evs []jobs.Event
		if err := json.Unmarshal(p, &evs); err != nil {
			t.Fatalf("stream message %.200q: %v", p, err)
		}
		all = append(all, evs...)
	}
}

// TestNginxWithoutUpgrades: behind a proxy that does not pass WebSocket
// upgrades, the stream endpoints refuse the plain request, and viewers get
// the whole log of a live job through Server-Sent Events and long polling.
func TestNginxWithoutUpgrades(t *testing.T) {
	agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	startServeAt(t, db, addr)
	nx := startNginx(t, addr)
	good, noUpgrade := nx.good, nx.noUpgrade
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	gate := filepath.Join(t.TempDir(), "gate")
	ex := startJobrun(t, db, "exec", "-q", "--server", good, "--", "sh", "-c", gatedJob(gate, 5000))
	waitFor(t, func() bool { j, ok := getJob(t, noUpgrade, "1"); return ok && j.LastSeq >= 1 })

	_, resp, err := websocket.Dial(ctx, strings.Replace(noUpgrade, "http://", "ws://", 1)+"/api/jobs/1/stream", nil)
	if err == nil {
		t.Fatal("a WebSocket opened through the proxy that drops upgrades")
	}
	if resp == nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("WebSocket through the proxy that drops upgrades: %v, want the server's 426", err)
	}

	// Long polling from the start while the job waits, then SSE.
	type polling struct {
		evs []jobs.Event
		err error
	}
	polled := make(chan polling, 1)
	go func() {
		evs, err := longPoll(ctx, noUpgrade, 1)
		polled <- polling{evs, err}
	}()
	sse := readSSE(t, ctx, noUpgrade, 1, func() { openGate(t, gate) })
	if code := ex.wait(t); code != 0 {
		t.Fatalf("exec exit %d: %q", code, ex.stderrString())
	}
	want := gatedOutput(5000)
	checkContiguous(t, sse, 1)
	if got := logOf(sse); !bytes.Equal(got, want) {
		t.Errorf("event stream without upgrades: %d bytes, want %d", len(got), len(want))
	}
	p := <-polled
	if p.err != nil {
		t.Fatal(p.err)
	}
	lp := p.evs
	checkContiguous(t, lp, 1)
	if got := logOf(lp); !bytes.Equal(got, want) || lp[len(lp)-1].Type != jobs.TypeExit {
		t.Errorf("long polling without upgrades: %d bytes, want %d, ending with the exit", len(got), len(want))
	}
	if len(lp) != len(sse) {
		t.Errorf("long polling got %d events, the event stream %d", len(lp), len(sse))
	}
}
