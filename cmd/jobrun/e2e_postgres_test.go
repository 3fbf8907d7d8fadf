package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/postgres/pgtest"
)

// The operators' commands with --db postgres://: ls, logs (-f woken by
// LISTEN), rm, prune against the database that replicas serve; exec
// refuses it without a server; the health check.
func TestPostgresOperatorCommands(t *testing.T) {
	agentEnv(t)
	t.Setenv("JOBRUN_SERVER", "")
	db := pgtest.DB(t)
	a := startReplicas(t, db, 1)[0]
	if out, code := jobrunOutput(t, db, "exec", "-q", "--server", a.base, "--", "sh", "-c", "seq 1 100; exit 3"); code != 3 {
		t.Fatalf("first job: exit %d: %s", code, out)
	}

	out, code := jobrunOutput(t, db, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	if err := json.Unmarshal(out, &list); err != nil || code != 0 || len(list.Jobs) != 1 || list.Jobs[0].Status != jobs.StatusFailed {
		t.Fatalf("ls --db postgres:// --json: exit %d, %v: %s", code, err, out)
	}
	if out, code := jobrunOutput(t, db, "logs", "1"); code != 0 || !bytes.Equal(out, numbered(100)) {
		t.Errorf("logs --db postgres:// 1: exit %d, %d bytes, want the job's %d", code, len(out), len(numbered(100)))
	}

	// logs -f follows a running job and exits with its status.
	gate := filepath.Join(t.TempDir(), "gate")
	ex := startJobrun(t, db, "exec", "-q", "--server", a.base, "--", "sh", "-c", gatedJob(gate, 2000)+"; exit 4")
	waitFor(t, func() bool { j, ok := getJob(t, a.base, "2"); return ok && j.LastSeq >= 1 })
	follow := exec.Command(binary, "logs", "-f", "2")
	follow.Env = append(follow.Environ(), "JOBRUN_DB="+db)
	var followOut syncBuffer
	follow.Stdout = &followOut
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follow.Process.Kill(); follow.Wait() })
	waitFor(t, func() bool { return strings.HasPrefix(followOut.String(), "first\n") })
	openGate(t, gate)
	ex.wait(t)
	err := follow.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
		t.Errorf("logs -f: %v, want exit 4", err)
	}
	if got := followOut.String(); got != string(gatedOutput(2000)) {
		t.Errorf("logs -f printed %d bytes, want %d", len(got), len(gatedOutput(2000)))
	}

	// rm and prune; the replica sees the jobs go.
	if _, code := jobrunOutput(t, db, "rm", "1"); code != 0 {
		t.Errorf("rm --db postgres:// 1: exit %d", code)
	}
	if _, ok := getJob(t, a.base, "1"); ok {
		t.Errorf("the replica still shows the removed job")
	}
	if _, code := jobrunOutput(t, db, "rm", "1"); code != 1 {
		t.Errorf("rm of a removed job: exit %d, want 1", code)
	}
	time.Sleep(1100 * time.Millisecond) // job 2 ended over a second ago
	if _, code := jobrunOutput(t, db, "prune", "--older-than", "1s"); code != 0 {
		t.Errorf("prune --db postgres://: exit %d", code)
	}
	if _, ok := getJob(t, a.base, "2"); ok {
		t.Errorf("the replica still shows the pruned job")
	}

	// exec never writes to PostgreSQL itself.
	_, stderr, code := runJobrun(t, []string{"JOBRUN_DB=" + db}, "exec", "--", "true")
	if code != exitFailure || !strings.Contains(stderr, "--server") || strings.Contains(stderr, "postgres://postgres@") {
		t.Errorf("exec with a PostgreSQL database and no server: exit %d %q, want 125 pointing to --server", code, stderr)
	}
	// The other commands never make a schema.
	empty := pgtest.DB(t)
	if _, stderr, code := runJobrun(t, []string{"JOBRUN_DB=" + empty}, "ls"); code != 1 || !strings.Contains(stderr, "jobrun serve creates it") {
		t.Errorf("ls of a database without jobrun's schema: exit %d %q, want 1", code, stderr)
	}

	resp, err := http.Get(a.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz: %d, want 200", resp.StatusCode)
	}
}

// jobrun migrate copies a SQLite database's jobs, with their ids and
// output, and copies only what is new when run again.
func TestMigrateFromSQLite(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "jobrun.db")
	run := func(script string) {
		t.Helper()
		_, stderr, _ := runJobrun(t, []string{"JOBRUN_DB=" + src, "JOBRUN_SERVER="}, "exec", "-q", "--standalone", "--addr", "127.0.0.1:0", "--", "sh", "-c", script)
		if !strings.Contains(stderr, "jobrun: job") {
			t.Fatalf("exec: %q", stderr)
		}
	}
	run("seq 1 30000; echo oops >&2; exit 2")
	run("echo '::progress 40 halfway'; echo done")
	dst := pgtest.DB(t)

	_, stderr, code := runJobrun(t, nil, "migrate", "--from", src, "--to", dst)
	if code != 0 || !strings.Contains(stderr, "2 copied") {
		t.Fatalf("migrate: exit %d %q", code, stderr)
	}
	a := startReplicas(t, dst, 1)[0]
	for _, id := range []string{"1", "2"} {
		want, _ := jobrunOutput(t, src, "logs", "--json", id)
		got, code := jobrunOutput(t, dst, "logs", "--json", id)
		if code != 0 || !bytes.Equal(got, want) {
			t.Errorf("job %s: %d bytes of events in PostgreSQL (exit %d), want the %d of SQLite", id, len(got), code, len(want))
		}
	}
	j, _ := getJob(t, a.base, "1")
	if j.Status != jobs.StatusFailed || j.ExitCode == nil || *j.ExitCode != 2 {
		t.Errorf("migrated job 1 = %+v, want failed with exit code 2", j)
	}
	if j, _ := getJob(t, a.base, "2"); j.Progress == nil || j.Progress.Percent != 40 {
		t.Errorf("migrated job 2 progress = %+v, want 40%%", j.Progress)
	}

	// Again: nothing to copy; then one new job.
	if _, stderr, code := runJobrun(t, nil, "migrate", "--from", src, "--to", dst); code != 0 || !strings.Contains(stderr, "0 copied") ||
		!strings.Contains(stderr, "2 already there") {
		t.Errorf("second migrate: exit %d %q", code, stderr)
	}
	run("echo three")
	if _, stderr, code := runJobrun(t, nil, "migrate", "--from", src, "--to", dst); code != 0 || !strings.Contains(stderr, "1 copied") {
		t.Errorf("third migrate: exit %d %q", code, stderr)
	}
	if got, _ := jobrunOutput(t, dst, "logs", "3"); string(got) != "three\n" {
		t.Errorf("job 3 after the third migrate: %q", got)
	}
	// A new job on PostgreSQL does not take a migrated id.
	if out, code := jobrunOutput(t, dst, "exec", "-q", "--server", a.base, "--", "true"); code != 0 {
		t.Fatalf("exec after migrate: exit %d %s", code, out)
	}
	if _, ok := getJob(t, a.base, "4"); !ok {
		t.Errorf("the first job reported after migrating is not job 4")
	}
}

// Share links made by one replica are accepted by the others: the secret
// is in the database. jobrun secret rotate ends them on every replica at
// once.
func TestReplicasShareSecret(t *testing.T) {
	agentEnv(t)
	const token = "replica-token-0123456789"
	t.Setenv("JOBRUN_TOKEN", token)
	db := pgtest.DB(t)
	rs := startReplicas(t, db, 2, "--token", token)
	a, b := rs[0], rs[1]
	if out, code := jobrunOutput(t, db, "exec", "-q", "--server", a.base, "--", "echo", "shared"); code != 0 {
		t.Fatalf("exec: exit %d %s", code, out)
	}
	share := func(r *replica) string {
		t.Helper()
		link, stderr, code := runJobrun(t, []string{"JOBRUN_TOKEN=" + token}, "share", "--server", r.base, "1")
		u, err := url.Parse(strings.TrimSpace(link))
		if code != 0 || err != nil || u.Query().Get("token") == "" {
			t.Fatalf("share --server %s: exit %d %q %q", r.base, code, link, stderr)
		}
		return u.Query().Get("token")
	}
	tok := share(a)
	for _, r := range rs {
		if st, body := getWith(t, http.DefaultClient, r.base+"/api/jobs/1", tok); st != 200 {
			t.Errorf("%s with a link made by A: %d %s", r.base, st, body)
		}
	}
	if _, stderr, code := runJobrun(t, []string{"JOBRUN_DB=" + db}, "secret", "rotate"); code != 0 {
		t.Fatalf("secret rotate: exit %d %q", code, stderr)
	}
	for _, r := range rs {
		waitFor(t, func() bool { st, _ := getWith(t, http.DefaultClient, r.base+"/api/jobs/1", tok); return st == 401 })
	}
	tok = share(b)
	if st, body := getWith(t, http.DefaultClient, a.base+"/api/jobs/1", tok); st != 200 {
		t.Errorf("A with a link made by B after the rotation: %d %s", st, body)
	}
}

// PostgreSQL goes down mid-job and comes back: meanwhile the replica
// answers 503 and the agent keeps spooling; afterwards everything resumes
// by itself and the log is whole.
func TestReplicaPostgresRestart(t *testing.T) {
	agentEnv(t)
	c, err := pgtest.Start()
	if err != nil {
		pgtest.Need(t) // skips or fails as for the shared cluster
		t.Fatal(err)
	}
	defer c.Stop()
	db, err := c.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	a := startReplicas(t, db, 1)[0]
	ex := startJobrun(t, db, "exec", "-q", "--server", a.base, "--", "sh", "-c",
		`i=0; while [ $i -lt 60 ]; do seq $((i*500+1)) $((i*500+500)); i=$((i+1)); sleep 0.05; done`)
	waitFor(t, func() bool { j, ok := getJob(t, a.base, "1"); return ok && j.LastSeq > 2000 })
	// The test cluster commits without waiting for the disk: flush what is
	// committed, so that the crash loses none of it.
	if out, err := exec.Command("psql", db, "-qc", "CHECKPOINT").CombinedOutput(); err != nil {
		t.Fatalf("psql CHECKPOINT: %v %s", err, out)
	}
	if err := c.Halt(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(a.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Status, Error string }
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(health.Error, "127.0.0.1") {
		t.Errorf("/healthz while PostgreSQL is down: %d %+v, want 503 without the database's address", resp.StatusCode, health)
	}
	if st, _ := getWith(t, http.DefaultClient, a.base+"/api/jobs/1", ""); st != http.StatusServiceUnavailable {
		t.Errorf("GET /api/jobs/1 while PostgreSQL is down: %d, want 503", st)
	}
	time.Sleep(time.Second) // the job goes on, into the agent's spool
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if code := ex.wait(t); code != 0 || strings.Contains(ex.stderrString(), "NOT DELIVERED") {
		t.Fatalf("exec exit %d; stderr %q", code, ex.stderrString())
	}
	checkServerCopy(t, a.base, numbered(30000))
}
