package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// target is the jobrun side of a run: the process whose memory and CPU are
// measured (jobrun exec, or jobrun serve), the agent that runs the job for
// serve, the job's URLs, and the start signal of the line generator.
type target struct {
	server *exec.Cmd // exec (mode exec) or serve (mode serve)
	agent  *exec.Cmd // mode serve: jobrun exec --server
	start  *os.File  // the write end of the generator's stdin
	base   string    // http://127.0.0.1:PORT
	ref    string    // the job's id (or uid)
	report string    // where the generator writes its runtime
	dir    string    // temporary folder: databases, spool, report
	bin    string    // the jobrun binary
	// exited is closed when exec has exited (mode exec; nil once serve
	// replaced it): exec exits with its job once no viewer needs it.
	exited chan struct{}
	logs   *tail // the last of the jobrun processes' stderr
}

// jobURLRE finds the job's URL in what jobrun exec prints on stderr:
// "jobrun: job 7: http://127.0.0.1:7070/jobs/7".
var jobURLRE = regexp.MustCompile(`jobrun: job \S+: (https?://[^\s/]+)/jobs/(\S+)`)

// startTarget starts jobrun for cfg: exec running the generator, or serve
// and an agent running it. It returns once the job exists on the server
// (registered, no line printed yet: the generator waits for startJob).
func startTarget(cfg config, bin string) (*target, error) {
	dir, err := os.MkdirTemp("", "fanout-")
	if err != nil {
		return nil, err
	}
	t := &target{dir: dir, bin: bin, report: filepath.Join(dir, "gen-runtime"), logs: &tail{}}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	t.start = pw
	gen := []string{"--", self, "-gen", "-rate", strconv.FormatFloat(cfg.rate, 'f', -1, 64),
		"-burst", strconv.Itoa(cfg.burst), "-lines", strconv.Itoa(cfg.totalLines()),
		"-format", cfg.format, "-report", t.report}
	env := childEnv(dir)
	linger := max(time.Minute, cfg.timeout).String()

	if cfg.mode == "serve" {
		if err := t.startServe(filepath.Join(dir, "serve.db")); err != nil {
			return t, err
		}
		t.agent = command(bin, env, append([]string{"exec", "--server", t.base, "--quiet", "--name", "fanout"}, gen...)...)
		t.agent.Stdin = pr
		if _, t.ref, err = startAndFindJobURL(t.agent, t.logs); err != nil {
			return t, err
		}
		return t, t.waitRegistered()
	}
	t.server = command(bin, env, append([]string{"exec", "--db", filepath.Join(dir, "jobrun.db"),
		"--addr", "127.0.0.1:0", "--linger", linger, "--quiet", "--name", "fanout"}, gen...)...)
	t.server.Stdin = pr
	base, ref, err := startAndFindJobURL(t.server, t.logs)
	t.base, t.ref = base, ref
	if t.server.Process != nil {
		t.exited = make(chan struct{})
		go func() { t.server.Wait(); close(t.exited) }()
	}
	return t, err
}

// startServe starts jobrun serve on db as the measured process.
func (t *target) startServe(db string) error {
	t.server = command(t.bin, childEnv(t.dir), "serve", "--db", db, "--addr", "127.0.0.1:0",
		"--max-client-conns", "-1", "--log-format", "json")
	stderr, err := t.server.StderrPipe()
	if err != nil {
		return err
	}
	if err := t.server.Start(); err != nil {
		return err
	}
	t.base, err = listeningURL(stderr, t.logs)
	return err
}

// serveStored replaces an exec target by jobrun serve on exec's database
// once exec has exited: exec ends when its job has and no viewer watches,
// so a replay after the job is served as a user would get it, by serve.
func (t *target) serveStored(ctx context.Context) error {
	for exited := false; !exited; {
		select {
		case <-t.exited:
			exited = true
		case <-ctx.Done():
			return fmt.Errorf("exec did not exit after its job: %w", context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
			if fi, err := os.Stat(t.report); err == nil && time.Since(fi.ModTime()) > 10*time.Second {
				// The job ended long ago: an older exec lingers
				// whole, and SIGINT ends a linger.
				t.server.Process.Signal(syscall.SIGINT)
			}
		}
	}
	t.exited = nil
	return t.startServe(filepath.Join(t.dir, "jobrun.db"))
}

// command prepares a jobrun process that dies with this one.
func command(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// childEnv is this process's environment without JOBRUN_ variables (a
// JOBRUN_SERVER would send the job elsewhere), with the agent's spool in
// dir.
func childEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JOBRUN_") && !strings.HasPrefix(kv, "XDG_STATE_HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "XDG_STATE_HOME="+filepath.Join(dir, "state"))
}

// listeningURL reads serve's JSON log until it says where it listens, then
// keeps the rest of the log in logs.
func listeningURL(stderr io.Reader, logs *tail) (string, error) {
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		logs.Write(append(sc.Bytes(), '\n'))
		var l struct {
			Msg string `json:"msg"`
			URL string `json:"url"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && strings.Contains(l.Msg, "listening") && l.URL != "" {
			go io.Copy(logs, stderr)
			return strings.TrimSuffix(l.URL, "/"), nil
		}
	}
	return "", fmt.Errorf("serve did not say where it listens: %s", logs)
}

// startAndFindJobURL starts an exec and reads its stderr until it prints
// the job's URL.
func startAndFindJobURL(cmd *exec.Cmd, logs *tail) (base, ref string, err error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", "", err
	}
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	r := bufio.NewReader(stderr)
	for {
		line, err := r.ReadString('\n')
		logs.Write([]byte(line))
		if m := jobURLRE.FindStringSubmatch(line); m != nil {
			go io.Copy(logs, r)
			return m[1], m[2], nil
		}
		if err != nil {
			return "", "", fmt.Errorf("%s printed no job URL: %s", cmd.Args[1], logs)
		}
	}
}

// waitRegistered waits until the server knows the job (an agent prints its
// uid when the server has not welcomed it within a second).
func (t *target) waitRegistered() error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := t.job(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("job %s not registered on %s: %s", t.ref, t.base, t.logs)
}

// jobState is what a run needs of GET /api/jobs/{ref}.
type jobState struct {
	Status  string `json:"status"`
	LastSeq int64  `json:"last_seq"`
}

// final reports whether the job has ended.
func (j jobState) final() bool { return j.Status != "running" && j.Status != "unreachable" }

// job reads the job from the server.
func (t *target) job() (jobState, error) {
	var j jobState
	resp, err := http.Get(t.base + "/api/jobs/" + t.ref)
	if err != nil {
		return j, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return j, fmt.Errorf("GET job: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&j)
	return j, err
}

// waitFinished waits until the job has ended.
func (t *target) waitFinished(ctx context.Context) error {
	for {
		j, err := t.job()
		if err == nil && j.final() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("job %s did not finish (status %q, %v)", t.ref, j.Status, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// streamURL is the job's WebSocket stream from after=0.
func (t *target) streamURL() string {
	return "ws" + strings.TrimPrefix(t.base, "http") + "/api/jobs/" + t.ref + "/stream?after=0"
}

// pid is the measured process: exec, or serve.
func (t *target) pid() int { return t.server.Process.Pid }

// cpuTime is the measured process's CPU time (user and system): read
// from /proc while it runs, from its exit status once exec has exited.
func (t *target) cpuTime() time.Duration {
	if t.exited != nil {
		select {
		case <-t.exited:
			ps := t.server.ProcessState
			return ps.UserTime() + ps.SystemTime()
		default:
		}
	}
	return cpuTime(t.pid())
}

// startJob lets the generator print.
func (t *target) startJob() {
	t.start.Write([]byte{1})
	t.start.Close()
}

// genRuntime returns the generator's runtime, waiting a little for its
// report.
func (t *target) genRuntime() time.Duration {
	for i := 0; i < 100; i++ {
		if b, err := os.ReadFile(t.report); err == nil {
			if s, err := strconv.ParseFloat(string(b), 64); err == nil {
				return time.Duration(s * float64(time.Second))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
}

// agentPeakRSS is the agent's VmHWM in KiB (mode serve), read while it
// runs; 0 otherwise.
func (t *target) agentPeakRSS() int64 {
	if t.agent == nil || t.agent.Process == nil {
		return 0
	}
	return procStatus(t.agent.Process.Pid, "VmHWM")
}

// stop ends the jobrun processes: exec with SIGINT (which ends its
// linger); for serve, the agent is waited for (it exits once the server
// acknowledged the exit event), then serve gets SIGTERM.
func (t *target) stop() {
	t.start.Close()
	if t.agent != nil && t.agent.Process != nil {
		waitOrKill(t.agent, 40*time.Second)
	}
	switch {
	case t.exited != nil:
		t.server.Process.Signal(syscall.SIGTERM)
		select {
		case <-t.exited:
		case <-time.After(15 * time.Second):
			t.server.Process.Kill()
			<-t.exited
		}
	case t.server != nil && t.server.Process != nil:
		t.server.Process.Signal(syscall.SIGTERM)
		waitOrKill(t.server, 15*time.Second)
	}
	os.RemoveAll(t.dir)
}

// waitOrKill waits for cmd to exit, killing it after d.
func waitOrKill(cmd *exec.Cmd, d time.Duration) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
	}
}

// tail keeps the last 8 KiB written to it: the jobrun processes' stderr,
// shown when something fails.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
