package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the user the permission tests run jobrun as when they run as
// root, whom permission checks do not apply to.
const nobody = 65534

// unprivileged returns a folder that the user of the tests' jobrun
// processes owns, and a func running jobrun as that user there: this user
// when not root; as root, the user nobody (the folder and a copy of the
// binary made reachable for it), so that file permissions apply.
func unprivileged(t *testing.T) (dir string, run func(args ...string) (string, int)) {
	t.Helper()
	bin, cred := binary, (*syscall.Credential)(nil)
	dir = t.TempDir()
	if os.Geteuid() == 0 {
		top, err := os.MkdirTemp("", "jobrun-nobody-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(top) })
		dir = filepath.Join(top, "home")
		bin = filepath.Join(top, "jobrun")
		if err := os.Chmod(top, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		copyFile(t, binary, bin, 0o755)
		cred = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	return dir, func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "JOBRUN_DB=" + filepath.Join(dir, "j.db")}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("jobrun %v: %v", args, err)
		}
		return out.String(), 0
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReadOnlyDatabaseLeavesNothingBehind: exec refuses a database its
// user cannot write (exit 125), and leaves no read-only -wal or -shm
// behind, so that the database works again as soon as its permissions are
// fixed. Such files left by an older jobrun are fixed when this user owns
// them, and named in the error otherwise.
func TestReadOnlyDatabaseLeavesNothingBehind(t *testing.T) {
	dir, run := unprivileged(t)
	db := filepath.Join(dir, "j.db")
	exec := []string{"exec", "--standalone", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "echo", "hi"}
	if out, code := run(exec...); code != 0 {
		t.Fatalf("exec: exit %d: %s", code, out)
	}
	if err := os.Chmod(db, 0o400); err != nil {
		t.Fatal(err)
	}
	out, code := run(exec...)
	if code != exitFailure || !strings.Contains(out, "cannot write the database file") {
		t.Errorf("exec with a read-only database: exit %d: %s; want %d and why", code, out, exitFailure)
	}
	for _, side := range []string{db + "-wal", db + "-shm"} {
		if fi, err := os.Stat(side); err == nil {
			t.Errorf("the refused open left %s (mode %v)", side, fi.Mode().Perm())
		}
	}
	if err := os.Chmod(db, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := run(exec...); code != 0 {
		t.Fatalf("exec once the permissions are fixed: exit %d: %s", code, out)
	}

	// A read-only -shm that this user owns, as an older jobrun left it:
	// made writable again.
	shm := db + "-shm"
	if err := os.WriteFile(shm, make([]byte, 32<<10), 0o400); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(shm, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if out, code := run("ls"); code != 0 || !strings.Contains(out, "echo hi") {
		t.Errorf("ls beside a stale read-only -shm of this user: exit %d: %s", code, out)
	}
	if os.Geteuid() != 0 {
		return // the rest needs a file this user does not own
	}
	// One that another user owns: named in the error.
	if err := os.WriteFile(shm, make([]byte, 32<<10), 0o400); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	if err := os.Chown(shm, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shm, 0o400); err != nil {
		t.Fatal(err)
	}
	if out, code := run("ls"); code != exitFailure || !strings.Contains(out, "cannot write "+shm) {
		t.Errorf("ls beside another user's read-only -shm: exit %d: %s; want %d naming %s", code, out, exitFailure, shm)
	}
}
