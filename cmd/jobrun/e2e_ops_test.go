package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
)

// jobrunRun runs a jobrun command to completion with the database db and
// returns its output and exit code.
func jobrunRun(t *testing.T, db string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "JOBRUN_DB="+db)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("jobrun %v: %v (stderr %q)", args, err, e.String())
	}
	return o.String(), e.String(), 0
}

// scrape fetches base's /metrics and returns its samples by name with
// labels ("jobrun_viewers{transport=\"ws\"}") and value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// TestServeHealthAndMetrics: /healthz answers while the database does;
// /metrics counts jobs by status, ingested events and bytes, commits, and
// viewers by transport while they are connected.
func TestServeHealthAndMetrics(t *testing.T) {
	agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	_, base := startServe(t, db)

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz: %d %s", resp.StatusCode, body)
	}

	_, _, code := jobrunRun(t, db, "exec", "-q", "--server", base, "--", "sh", "-c", "seq 1 1000")
	if code != 0 {
		t.Fatalf("exec --server exit %d", code)
	}
	ex := startJobrun(t, db, "exec", "-q", "--server", base, "--", "sh", "-c", "echo started; exec sleep 60")
	waitStatus(t, base, "2", jobs.StatusRunning)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+"/api/jobs/2/stream?after=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	var m map[string]float64
	waitFor(t, func() bool {
		m = scrape(t, base)
		return m[`jobrun_viewers{transport="ws"}`] == 1
	})
	for name, want := range map[string]float64{
		`jobrun_store_degraded`:                        0,
		`jobrun_store_write_errors_total`:              0,
		`jobrun_jobs{status="succeeded"}`:              1,
		`jobrun_jobs{status="running"}`:                1,
		`jobrun_jobs{status="failed"}`:                 0,
		`jobrun_viewers{transport="sse"}`:              0,
		`jobrun_viewers_resumed_total{transport="ws"}`: 1,
		`jobrun_viewers_dropped_total{transport="ws"}`: 0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// seq 1 1000 and "started\n" are 3901 bytes of output.
	if got := m["jobrun_ingest_bytes_total"]; got != 3901 {
		t.Errorf("jobrun_ingest_bytes_total = %v, want 3901", got)
	}
	if got := m["jobrun_ingest_events_total"]; got < 1002 {
		t.Errorf("jobrun_ingest_events_total = %v, want at least 1002 (1000 lines, an exit, a line)", got)
	}
	for _, name := range []string{"jobrun_ingest_lag_seconds_count", "jobrun_store_commit_seconds_count", "jobrun_store_bytes", "go_goroutines"} {
		if m[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, m[name])
		}
	}
	if got, ok := m["jobrun_store_wal_bytes"]; !ok || got < 0 {
		t.Errorf("jobrun_store_wal_bytes = %v (present %v), want a size", got, ok)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool { return scrape(t, base)[`jobrun_viewers{transport="ws"}`] == 0 })
	ex.cmd.Process.Signal(os.Interrupt)
	ex.wait(t)
}

// TestServeDegradedWhileWritesFail: while the database fails writes (it
// is full: the test knob JOBRUN_TEST_MAX_PAGES caps it) though it answers
// queries, /healthz answers 503 degraded with the reason and
// jobrun_store_degraded is 1; the agent keeps what it could not deliver.
func TestServeDegradedWhileWritesFail(t *testing.T) {
	agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	t.Setenv("JOBRUN_TEST_MAX_PAGES", fullDiskPages) // serve's database, not the agent's spool (below)
	_, base := startServe(t, db)
	health := func() (int, map[string]string) {
		t.Helper()
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, body := health(); code != 200 || body["status"] != "ok" {
		t.Fatalf("GET /healthz before: %d %v", code, body)
	}
	_, stderr, code := runJobrun(t, []string{"JOBRUN_TEST_MAX_PAGES="}, "exec", "-q", "--server", base, "--flush-timeout", "2s", "--", "sh", "-c", fullDiskJob)
	if code != 5 || !strings.Contains(stderr, "NOT DELIVERED") {
		t.Errorf("exec --server: exit %d, stderr %q; want 5 and NOT DELIVERED", code, stderr)
	}
	if code, body := health(); code != 503 || body["status"] != "degraded" || !strings.Contains(body["error"], "a write to the database failed") ||
		!strings.Contains(body["error"], "disk full") {
		t.Errorf("GET /healthz while writes fail: %d %v; want 503 degraded, saying why", code, body)
	}
	m := scrape(t, base)
	if m["jobrun_store_degraded"] != 1 || m["jobrun_store_write_errors_total"] < 1 {
		t.Errorf("jobrun_store_degraded %v, jobrun_store_write_errors_total %v; want 1 and at least 1",
			m["jobrun_store_degraded"], m["jobrun_store_write_errors_total"])
	}
	if list := fetchJSON[struct{ Jobs []jobs.Job }](t, base+"/api/jobs").Jobs; len(list) != 1 || list[0].Status != jobs.StatusRunning {
		t.Errorf("GET /api/jobs: %+v; want the agent's job, still running (its agent holds the rest)", list)
	}
}

// TestServeLogFormat: --log-format json writes one JSON object a line;
// --log-level warn leaves out the info lines; bad values are usage
// errors.
func TestServeLogFormat(t *testing.T) {
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	p := startJobrun(t, db, "serve", "--addr", addr, "--log-format", "json")
	var rec map[string]any
	waitFor(t, func() bool {
		line, _, _ := strings.Cut(p.stderrString(), "\n")
		return json.Unmarshal([]byte(line), &rec) == nil
	})
	if rec["msg"] != "jobrun serve: listening" || rec["level"] != "INFO" || rec["url"] != "http://"+addr+"/" {
		t.Errorf("first log record %v, want the listening line as JSON", rec)
	}
	p.cmd.Process.Signal(os.Interrupt)
	p.wait(t)

	q := startJobrun(t, db, "serve", "--addr", addr, "--log-level", "warn")
	waitFor(t, func() bool {
		_, ok := getJob(t, "http://"+addr, "1")
		return ok || probeRole(context.Background(), addr) == "serve"
	})
	q.cmd.Process.Signal(os.Interrupt)
	q.wait(t)
	if s := q.stderrString(); strings.Contains(s, "level=INFO") {
		t.Errorf("--log-level warn logged info lines: %q", s)
	}

	for _, args := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}} {
		_, stderr, code := jobrunRun(t, db, append([]string{"serve", "--addr", freeAddr(t)}, args...)...)
		if code != 2 || !strings.Contains(stderr, args[0]) {
			t.Errorf("serve %v: exit %d, %q; want 2 naming the flag", args, code, stderr)
		}
	}
	_, stderr, code := jobrunRun(t, db, "exec", "--log-level", "loud", "--", "true")
	if code != exitFailure || !strings.Contains(stderr, "--log-level") {
		t.Errorf("exec --log-level loud: exit %d, %q; want 125", code, stderr)
	}
}

var removedRE = regexp.MustCompile(`removed (\d+) jobs \(([\d, ]+)\)`)

// TestRmAndPruneLocal: rm removes finished jobs from the database and
// refuses a running one; prune removes by age and keeps the newest.
func TestRmAndPruneLocal(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	for i := 0; i < 4; i++ {
		if _, _, code := jobrunRun(t, db, "exec", "-q", "--db", db, "--linger", "0", "--", "seq", "1", "20000"); code != 0 {
			t.Fatalf("exec exit %d", code)
		}
	}
	running := startJobrun(t, db, "exec", "-q", "--db", db, "--addr", "127.0.0.1:0", "--linger", "0", "--", "sleep", "60")
	running.baseURL(t)

	_, stderr, code := jobrunRun(t, db, "rm", "1")
	if code != 0 || !strings.Contains(stderr, "removed job 1 (seq 1 20000)") {
		t.Errorf("rm 1: exit %d, %q", code, stderr)
	}
	_, stderr, code = jobrunRun(t, db, "rm", "5")
	if code != 1 || !strings.Contains(stderr, "still running") {
		t.Errorf("rm of a running job: exit %d, %q; want 1 saying it is still running", code, stderr)
	}
	_, stderr, code = jobrunRun(t, db, "rm", "1")
	if code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("rm of a removed job: exit %d, %q; want 1, not found", code, stderr)
	}
	if _, stderr, code = jobrunRun(t, db, "rm"); code != 2 {
		t.Errorf("rm without a job: exit %d, %q; want 2", code, stderr)
	}

	// The jobs finished at least a moment ago: wait out one second so
	// that --older-than 1s selects them all.
	time.Sleep(1100 * time.Millisecond)
	_, stderr, code = jobrunRun(t, db, "prune", "--older-than", "1s", "--keep", "2")
	if m := removedRE.FindStringSubmatch(stderr); code != 0 || m == nil || m[2] != "2, 3" {
		t.Errorf("prune --keep 2: exit %d, %q; want jobs 2 and 3 removed (4 is kept, 5 runs)", code, stderr)
	}
	if !strings.Contains(stderr, "given back to the file system") {
		t.Errorf("prune did not say it gave space back: %q", stderr)
	}
	out, _, _ := jobrunRun(t, db, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	json.Unmarshal([]byte(out), &list)
	if len(list.Jobs) != 2 || list.Jobs[0].ID != 5 || list.Jobs[1].ID != 4 {
		t.Errorf("jobs left: %s, want 5 (running) and 4", out)
	}
	_, stderr, code = jobrunRun(t, db, "prune", "--older-than", "1s", "--vacuum")
	if code != 1 || !strings.Contains(stderr, "running") {
		t.Errorf("prune --vacuum while a job runs: exit %d, %q; want 1", code, stderr)
	}
	if _, stderr, code = jobrunRun(t, db, "prune", "--older-than", "soon"); code != 2 {
		t.Errorf("prune --older-than soon: exit %d, %q; want 2", code, stderr)
	}
	running.cmd.Process.Signal(os.Interrupt)
	running.wait(t)
	_, stderr, code = jobrunRun(t, db, "prune", "--older-than", "1s", "--vacuum")
	if code != 0 {
		t.Errorf("prune --vacuum: exit %d, %q", code, stderr)
	}
}

// TestRmAndPruneRemote: rm and prune --server work through jobrun serve's
// API; serve --retain prunes by itself.
func TestRmAndPruneRemote(t *testing.T) {
	agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	addr := freeAddr(t)
	base := "http://" + addr
	srv := startServeAt(t, db, addr)
	for i := 0; i < 3; i++ {
		if _, _, code := jobrunRun(t, db, "exec", "-q", "--server", base, "--", "seq", "1", "5000"); code != 0 {
			t.Fatalf("exec --server exit %d", code)
		}
	}
	ex := startJobrun(t, db, "exec", "-q", "--server", base, "--", "sh", "-c", "echo started; exec sleep 60")
	waitStatus(t, base, "4", jobs.StatusRunning)

	_, stderr, code := jobrunRun(t, db, "rm", "--server", base, "1")
	if code != 0 || !strings.Contains(stderr, "removed job 1") {
		t.Errorf("rm --server: exit %d, %q", code, stderr)
	}
	if _, ok := getJob(t, base, "1"); ok {
		t.Error("job 1 still served after rm --server")
	}
	_, stderr, code = jobrunRun(t, db, "rm", "--server", base, "4")
	if code != 1 || !strings.Contains(stderr, "still running") {
		t.Errorf("rm --server of a running job: exit %d, %q; want 1", code, stderr)
	}
	time.Sleep(1100 * time.Millisecond) // let the jobs age past --older-than 1s
	_, stderr, code = jobrunRun(t, db, "prune", "--server", base, "--older-than", "1s", "--keep", "2")
	if m := removedRE.FindStringSubmatch(stderr); code != 0 || m == nil || m[2] != "2" {
		t.Errorf("prune --server: exit %d, %q; want job 2 removed", code, stderr)
	}
	srv.cmd.Process.Signal(os.Interrupt)
	srv.wait(t)

	// serve --retain removes job 3 (finished) but not job 4 (running).
	startServeAt(t, db, addr, "--retain", "1s")
	waitFor(t, func() bool { _, ok := getJob(t, base, "3"); return !ok })
	if _, ok := getJob(t, base, "4"); !ok {
		t.Error("serve --retain removed the running job")
	}
	ex.cmd.Process.Signal(os.Interrupt)
	ex.wait(t)
}

func TestParseAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"12h", 12 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"1s", time.Second, true},
		{"500ms", 0, false},
		{"0d", 0, false},
		{"-3d", 0, false},
		{"soon", 0, false},
		{"d", 0, false},
		{"", 0, false},
	} {
		got, err := parseAge(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestServeOpsWithToken: with a token, /healthz stays open (for load
// balancers), /metrics needs a credential (the read token will do), and
// removing needs the full token.
func TestServeOpsWithToken(t *testing.T) {
	agentEnv(t)
	db := filepath.Join(t.TempDir(), "server.db")
	_, base := startSecureServe(t, db, "--token", e2eToken, "--read-token", e2eReadToken)
	if _, _, code := runJobrun(t, []string{"JOBRUN_TOKEN=" + e2eToken}, "exec", "-q", "--server", base, "--", "true"); code != 0 {
		t.Fatalf("exec --server exit %d", code)
	}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", e2eReadToken, 200},
	} {
		if code, body := getWith(t, http.DefaultClient, base+tc.path, tc.token); code != tc.want {
			t.Errorf("GET %s with token %q: %d %.200s, want %d", tc.path, tc.token, code, body, tc.want)
		}
	}
	_, stderr, code := runJobrun(t, []string{"JOBRUN_TOKEN=" + e2eReadToken}, "rm", "--server", base, "1")
	if code == 0 || !strings.Contains(stderr, "full token") {
		t.Errorf("rm with the read token: exit %d, %q; want a refusal naming the full token", code, stderr)
	}
	_, stderr, code = runJobrun(t, []string{"JOBRUN_TOKEN=" + e2eToken}, "rm", "--server", base, "1")
	if code != 0 || !strings.Contains(stderr, "removed job 1") {
		t.Errorf("rm with the full token: exit %d, %q", code, stderr)
	}
}
