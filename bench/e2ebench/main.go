// Command e2ebench measures jobrun end to end with the real binary: ingest
// of a large output (jobrun exec --quiet -- cat FILE), one live viewer
// receiving every line over WebSocket while it is stored, and the replay of
// the finished job to a new viewer (from jobrun serve). It prints one line
// per run; bench/run.sh takes medians.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/bench/benchws"
)

func main() {
	bin := flag.String("bin", "jobrun", "jobrun binary")
	file := flag.String("file", "", "input file for cat")
	lines := flag.Int("lines", 0, "number of lines in the file")
	replayURL := flag.String("replay", "", "only replay this stream URL (ws://.../api/jobs/N/stream) -times times")
	times := flag.Int("times", 3, "with -replay: how many replays")
	flag.Parse()
	if *replayURL != "" {
		for i := 0; i < *times; i++ {
			start := time.Now()
			n, err := benchws.DialCount(context.Background(), *replayURL)
			if err != nil {
				fmt.Fprintln(os.Stderr, "e2ebench:", err)
				os.Exit(1)
			}
			fmt.Printf("replay_events=%d replay_seconds=%.3f\n", n, time.Since(start).Seconds())
		}
		return
	}
	if err := run(*bin, *file, *lines); err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
}

var urlRE = regexp.MustCompile(`jobrun: job (\d+): (http://\S+)\n`)

func run(bin, file string, lines int) error {
	dir, err := os.MkdirTemp("", "e2ebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "jobrun.db")

	// 1. Ingest alone: no viewer.
	start := time.Now()
	cmd := exec.Command(bin, "exec", "--quiet", "--linger", "0", "--addr", "127.0.0.1:0", "--db", db, "--", "cat", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ingest run: %v: %s", err, out)
	}
	ingest := time.Since(start)

	// 2. Ingest with one live viewer. exec exits as soon as nobody needs
	// it any more, so the job waits for a line on its stdin, sent once
	// the viewer is connected; the clock starts then.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd = exec.Command(bin, "exec", "--quiet", "--addr", "127.0.0.1:0", "--db", db, "--",
		"sh", "-c", `read go && exec cat "$0"`, file)
	gate, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no URL line: %v", err)
	}
	m := urlRE.FindStringSubmatch(line)
	if m == nil {
		return fmt.Errorf("unexpected first stderr line %q", line)
	}
	wsURL := strings.Replace(m[2], "http://", "ws://", 1)
	wsURL = strings.Replace(wsURL, "/jobs/", "/api/jobs/", 1) + "/stream?after=0"
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		return err
	}
	start = time.Now()
	if _, err := gate.Write([]byte("go\n")); err != nil {
		return err
	}
	gate.Close()
	n, err := benchws.Count(ctx, c)
	if err != nil {
		return err
	}
	liveTime := time.Since(start)
	// A line may come in pieces (a read that ends mid-line and a pause
	// before the rest): at least one event per line, and the exit.
	if n < lines+1 {
		return fmt.Errorf("live viewer got %d events, want at least %d", n, lines+1)
	}
	live := n // events
	cmd.Wait()
	hwm := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB

	// 3. Replay of the finished job to a new viewer, from jobrun serve.
	srv, base, err := serve(bin, db)
	if err != nil {
		return err
	}
	defer func() {
		srv.Process.Signal(os.Interrupt)
		srv.Wait()
	}()
	replayURL := strings.Replace(base, "http://", "ws://", 1) + "/api/jobs/" + m[1] + "/stream?after=0"
	cpu0 := cpuTime(srv.Process.Pid)
	start = time.Now()
	n, err = benchws.DialCount(ctx, replayURL)
	if err != nil {
		return err
	}
	replay := time.Since(start)
	replayCPU := cpuTime(srv.Process.Pid) - cpu0
	if n != live {
		return fmt.Errorf("replay got %d events, the live viewer %d", n, live)
	}

	fmt.Printf("ingest_lines_per_s=%.0f live_lines_per_s=%.0f replay_seconds=%.3f replay_server_cpu_seconds=%.3f live_peak_rss_kib=%d\n",
		float64(lines)/ingest.Seconds(), float64(lines)/liveTime.Seconds(), replay.Seconds(), replayCPU.Seconds(), hwm)
	return nil
}

// serve starts jobrun serve on db on a free loopback port and returns it
// with its base URL once it listens.
func serve(bin, db string) (*exec.Cmd, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--db", db)
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return cmd, base, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, "", fmt.Errorf("jobrun serve did not answer at %s", addr)
}

// cpuTime reads a process's user+system CPU time from /proc (clock ticks
// of 10 ms on Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
