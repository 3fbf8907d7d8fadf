// Package pgtest runs a throwaway PostgreSQL cluster for tests: its own
// data directory in a temp folder, its own port on loopback and its own
// socket directory, never the system's cluster (which Debian's package
// may start on 5432). A test binary starts one cluster on first use (DB)
// and stops it at the end (Stop, from TestMain); each test gets a database
// of its own on it.
//
// PostgreSQL is Debian's postgresql package (scripts/test.sh installs it):
// its binaries are under /usr/lib/postgresql/*/bin, not on PATH. initdb
// refuses to run as root, so when the tests run as root (as in CI) the
// cluster's directory belongs to the postgres system user and initdb and
// pg_ctl run as that user (runuser). A watchdog process (sh) holds the
// read end of a pipe from the test process: when the test binary ends, in
// any way, the pipe closes and the watchdog stops the cluster and removes
// its directory, so no cluster outlives its tests.
//
// Without PostgreSQL, DB skips the test, or fails it under CI=true.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// ErrMissing means that PostgreSQL's server binaries were not found.
var ErrMissing = errors.New("PostgreSQL is not installed (apt-get install -y postgresql)")

// Cluster is a running throwaway cluster. Its superuser is "postgres",
// trusted on loopback without a password.
type Cluster struct {
	Dir  string // the cluster's folder: data/, the socket, the log
	Port int    // on 127.0.0.1

	bin      string   // the folder of initdb, pg_ctl, createdb
	runAs    []string // the command prefix that runs a binary as the cluster's owner
	watchdog *exec.Cmd
	pipe     *os.File // the write end of the watchdog's stdin

	mu   sync.Mutex
	next int // databases made so far
}

// binDir finds the newest /usr/lib/postgresql/*/bin holding initdb.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrMissing
}

// version is the major version in a /usr/lib/postgresql/N/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// Start initialises and starts a new cluster. The caller must Stop it.
func Start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "jobrun-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	if err := c.startWatchdog(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.init(); err != nil {
		c.Stop()
		return nil, err
	}
	// A port free a moment ago may be taken by the time the server binds
	// it: try a few.
	for try := 0; ; try++ {
		if err = c.start(); err == nil {
			return c, nil
		}
		if try == 3 {
			c.Stop()
			return nil, err
		}
	}
}

// startWatchdog starts the process that stops the cluster and removes
// its folder when the pipe from this process closes.
func (c *Cluster) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	stop := strings.Join(append(c.runAs, filepath.Join(c.bin, "pg_ctl"), "stop", "-D", c.data(), "-m", "immediate"), " ")
	script := fmt.Sprintf(`read _; %s >/dev/null 2>&1; rm -rf %s`, stop, shellQuote(c.Dir))
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdin = r
	// Its own process group: a Ctrl-C to the tests must not kill it
	// before it has done its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("pgtest: watchdog: %w", err)
	}
	c.watchdog, c.pipe = cmd, w
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (c *Cluster) data() string { return filepath.Join(c.Dir, "data") }

// run runs a PostgreSQL binary as the cluster's owner.
func (c *Cluster) run(name string, args ...string) error {
	argv := append(append(append([]string{}, c.runAs...), filepath.Join(c.bin, name)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.Dir // readable by the owner, unlike the caller's folder
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgtest: %s %s: %w\n%s", name, strings.Join(args, " "), err, out.Bytes())
	}
	return nil
}

// config is appended to postgresql.conf: fast rather than durable (a
// test cluster is thrown away), loopback only, room for many pools.
const config = `
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
port = %d
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
log_min_messages = warning
`

func (c *Cluster) init() error {
	return c.run("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
}

// start picks a free port, writes it into the configuration and starts
// the server.
func (c *Cluster) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// The last setting of a name wins: a retry's port overrides the
	// previous one.
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, config, c.Dir, c.Port)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return c.run("pg_ctl", "start", "-w", "-t", "60", "-D", c.data(), "-l", filepath.Join(c.Dir, "server.log"))
}

// Halt stops the server at once (as a crash would), keeping its data;
// Resume starts it again on the same port. For tests of a database that
// goes away and comes back.
func (c *Cluster) Halt() error {
	return c.run("pg_ctl", "stop", "-w", "-D", c.data(), "-m", "immediate")
}

// Resume starts the server again after Halt.
func (c *Cluster) Resume() error {
	return c.run("pg_ctl", "start", "-w", "-t", "60", "-D", c.data(), "-l", filepath.Join(c.Dir, "server.log"))
}

// Stop stops the cluster and removes its folder (through the watchdog,
// which does the same when this process dies), and waits until that is
// done.
func (c *Cluster) Stop() {
	if c.pipe == nil {
		return
	}
	c.pipe.Close()
	c.pipe = nil
	c.watchdog.Wait()
}

// URL is the connection URL of database name, as the superuser.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, name)
}

// NewDatabase creates an empty database and returns its URL.
func (c *Cluster) NewDatabase() (string, error) {
	c.mu.Lock()
	c.next++
	name := fmt.Sprintf("test%d", c.next)
	c.mu.Unlock()
	if err := c.run("createdb", "-h", c.Dir, "-p", strconv.Itoa(c.Port), "-U", "postgres", name); err != nil {
		return "", err
	}
	return c.URL(name), nil
}

// The test binary's cluster, started on first use.
var (
	shared    *Cluster
	sharedErr error
	once      sync.Once
	stopped   bool
	sharedMu  sync.Mutex
)

// Shared returns the test binary's cluster, starting it on first use.
func Shared() (*Cluster, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if stopped {
		return nil, errors.New("pgtest: the cluster was stopped")
	}
	once.Do(func() { shared, sharedErr = Start() })
	return shared, sharedErr
}

// Need returns the test binary's cluster, starting it on first use. It
// skips the test without PostgreSQL, and fails it under CI=true (where
// scripts/test.sh has installed it) or when the cluster does not start.
func Need(t testing.TB) *Cluster {
	t.Helper()
	c, err := Shared()
	switch {
	case errors.Is(err, ErrMissing) && os.Getenv("CI") != "true":
		t.Skipf("pgtest: %v", err)
	case err != nil:
		t.Fatalf("pgtest: %v", err)
	}
	return c
}

// DB returns the URL of a new, empty database on the test binary's
// cluster (see Need).
func DB(t testing.TB) string {
	t.Helper()
	url, err := Need(t).NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Stop stops the test binary's cluster if it was started. Call it from
// TestMain after m.Run.
func Stop() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	stopped = true
	if shared != nil {
		shared.Stop()
	}
}
