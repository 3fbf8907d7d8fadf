// Command walbench reproduces issue 10's WAL growth with the real binary:
// jobrun serve, N agents (jobrun exec --server) each printing L lines as
// fast as they can, and V viewers per job that replay it over WebSocket
// from after=0, reconnecting as soon as a replay ends (viewer churn). It
// samples the size of serve's -wal file while the agents push (load),
// while the viewers go on replaying the finished jobs (hold), and after
// they stop (tail), and prints a summary line of key=value figures (with
// -series, a line per sample before it).
//
//	walbench -agents 2 -lines 2000000 -viewers 40 -hold 15s -tail 15s
//
// The figures the issue asks about: wal_peak_mib (load), wal_hold_end_mib
// (the WAL -hold after the last agent finished, viewers still replaying),
// settle_seconds (from the last agent's end to the moment the WAL went
// under -bound for good, -1 if it never did), reset_seconds (the same for
// 1 MiB: the WAL truncated), and commit_p99_le_ms and
// commit_max_le_ms (the upper bounds of the buckets of serve's
// jobrun_store_commit_seconds holding the 99th percentile and the slowest
// commit: what the checkpoints cost the writer).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

type config struct {
	bin     string
	agents  int
	lines   int
	viewers int
	hold    time.Duration
	tail    time.Duration
	every   time.Duration
	bound   int64 // MiB
	series  bool
	churn   time.Duration
}

func main() {
	var cfg config
	gen := flag.Int("gen", 0, "be a job printing this many 60-byte lines (internal)")
	flag.StringVar(&cfg.bin, "bin", "", "the jobrun binary (default: go build github.com/jobrun/jobrun/cmd/jobrun)")
	flag.IntVar(&cfg.agents, "agents", 2, "agents, each running one job")
	flag.IntVar(&cfg.lines, "lines", 2_000_000, "lines each job prints")
	flag.IntVar(&cfg.viewers, "viewers", 40, "viewers per job, each replaying it from after=0 again and again")
	flag.DurationVar(&cfg.churn, "churn", 0, "also drop each viewer after a random time up to this and reconnect it from after=0 (0: only at the exit)")
	flag.DurationVar(&cfg.hold, "hold", 15*time.Second, "how long the viewers go on after the last agent finished")
	flag.DurationVar(&cfg.tail, "tail", 15*time.Second, "how long to watch the WAL after the viewers stopped")
	flag.DurationVar(&cfg.every, "every", 500*time.Millisecond, "sampling period")
	flag.Int64Var(&cfg.bound, "bound", 64, "the WAL size, MiB, whose crossing settle_seconds reports")
	flag.BoolVar(&cfg.series, "series", false, "print every sample")
	flag.Parse()
	if *gen > 0 {
		if err := generate(*gen); err != nil {
			fmt.Fprintln(os.Stderr, "walbench -gen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "walbench:", err)
		os.Exit(1)
	}
}

// generate prints n numbered 60-byte lines as fast as stdout takes them.
func generate(n int) error {
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "%08d the quick brown fox jumps over the lazy dog %08d\n", i, i)
	}
	return w.Flush()
}

// sample is the state of the files at one moment.
type sample struct {
	at    time.Duration // since the agents started
	phase string        // load, hold, tail
	wal   int64
	db    int64
}

func run(cfg config) error {
	dir, err := os.MkdirTemp("", "walbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := cfg.bin
	if bin == "" {
		bin = filepath.Join(dir, "jobrun")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/jobrun/jobrun/cmd/jobrun").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"), "JOBRUN_SERVER=", "JOBRUN_TOKEN=")
	db := filepath.Join(dir, "serve.db")
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	base := "http://" + addr
	var serveLog bytes.Buffer
	serve := process(bin, env, &serveLog, "serve", "--db", db, "--addr", addr, "--max-client-conns", "-1")
	if err := serve.Start(); err != nil {
		return err
	}
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	}()
	if err := waitHealthy(base); err != nil {
		return fmt.Errorf("%w; serve's log: %s", err, serveLog.String())
	}

	start := time.Now()
	agents := make([]*exec.Cmd, cfg.agents)
	for i := range agents {
		agents[i] = process(bin, env, io.Discard, "exec", "--server", base, "--quiet", "--name", fmt.Sprintf("walbench-%d", i+1),
			"--", self, "-gen", strconv.Itoa(cfg.lines))
		if err := agents[i].Start(); err != nil {
			return err
		}
	}
	ids, err := waitJobs(base, cfg.agents)
	if err != nil {
		return err
	}

	var (
		mu      sync.Mutex
		phase   = "load"
		samples []sample
	)
	sampleNow := func() {
		mu.Lock()
		defer mu.Unlock()
		samples = append(samples, sample{time.Since(start), phase, fileSize(db + "-wal"), fileSize(db)})
	}
	setPhase := func(p string) {
		mu.Lock()
		phase = p
		mu.Unlock()
	}
	sampling, stopSampling := context.WithCancel(context.Background())
	defer stopSampling()
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(cfg.every)
		defer tick.Stop()
		for {
			sampleNow()
			select {
			case <-sampling.Done():
				return
			case <-tick.C:
			}
		}
	})

	viewing, stopViewers := context.WithCancel(context.Background())
	defer stopViewers()
	var replays, viewerErrs atomic.Int64
	var vwg sync.WaitGroup
	for _, id := range ids {
		url := "ws" + strings.TrimPrefix(base, "http") + "/api/jobs/" + id + "/stream?after=0"
		for range cfg.viewers {
			vwg.Go(func() { replay(viewing, url, cfg.churn, &replays, &viewerErrs) })
		}
	}

	for _, a := range agents {
		if err := a.Wait(); err != nil {
			stopViewers()
			return fmt.Errorf("agent: %v", err)
		}
	}
	loadEnd := time.Since(start)
	setPhase("hold")
	time.Sleep(cfg.hold)
	sampleNow()
	mu.Lock()
	holdEnd := samples[len(samples)-1]
	mu.Unlock()
	stopViewers()
	vwg.Wait()
	setPhase("tail")
	time.Sleep(cfg.tail)
	stopSampling()
	wg.Wait()
	commitP99, commitMax, metricWAL := scrapeMetrics(base)

	var peak, holdMax int64
	for _, s := range samples {
		if cfg.series {
			fmt.Printf("t=%.1f phase=%s wal_mib=%.1f db_mib=%.1f\n", s.at.Seconds(), s.phase, mib(s.wal), mib(s.db))
		}
		switch s.phase {
		case "load":
			peak = max(peak, s.wal)
		case "hold":
			holdMax = max(holdMax, s.wal)
		}
	}
	last := samples[len(samples)-1]
	fmt.Printf("agents=%d lines=%d viewers_per_job=%d load_seconds=%.1f replays=%d viewer_errors=%d "+
		"wal_peak_mib=%.1f wal_hold_max_mib=%.1f wal_hold_end_mib=%.1f settle_seconds=%.1f reset_seconds=%.1f wal_end_mib=%.1f "+
		"metric_wal_mib=%.1f db_mib=%.1f commit_p99_le_ms=%.1f commit_max_le_ms=%.1f\n",
		cfg.agents, cfg.lines, cfg.viewers, loadEnd.Seconds(), replays.Load(), viewerErrs.Load(),
		mib(peak), mib(holdMax), mib(holdEnd.wal), settle(samples, loadEnd, cfg.bound<<20), settle(samples, loadEnd, 1<<20), mib(last.wal),
		mib(metricWAL), mib(last.db), commitP99*1000, commitMax*1000)
	return nil
}

// settle returns the seconds from the end of the load to the first sample
// after the last one at or over bound (0 if none was), -1 if the last
// sample is over it.
func settle(samples []sample, loadEnd time.Duration, bound int64) float64 {
	at := loadEnd
	for i, s := range samples {
		if s.phase != "load" && s.wal >= bound {
			if i+1 == len(samples) {
				return -1
			}
			at = samples[i+1].at
		}
	}
	return (at - loadEnd).Seconds()
}

// replay replays the job at url from after=0 to its exit event (or, with
// churn > 0, for a random time up to churn), again and again, until ctx
// ends. It reads whole messages but looks only for the exit event, so that
// the client costs little next to the server.
func replay(ctx context.Context, url string, churn time.Duration, replays, errs *atomic.Int64) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	var buf bytes.Buffer
	for ctx.Err() == nil {
		var deadline time.Time
		if churn > 0 {
			deadline = time.Now().Add(rand.N(churn))
		}
		c, _, err := d.DialContext(ctx, url, nil)
		if err != nil {
			if ctx.Err() == nil {
				errs.Add(1)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		c.SetReadLimit(64 << 20)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		for {
			_, r, err := c.NextReader()
			if err == nil {
				buf.Reset()
				_, err = buf.ReadFrom(r)
			}
			if err != nil {
				if ctx.Err() == nil && !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					errs.Add(1)
				}
				break
			}
			if bytes.Contains(buf.Bytes(), []byte(`"type":"exit"`)) {
				replays.Add(1)
				break
			}
			if !deadline.IsZero() && time.Now().After(deadline) {
				break
			}
		}
		stop()
		c.Close()
	}
}

// process prepares a jobrun process that dies with this one.
func process(bin string, env []string, stderr io.Writer, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHealthy waits until serve answers /healthz.
func waitHealthy(base string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("serve did not answer /healthz within 30 s")
}

// waitJobs waits until the server lists n jobs and returns their ids.
func waitJobs(base string, n int) ([]string, error) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/api/jobs")
		if err != nil {
			continue
		}
		var list struct {
			Jobs []struct {
				ID int64 `json:"id"`
			} `json:"jobs"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err == nil && len(list.Jobs) >= n {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = strconv.FormatInt(list.Jobs[i].ID, 10)
			}
			return ids, nil
		}
	}
	return nil, fmt.Errorf("the server did not list %d jobs within 30 s", n)
}

// scrapeMetrics reads serve's commit latency (p99 and the upper bound of
// the highest bucket reached, in seconds, from the histogram's buckets)
// and jobrun_store_wal_bytes.
func scrapeMetrics(base string) (p99, maxBound float64, wal int64) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1, -1, -1
	}
	defer resp.Body.Close()
	type bucket struct{ le, n float64 }
	var buckets []bucket
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if rest, ok := strings.CutPrefix(l, `jobrun_store_commit_seconds_bucket{le="`); ok {
			le, n, _ := strings.Cut(rest, `"} `)
			b := bucket{math.Inf(1), 0}
			if le != "+Inf" {
				b.le, _ = strconv.ParseFloat(le, 64)
			}
			b.n, _ = strconv.ParseFloat(n, 64)
			buckets = append(buckets, b)
		}
		if rest, ok := strings.CutPrefix(l, "jobrun_store_wal_bytes "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			wal = int64(v)
		}
	}
	if len(buckets) == 0 {
		return -1, -1, wal
	}
	total := buckets[len(buckets)-1].n
	p99, maxBound = -1, -1
	for i, b := range buckets {
		if p99 < 0 && b.n >= 0.99*total {
			p99 = b.le
		}
		if b.n == total && (i == 0 || buckets[i-1].n < total) {
			maxBound = b.le
		}
	}
	return p99, maxBound, wal
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
