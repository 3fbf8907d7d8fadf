// Command replicabench measures jobrun serve replicas on PostgreSQL
// against one jobrun serve on SQLite, with the real binary, in one run:
//
//  1. aggregate ingest: 3 agents (jobrun exec --server -- cat FILE) at
//     once into one SQLite serve, then into 2 replicas of one PostgreSQL
//     database (agents 1 and 3 on replica A, agent 2 on B); timed from
//     their start to the last one's exit (everything acknowledged);
//  2. replay: a new viewer reads one of those finished jobs (LINES lines)
//     over WebSocket from replica B;
//  3. live latency: a job prints a line every 5 ms; a viewer measures,
//     for each line, the time from the agent reading it (the event's
//     time) to receiving it: single SQLite serve, viewer on the agent's
//     replica, viewer on the other replica.
//
// It prints one line of key=value figures; bench/replicas.sh makes the
// PostgreSQL database, runs it several times and takes medians.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/bench/benchws"
)

func main() {
	bin := flag.String("bin", "jobrun", "jobrun binary")
	file := flag.String("file", "", "input file for cat")
	lines := flag.Int("lines", 0, "number of lines in the file")
	pg := flag.String("pg", "", "URL of an empty PostgreSQL database")
	emit := flag.Int("emit", 0, "(the live job) print this many lines, one every 5 ms, and exit")
	flag.Parse()
	if *emit > 0 {
		for i := 1; i <= *emit; i++ {
			fmt.Printf("live line %d\n", i)
			time.Sleep(5 * time.Millisecond)
		}
		return
	}
	if err := run(*bin, *file, *lines, *pg); err != nil {
		fmt.Fprintln(os.Stderr, "replicabench:", err)
		os.Exit(1)
	}
}

func run(bin, file string, lines int, pg string) error {
	dir, err := os.MkdirTemp("", "replicabench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	b := bench{bin: bin, dir: dir}
	defer b.stopAll()

	// 1. SQLite: one serve, three agents.
	sq, err := b.serve(filepath.Join(dir, "jobrun.db"))
	if err != nil {
		return err
	}
	sqRate, err := b.ingest([]string{sq, sq, sq}, file, lines)
	if err != nil {
		return fmt.Errorf("sqlite ingest: %w", err)
	}
	sqLive, err := b.live(ctx, sq, sq)
	if err != nil {
		return fmt.Errorf("sqlite live: %w", err)
	}

	// PostgreSQL: two replicas, agents 1 and 3 on A, 2 on B.
	ra, err := b.serve(pg)
	if err != nil {
		return err
	}
	rb, err := b.serve(pg)
	if err != nil {
		return err
	}
	pgRate, err := b.ingest([]string{ra, rb, ra}, file, lines)
	if err != nil {
		return fmt.Errorf("postgres ingest: %w", err)
	}

	// 2. Replay of job 1 (LINES lines, in about as many events, and the
	// exit) from replica B.
	resp, err := http.Get(rb + "/api/jobs/1")
	if err != nil {
		return err
	}
	var job struct {
		LastSeq int `json:"last_seq"`
	}
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	start := time.Now()
	n, err := benchws.DialCount(ctx, strings.Replace(rb, "http://", "ws://", 1)+"/api/jobs/1/stream?after=0")
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	replay := time.Since(start)
	if n != job.LastSeq || n < lines+1 {
		return fmt.Errorf("replay got %d events, want the job's %d (%d lines and the exit)", n, job.LastSeq, lines)
	}

	// 3. Live latency: same replica, then across replicas.
	same, err := b.live(ctx, ra, ra)
	if err != nil {
		return fmt.Errorf("postgres live, same replica: %w", err)
	}
	cross, err := b.live(ctx, ra, rb)
	if err != nil {
		return fmt.Errorf("postgres live, across replicas: %w", err)
	}

	fmt.Printf("sqlite_ingest_lines_per_s=%.0f postgres_ingest_lines_per_s=%.0f ratio=%.2f replay_seconds=%.3f "+
		"sqlite_live_p50_ms=%.1f sqlite_live_p99_ms=%.1f same_replica_p50_ms=%.1f same_replica_p99_ms=%.1f "+
		"cross_replica_p50_ms=%.1f cross_replica_p99_ms=%.1f\n",
		sqRate, pgRate, pgRate/sqRate, replay.Seconds(), ms(sqLive, 50), ms(sqLive, 99), ms(same, 50), ms(same, 99),
		ms(cross, 50), ms(cross, 99))
	return nil
}

// bench holds the servers it started.
type bench struct {
	bin, dir string
	servers  []*exec.Cmd
}

// serve starts jobrun serve on db on a free port and waits until it
// answers; it returns its base URL.
func (b *bench) serve(db string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(b.bin, "serve", "--addr", addr, "--db", db, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	b.servers = append(b.servers, cmd)
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base, nil
			}
		}
	}
	return "", fmt.Errorf("jobrun serve did not answer at %s", addr)
}

func (b *bench) stopAll() {
	for _, s := range b.servers {
		s.Process.Signal(os.Interrupt)
		s.Wait()
	}
}

// agent runs `jobrun exec -q --server server -- args...` with a spool of
// its own.
func (b *bench) agent(server string, args ...string) *exec.Cmd {
	cmd := exec.Command(b.bin, append([]string{"exec", "-q", "--server", server, "--"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(b.dir, "state"), "JOBRUN_DB=", "JOBRUN_SERVER=")
	return cmd
}

// ingest runs one agent per server (cat file) at once and returns the
// aggregate lines per second, to the last acknowledgement.
func (b *bench) ingest(servers []string, file string, lines int) (float64, error) {
	var wg sync.WaitGroup
	errs := make(chan error, len(servers))
	start := time.Now()
	for _, s := range servers {
		cmd := b.agent(s, "cat", file)
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil || bytes.Contains(out, []byte("NOT DELIVERED")) {
				errs <- fmt.Errorf("agent: %v: %s", err, out)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(lines*len(servers)) / elapsed.Seconds(), nil
}

// live runs the emitting job through agentServer and measures, on a
// viewer of viewerServer, each line's latency from its event time.
func (b *bench) live(ctx context.Context, agentServer, viewerServer string) ([]time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	const n = 600
	cmd := b.agent(agentServer, self, "-emit", fmt.Sprint(n))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Wait()
	// "jobrun: job 7: http://.../jobs/<uid or id>": the uid names the job
	// on the server before the agent knows its id there.
	r := bufio.NewReader(stderr)
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("no URL line: %v", err)
	}
	uid := strings.TrimSpace(line[strings.LastIndex(line, "/")+1:])
	go r.WriteTo(io.Discard)
	var id int64
	for deadline := time.Now().Add(30 * time.Second); id == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("job %s never showed up on %s", uid, viewerServer)
		}
		resp, err := http.Get(viewerServer + "/api/jobs/" + uid)
		if err != nil {
			continue
		}
		var j struct{ ID int64 }
		json.NewDecoder(resp.Body).Decode(&j)
		resp.Body.Close()
		id = j.ID
	}
	c, _, err := websocket.Dial(ctx, strings.Replace(viewerServer, "http://", "ws://", 1)+fmt.Sprintf("/api/jobs/%d/stream?after=0", id), nil)
	if err != nil {
		return nil, err
	}
	defer c.CloseNow()
	var lat []time.Duration
	skip := true // events stored before the viewer connected are history, not live
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				break
			}
			return nil, err
		}
		now := time.Now()
		var batch []struct {
			Type string    `json:"type"`
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(msg, &batch); err != nil {
			return nil, err
		}
		if skip {
			skip = false
			continue
		}
		for _, e := range batch {
			if e.Type == "line" {
				lat = append(lat, now.Sub(e.Time))
			}
		}
	}
	if len(lat) < n/2 {
		return nil, fmt.Errorf("only %d live lines measured", len(lat))
	}
	return lat, nil
}

// ms is the p-th percentile of d in milliseconds.
func ms(d []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[(len(s)-1)*p/100].Microseconds()) / 1000
}
