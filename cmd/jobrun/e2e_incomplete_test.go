package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// fullDiskJob prints about 20 MB of numbered lines and fails with 5: far
// more than a database capped at fullDiskPages (1.2 MB) holds.
const (
	fullDiskJob   = `i=0; while [ $i -lt 2000 ]; do i=$((i+1)); yes "line $i of the output that fills the disk" | head -n 250; done; exit 5`
	fullDiskPages = "300"
)

var stopsAtRE = regexp.MustCompile(`the stored log stops at seq (\d+)\n`)

// TestExecFullDatabaseMarksIncomplete: a database that is full (capped by
// PRAGMA max_page_count through the test knob JOBRUN_TEST_MAX_PAGES: the
// very SQLITE_FULL of a full disk) cuts the stored log short; the exit
// event and the job say so, and every reader shows it. The cap counts the
// database's pages, so the exit event, which needs no new page, is stored:
// this test always sees the incomplete exit.
func TestExecFullDatabaseMarksIncomplete(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	stored, stderr := execFullDisk(t, db, "JOBRUN_TEST_MAX_PAGES="+fullDiskPages)
	if strings.Contains(stderr, "failed too") {
		t.Fatalf("exec could not store the exit event: %q", stderr)
	}
	checkIncompleteReaders(t, db, stored)
}

// TestExecFullTmpfsMarksIncomplete: the same on a real full file system,
// a 2 MiB tmpfs, as the fault campaign found it. There the exit event
// needs a few WAL frames of room, which the last failed batch may not have
// left: then the job stays running (readers still read it) until there is
// room again, and ends lost. It needs root (mount); without it, or where
// mounting is not allowed, it is skipped.
func TestExecFullTmpfsMarksIncomplete(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	db := filepath.Join(dir, "jobrun.db")
	// serve makes its secret next to the database when missing, which a
	// full disk refuses: make it while there is room.
	if err := os.WriteFile(secretPath(db), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stored, stderr := execFullDisk(t, db)
	if !strings.Contains(stderr, "storing the exit status failed too") {
		checkIncompleteReaders(t, db, stored)
		return
	}
	t.Logf("the exit event did not fit either: checking the lost path")
	if j := lsOnlyJob(t, db); j.Status != jobs.StatusRunning || j.LastSeq != jobs.Seq(stored) {
		t.Errorf("on the full disk: job %s at seq %d; want it readable, running at seq %d until it can be marked lost", j.Status, j.LastSeq, stored)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=8m,mode=0700"); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
	if j := lsOnlyJob(t, db); j.Status != jobs.StatusLost || j.LastSeq != jobs.Seq(stored)+1 {
		t.Errorf("with room again: job %s at seq %d; want lost at seq %d", j.Status, j.LastSeq, stored+1)
	}
}

// TestAgentFullSpoolMarksIncomplete: an agent (exec --server) whose spool
// fills up sends its exit event marked incomplete, and the server keeps
// the flag: the job there is incomplete too, with the agent's reason.
func TestAgentFullSpoolMarksIncomplete(t *testing.T) {
	agentEnv(t)
	base := serveDB(t, filepath.Join(t.TempDir(), "server.db"))
	_, stderr, code := runJobrun(t, []string{"JOBRUN_TEST_MAX_PAGES=" + fullDiskPages},
		"exec", "-q", "--server", base, "--", "sh", "-c", fullDiskJob)
	m := stopsAtRE.FindStringSubmatch(stderr)
	if code != 5 || m == nil || strings.Contains(stderr, "NOT DELIVERED") {
		t.Fatalf("exec --server: exit %d, stderr %q; want 5, where the spool's log stops, and all of it delivered", code, stderr)
	}
	j := fetchJSON[jobs.Job](t, base+"/api/jobs/1")
	if !j.Agent || j.Status != jobs.StatusFailed || !j.Incomplete ||
		!strings.HasPrefix(j.IncompleteReason, "storing the output failed after seq "+m[1]+": ") {
		t.Errorf("the server's job: %+v; want the agent's failed job, incomplete after seq %s", j, m[1])
	}
	if _, errOut, code := runJobrun(t, nil, "logs", "--server", base, "1"); code != exitIncomplete || !strings.Contains(errOut, "is incomplete") {
		t.Errorf("logs --server: exit %d, stderr %q; want %d and the warning", code, errOut, exitIncomplete)
	}
}

// execFullDisk runs fullDiskJob with db, where storing must fail, and
// returns the seq where exec says the stored log stops, and its stderr.
func execFullDisk(t *testing.T, db string, env ...string) (int64, string) {
	t.Helper()
	_, stderr, code := runJobrun(t, append(env, "JOBRUN_DB="+db),
		"exec", "--standalone", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c", fullDiskJob)
	m := stopsAtRE.FindStringSubmatch(stderr)
	if code != 5 || m == nil || strings.Count(stderr, "storing output failed") != 1 {
		t.Fatalf("exec: exit %d, stderr %q; want the command's 5 and one message saying where the stored log stops", code, stderr)
	}
	stored, _ := strconv.ParseInt(m[1], 10, 64)
	return stored, stderr
}

// checkIncompleteReaders checks what ls, logs and serve say about job 1 of
// db, whose stored log stops at seq stored, followed by its incomplete
// exit event.
func checkIncompleteReaders(t *testing.T, db string, stored int64) {
	t.Helper()
	want := jobs.Job{ID: 1, Status: jobs.StatusFailed, LastSeq: jobs.Seq(stored) + 1, Incomplete: true}
	checkIncompleteJob := func(what string, j jobs.Job) {
		t.Helper()
		if j.Status != want.Status || j.ExitCode == nil || *j.ExitCode != 5 || j.LastSeq != want.LastSeq || !j.Incomplete ||
			!strings.HasPrefix(j.IncompleteReason, fmt.Sprintf("storing the output failed after seq %d: ", stored)) ||
			!strings.Contains(j.IncompleteReason, "disk full") {
			t.Errorf("%s: job %+v; want failed 5 at seq %d (the exit after the stored log), incomplete, the reason naming the full disk", what, j, want.LastSeq)
		}
	}

	// ls --json, and the table's mark.
	checkIncompleteJob("ls --json", lsOnlyJob(t, db))
	if out, _, _ := runJobrun(t, []string{"JOBRUN_DB=" + db}, "ls"); !strings.Contains(out, "failed (log incomplete)") {
		t.Errorf("ls does not mark the job:\n%s", out)
	}

	// logs: what was stored, a warning, exit 3; -f: 125.
	logs := func(args ...string) (string, string, int) {
		return runJobrun(t, []string{"JOBRUN_DB=" + db}, append([]string{"logs"}, args...)...)
	}
	warning := fmt.Sprintf("jobrun: logs: warning: the stored log of job 1 is incomplete: storing the output failed after seq %d: ", stored)
	out, errOut, code := logs("--json", "1")
	if code != exitIncomplete || !strings.HasPrefix(errOut, warning) {
		t.Errorf("logs --json: exit %d, stderr %q; want %d and the warning", code, errOut, exitIncomplete)
	}
	evs := jsonLines(t, out)
	checkContiguous(t, evs, 1)
	if len(evs) != int(want.LastSeq) || !evs[len(evs)-1].Incomplete || evs[len(evs)-1].Type != jobs.TypeExit {
		t.Fatalf("logs --json: %d events, the last %+v; want %d, ending with the incomplete exit event", len(evs), evs[len(evs)-1], want.LastSeq)
	}
	raw, errOut, code := logs("1")
	if code != exitIncomplete || !strings.HasPrefix(errOut, warning) {
		t.Errorf("logs: exit %d, stderr %q; want %d and the warning", code, errOut, exitIncomplete)
	}
	checkStoredPrefix(t, raw, evs)
	if out, errOut, code = logs("-f", "1"); code != exitFailure || !strings.HasPrefix(errOut, warning) || out != raw {
		t.Errorf("logs -f: exit %d, stderr %q, %d bytes; want %d, the warning and the stored log", code, errOut, len(out), exitFailure)
	}

	// A server of the database: the job objects, and the remote logs.
	base := serveDB(t, db)
	checkIncompleteJob("GET /api/jobs/1", fetchJSON[jobs.Job](t, base+"/api/jobs/1"))
	checkIncompleteJob("GET /api/jobs", fetchJSON[struct{ Jobs []jobs.Job }](t, base+"/api/jobs").Jobs[0])
	remote := func(args ...string) (string, string, int) {
		return runJobrun(t, nil, append([]string{"logs", "--server", base}, args...)...)
	}
	if out, errOut, code := remote("1"); code != exitIncomplete || !strings.HasPrefix(errOut, warning) || out != raw {
		t.Errorf("logs --server: exit %d, stderr %q, %d bytes; want %d, the warning and the stored log", code, errOut, len(out), exitIncomplete)
	}
	if out, errOut, code := remote("--json", "1"); code != exitIncomplete || !strings.HasPrefix(errOut, warning) || len(jsonLines(t, out)) != len(evs) {
		t.Errorf("logs --server --json: exit %d, stderr %q; want %d and the warning", code, errOut, exitIncomplete)
	}
	if out, errOut, code := remote("-f", "1"); code != exitFailure || !strings.HasPrefix(errOut, warning) || out != raw {
		t.Errorf("logs --server -f: exit %d, stderr %q, %d bytes; want %d, the warning and the stored log", code, errOut, len(out), exitFailure)
	}
}

// lsOnlyJob returns the one job of db, as ls --json lists it.
func lsOnlyJob(t *testing.T, db string) jobs.Job {
	t.Helper()
	out, errOut, code := runJobrun(t, []string{"JOBRUN_DB=" + db}, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list.Jobs) != 1 {
		t.Fatalf("ls --json: exit %d, %v: %s%s", code, err, out, errOut)
	}
	return list.Jobs[0]
}

// checkStoredPrefix checks that raw holds the bytes of the stored line
// events evs, and that they are the start of fullDiskJob's output.
func checkStoredPrefix(t *testing.T, raw string, evs []jobs.Event) {
	t.Helper()
	var stored, want bytes.Buffer
	for _, e := range evs {
		stored.Write(e.Data)
		stored.WriteString(e.EOL)
	}
	for i := 1; want.Len() < len(raw); i++ {
		for range 250 {
			fmt.Fprintf(&want, "line %d of the output that fills the disk\n", i)
		}
	}
	if raw != stored.String() || raw != want.String()[:len(raw)] {
		t.Errorf("logs printed %d bytes; want the %d bytes stored, the start of the output", len(raw), stored.Len())
	}
}

// jsonLines decodes logs --json output.
func jsonLines(t *testing.T, out string) []jobs.Event {
	t.Helper()
	var evs []jobs.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e jobs.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("logs --json line %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

// fetchJSON GETs u and decodes its 200 answer.
func fetchJSON[T any](t *testing.T, u string) T {
	t.Helper()
	var v T
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return v
}
