package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

var (
	crashN    = flag.Int("crashloop.n", 20, "TestCrashLoop: iterations (200 for a long run by hand)")
	crashSeed = flag.Uint64("crashloop.seed", 0, "TestCrashLoop: seed of the first iteration, iteration i uses seed+i (0: from the clock); "+
		"to replay a failed iteration, give its seed with -crashloop.n=1")
)

// crashChildArg makes the test binary the job of TestCrashLoop (see
// TestMain and crashChild) instead of running tests.
const crashChildArg = "crashloop-child"

// crashJob is what the child prints: lines numbered 1..lines (crashLine),
// in bursts of burst lines with pause between them, then it exits with
// code.
type crashJob struct {
	lines, burst int
	pause        time.Duration
	code         int
	pidFile      string // written (whole) before the first line
}

func (j crashJob) spec() string {
	return fmt.Sprintf("%d,%d,%d,%d,%s", j.lines, j.burst, j.pause, j.code, j.pidFile)
}

// crashLine is line i of the child's output, newline included: numbered,
// of varying length.
func crashLine(i int) string {
	return fmt.Sprintf("%06d crash loop %s\n", i, strings.Repeat("x", i*7%101))
}

// crashChild is the child's main: it writes its pid to the pid file, then
// prints the job's lines, and returns its exit code.
func crashChild(spec string) int {
	f := strings.SplitN(spec, ",", 5)
	if len(f) != 5 {
		fmt.Fprintf(os.Stderr, "crash child: bad spec %q\n", spec)
		return 2
	}
	var j crashJob
	var pause int64
	for i, p := range []*int{&j.lines, &j.burst, nil, &j.code} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "crash child: bad spec %q\n", spec)
			return 2
		}
		if p == nil {
			pause = n
		} else {
			*p = int(n)
		}
	}
	tmp := f[4] + ".tmp"
	if os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())), 0o600) != nil || os.Rename(tmp, f[4]) != nil {
		return 2
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 1; i <= j.lines; i++ {
		w.WriteString(crashLine(i))
		if i%j.burst == 0 || i == j.lines {
			if w.Flush() != nil {
				return 2
			}
			time.Sleep(time.Duration(pause))
		}
	}
	return j.code
}

// TestCrashLoop kills jobrun processes with SIGKILL at random moments and
// checks what is left. Each iteration runs a job printing numbered lines
// (the test binary itself, crashChild), either under a standalone jobrun
// exec or under an agent (exec --server) reporting to jobrun serve, and
// kills one of exec, serve or the agent after a random delay (before the
// job starts, while it prints, or after it ended). Then it does what a
// user would: nothing more for a standalone exec (the next command that
// opens the database, here ls, marks the job lost), restarting serve at
// its address (the agent delivers the rest), or jobrun push for a killed
// agent's spool. It checks:
//
//   - the stored log (jobrun logs --json) has contiguous seq from 1,
//     ends with the exit event, and its line events are the child's lines
//     1..k byte for byte: a prefix of what the child printed;
//   - the job's status is the command's (succeeded, or failed with its
//     exit code, and then k is every line) unless the job's runner was
//     killed (exec, agent), when it may be lost; never incomplete;
//   - PRAGMA integrity_check of the database is ok;
//   - no process of the job is left (its process group is gone), the
//     killed process's spool is delivered and removed.
//
// The default size fits CI (about a minute under -race); by hand:
// go test -run TestCrashLoop ./cmd/jobrun/ -crashloop.n=200 (the package
// before the flag: go test hands what follows an unknown flag to the test
// binary). The seed is printed; the same seed gives the same choices (not
// the same timing).
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts jobrun processes for about a minute")
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d: replay iteration i with -crashloop.seed=%d+i -crashloop.n=1", seed, seed)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tally := map[string]int{}
	for i := range *crashN {
		s := seed + uint64(i)
		ok := t.Run(fmt.Sprintf("%03d-seed-%d", i, s), func(t *testing.T) {
			tally[crashIteration(t, self, s)]++
		})
		if !ok {
			t.Fatalf("iteration %d failed: replay with go test -run TestCrashLoop ./cmd/jobrun/ -crashloop.seed=%d -crashloop.n=1", i, s)
		}
	}
	t.Logf("%d iterations: %v", *crashN, tally)
}

// crashIteration runs one iteration with its seed and returns what
// happened, for the tally.
func crashIteration(t *testing.T, self string, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 0x6a6f6272756e))
	victim := []string{"exec", "serve", "agent"}[rng.IntN(3)]
	dir := t.TempDir()
	job := crashJob{lines: 100 + rng.IntN(5000), burst: 1 + rng.IntN(100), code: []int{0, 3}[rng.IntN(2)],
		pidFile: filepath.Join(dir, "child.pid")}
	length := time.Duration(rng.Int64N(int64(time.Second)))
	job.pause = length / time.Duration((job.lines+job.burst-1)/job.burst)
	killAfter := time.Duration(rng.Int64N(int64(length + 500*time.Millisecond)))
	restartAfter := time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
	t.Logf("kill -9 %s after %v; job: %d lines in bursts of %d every %v (about %v), exit %d",
		victim, killAfter.Round(time.Millisecond), job.lines, job.burst, job.pause, length.Round(time.Millisecond), job.code)
	argv := []string{"--", self, crashChildArg, job.spec()}

	var (
		db       string
		runnerOK bool // the runner (exec, agent) was not killed: it ended by itself
	)
	if victim == "exec" {
		db = filepath.Join(dir, "jobrun.db")
		p := startJobrun(t, db, append([]string{"exec", "-q", "--db", db, "--addr", "127.0.0.1:0", "--linger", "0"}, argv...)...)
		time.Sleep(killAfter)
		p.cmd.Process.Signal(syscall.SIGKILL)
		code := p.wait(t)
		runnerOK = code != -1
		if runnerOK && code != job.code {
			t.Errorf("exec exited with %d, want the command's %d; stderr: %s", code, job.code, p.stderrString())
		}
		if _, err := os.Stat(db); err != nil {
			// Killed before it made the database: no job could start.
			if crashChildStarted(job) {
				t.Fatalf("the job started but there is no database: %v", err)
			}
			checkNoLeftover(t, self, job)
			return "exec killed before the database existed"
		}
	} else {
		spool := agentEnv(t)
		db = filepath.Join(dir, "server.db")
		addr := freeAddr(t)
		srv := startServeAt(t, db, addr)
		agent := startJobrun(t, db, append([]string{"exec", "-q", "--server", "http://" + addr}, argv...)...)
		time.Sleep(killAfter)
		if victim == "serve" {
			srv.cmd.Process.Signal(syscall.SIGKILL)
			srv.wait(t)
			time.Sleep(restartAfter)
			srv = startServeAt(t, db, addr)
			if code := agent.wait(t); code != job.code {
				t.Errorf("agent exited with %d, want the command's %d; stderr: %s", code, job.code, agent.stderrString())
			}
			runnerOK = true
		} else {
			agent.cmd.Process.Signal(syscall.SIGKILL)
			code := agent.wait(t)
			runnerOK = code != -1
			if runnerOK && code != job.code {
				t.Errorf("agent exited with %d, want the command's %d; stderr: %s", code, job.code, agent.stderrString())
			}
			if out, code := jobrunOutput(t, db, "push"); code != 0 {
				t.Errorf("push: exit %d: %s", code, out)
			}
		}
		if left := spoolFiles(t, spool); len(left) != 0 {
			t.Errorf("spools left: %v", left)
		}
		defer func() {
			srv.cmd.Process.Signal(syscall.SIGTERM)
			srv.wait(t)
		}()
	}
	checkNoLeftover(t, self, job)
	checkIntegrity(t, db)
	return checkCrashJob(t, db, job, victim, runnerOK)
}

// crashChildStarted reports whether the child wrote its pid file.
func crashChildStarted(job crashJob) bool {
	_, err := os.Stat(job.pidFile)
	return err == nil
}

// checkCrashJob checks the job stored in db after an iteration and
// returns what happened to it.
func checkCrashJob(t *testing.T, db string, job crashJob, victim string, runnerOK bool) string {
	t.Helper()
	out, code := jobrunOutput(t, db, "ls", "--json")
	var list struct{ Jobs []jobs.Job }
	if err := json.Unmarshal(out, &list); err != nil || code != 0 {
		t.Fatalf("ls --json: exit %d, %v: %s", code, err, out)
	}
	if len(list.Jobs) == 0 {
		// Killed before the job was registered: nothing ran.
		if crashChildStarted(job) {
			t.Fatalf("the job started but %s holds no job", db)
		}
		return victim + " killed before the job existed"
	}
	if len(list.Jobs) != 1 {
		t.Fatalf("%d jobs in %s, want 1", len(list.Jobs), db)
	}
	j := list.Jobs[0]
	raw, code := jobrunOutput(t, db, "logs", "--json", "1")
	if code != 0 {
		t.Fatalf("logs --json: exit %d", code)
	}
	evs := jsonLines(t, string(raw))
	if len(evs) == 0 {
		t.Fatal("no events stored")
	}
	checkContiguous(t, evs, 1)
	exit := evs[len(evs)-1]
	if exit.Type != jobs.TypeExit || exit.Seq != j.LastSeq {
		t.Fatalf("last event %+v (job's last_seq %d), want the exit event at last_seq", exit, j.LastSeq)
	}
	k := 0
	for _, e := range evs {
		if e.Type != jobs.TypeLine {
			continue
		}
		k++
		if got, want := string(e.Data)+e.EOL, crashLine(k); e.Stream != jobs.StreamStdout || got != want {
			t.Fatalf("line event seq %d: %s %q, want stdout %q (line %d)", e.Seq, e.Stream, got, want, k)
		}
	}
	if j.Incomplete || exit.Incomplete {
		t.Errorf("job incomplete (%q), exit event incomplete %v: want neither", j.IncompleteReason, exit.Incomplete)
	}
	if j.Status != exit.Status {
		t.Errorf("job status %s, exit event %s", j.Status, exit.Status)
	}
	want := jobs.StatusSucceeded
	if job.code != 0 {
		want = jobs.StatusFailed
	}
	switch {
	case j.Status == jobs.StatusLost && !runnerOK && k == 0:
		return victim + " killed: job lost, no line stored"
	case j.Status == jobs.StatusLost && !runnerOK && k < job.lines:
		return victim + " killed: job lost, a prefix stored"
	case j.Status == jobs.StatusLost && !runnerOK:
		return victim + " killed: job lost, every line stored"
	case j.Status != want || j.ExitCode == nil || *j.ExitCode != job.code:
		t.Fatalf("job %s, exit code %v; want %s, exit %d (%s killed, runner ended by itself: %v)",
			j.Status, j.ExitCode, want, job.code, victim, runnerOK)
	case k != job.lines:
		t.Fatalf("job %s with %d of %d lines stored", j.Status, k, job.lines)
	case victim == "serve":
		return "serve killed: job whole"
	case !runnerOK:
		return victim + " killed after storing the exit event: job whole"
	}
	return victim + " had exited before the kill: job whole"
}

// checkIntegrity runs PRAGMA integrity_check on the database file (the
// test binary has the SQLite driver through store/sqlite).
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check of %s: %q, %v", path, res, err)
	}
}

// checkNoLeftover checks that no process of the job is left: none runs the
// child with this job's spec (whether or not it wrote its pid), and the
// child's process group is gone. Zombies count as gone. Killed processes
// take a moment to go, so it waits (up to 20 s).
func checkNoLeftover(t *testing.T, self string, job crashJob) {
	t.Helper()
	pgid := 0
	if b, err := os.ReadFile(job.pidFile); err == nil {
		pgid, _ = strconv.Atoi(string(b))
	}
	var left []int
	waitForOrReport := func() bool {
		left = left[:0]
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil || !bytes.Equal(cmdline, []byte(self+"\x00"+crashChildArg+"\x00"+job.spec()+"\x00")) {
				continue
			}
			if !zombie(pid) {
				left = append(left, pid)
			}
		}
		return len(left) == 0 && (pgid == 0 || syscall.Kill(-pgid, 0) == syscall.ESRCH || zombie(pgid))
	}
	deadline := time.Now().Add(20 * time.Second)
	for !waitForOrReport() {
		if time.Now().After(deadline) {
			t.Fatalf("left after the iteration: child processes %v, process group %d", left, pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zombie reports whether pid has exited but is not reaped yet.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
