package sqlite_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// TestRecoverLostChild: a job whose runner is another live process is left
// alone; once that process is SIGKILLed, the job becomes lost. A job of
// another host is never touched.
func TestRecoverLostChild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	child, id, otherHost := startChild(t, path)
	db := openPath(t, path) // Open runs RecoverLost too
	ctx := testCtx(t)

	if n, err := db.RecoverLost(ctx); err != nil || n != 0 {
		t.Fatalf("RecoverLost while the runner lives = %d, %v; want 0, nil", n, err)
	}
	wantStatus(t, db, id, jobs.StatusRunning)

	if err := child.kill(); err != nil {
		t.Fatal(err)
	}
	if n, err := db.RecoverLost(ctx); err != nil || n != 1 {
		t.Fatalf("RecoverLost after SIGKILL = %d, %v; want 1, nil", n, err)
	}
	j := wantStatus(t, db, id, jobs.StatusLost)
	if j.LastSeq != 4 || j.ExitCode != nil || j.FinishedAt == nil {
		t.Errorf("lost job: last seq %d, exit code %v, finished %v; want 4, nil, set", j.LastSeq, j.ExitCode, j.FinishedAt)
	}
	evs := allEvents(t, db, id, 100)
	last := evs[len(evs)-1]
	if len(evs) != 4 || last.Seq != 4 || last.Type != jobs.TypeExit || last.Status != jobs.StatusLost || last.ExitCode != nil {
		t.Errorf("events end with %s, want seq 4 exit lost with null exit code", wire(last))
	}
	if _, err := os.Stat(filepath.Join(path+".locks", string(j.UID))); !os.IsNotExist(err) {
		t.Errorf("lock file of the lost job: %v, want it removed", err)
	}
	wantStatus(t, db, otherHost, jobs.StatusRunning)

	if n, err := db.RecoverLost(ctx); err != nil || n != 0 {
		t.Errorf("second RecoverLost = %d, %v; want 0, nil", n, err)
	}
	if err := db.AppendEvents(ctx, id, lines(5, 1, "late")); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("the dead runner's late append: %v, want ErrConflict", err)
	}
}

// TestRecoverLostSameProcess: a lock held through another DB of this
// process (another open file description) also proves the runner alive.
func TestRecoverLostSameProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	runner := openPath(t, path)
	j := createJob(t, runner)
	appendEvents(t, runner, j.ID, lines(1, 2, "x"))

	viewer := openPath(t, path)
	ctx := testCtx(t)
	if n, err := viewer.RecoverLost(ctx); err != nil || n != 0 {
		t.Fatalf("RecoverLost with the runner open = %d, %v; want 0, nil", n, err)
	}
	if n, err := runner.RecoverLost(ctx); err != nil || n != 0 {
		t.Fatalf("the runner's own RecoverLost = %d, %v; want 0, nil", n, err)
	}
	wantStatus(t, viewer, j.ID, jobs.StatusRunning)

	runner.Close() // releases its locks: the job is now lost
	if n, err := viewer.RecoverLost(ctx); err != nil || n != 1 {
		t.Fatalf("RecoverLost after the runner closed = %d, %v; want 1, nil", n, err)
	}
	wantStatus(t, viewer, j.ID, jobs.StatusLost)
}

// TestRecoverLostMissingLockFile: a running job without a lock file has no
// runner.
func TestRecoverLostMissingLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobrun.db")
	runner := openPath(t, path)
	j := createJob(t, runner)
	runner.Close()
	if err := os.Remove(filepath.Join(path+".locks", string(j.UID))); err != nil {
		t.Fatal(err)
	}
	db := openPath(t, path) // Open recovers it
	got := wantStatus(t, db, j.ID, jobs.StatusLost)
	if got.LastSeq != 1 {
		t.Errorf("last seq %d, want 1 (the exit event)", got.LastSeq)
	}
}

// TestFinishedJobReleasesLock: the exit event releases the runner lock
// and removes its file.
func TestFinishedJobReleasesLock(t *testing.T) {
	db := openDB(t)
	j := createJob(t, db)
	lock := db.Path() + ".locks/" + string(j.UID)
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("lock file of a running job: %v", err)
	}
	appendEvents(t, db, j.ID, []jobs.Event{exitEvent(1, jobs.StatusSucceeded, 0)})
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("lock file of a finished job: %v, want it removed", err)
	}
}

// childProc is a runner process started by startChild.
type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func newCmd(exe, path string) *exec.Cmd {
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// kill SIGKILLs the child and waits for it: its flocks are gone after.
func (c *childProc) kill() error {
	if err := c.cmd.Process.Kill(); err != nil {
		return err
	}
	c.cmd.Wait() // "signal: killed"
	return nil
}

// startChild runs the test binary as a runner process (runChild) and
// returns it with the ids of its two jobs once they exist.
func startChild(t *testing.T, path string) (*childProc, jobs.ID, jobs.ID) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &childProc{}
	c.cmd = newCmd(exe, path)
	c.stdin, err = c.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stdin.Close()
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	var line string
	select {
	case line = <-ready:
	case <-testCtx(t).Done():
		t.Fatal("child did not get ready")
	}
	var a, b jobs.ID
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "ready %d %d", &a, &b); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	return c, a, b
}
