package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// runLive connects the viewers (and the stalled ones) to the registered
// job, measures the server's memory at rest, starts the generator and
// waits until every reading viewer's stream has ended and the job has.
func runLive(cfg config, t *target, res *result) error {
	time.Sleep(300 * time.Millisecond) // let the just-started server settle
	res.BaseRSSKiB = procStatus(t.pid(), "VmRSS")
	ctx, cancel := runContext(cfg)
	defer cancel(nil)
	st := &stats{}
	d := newDialer(cfg.readBuf)
	var readers sync.WaitGroup
	t0 := time.Now()
	viewers, errs := connectAll(ctx, d, t.streamURL(), cfg.viewers, cfg.conc, func(v *viewer) {
		v.sample = true
		readers.Add(1)
		go func() { defer readers.Done(); v.read(st) }()
	})
	stalled, serrs := connectAll(ctx, d, t.streamURL(), cfg.stalled, cfg.conc, nil)
	defer func() {
		for _, v := range stalled {
			v.c.Close()
		}
	}()
	res.ConnectSeconds = time.Since(t0).Seconds()
	res.Connected, res.StalledConnected = len(viewers), len(stalled)
	res.ConnectErrors = mergeCounts(errs, serrs)
	if len(viewers)+len(stalled) < cfg.viewers+cfg.stalled {
		fmt.Fprintf(os.Stderr, "fanout: %d of %d viewers could not connect: %v\n",
			cfg.viewers+cfg.stalled-len(viewers)-len(stalled), cfg.viewers+cfg.stalled, res.ConnectErrors)
	}
	time.Sleep(time.Second)
	res.ConnectedRSSKiB = procStatus(t.pid(), "VmRSS")
	if n := len(viewers) + len(stalled); n > 0 {
		res.PerViewerKiB = float64(res.ConnectedRSSKiB-res.BaseRSSKiB) / float64(n)
	}
	res.LoadAtStart = loadAvg()

	cpu0, self0 := t.cpuTime(), selfCPU()
	stopPerf := startPerf(cfg.perf, t.pid())
	start := time.Now()
	t.startJob()
	n := int64(len(viewers))
	supervise(ctx, cancel, cfg, t, st, n, res, func() bool {
		return st.done.Load() == n && t.finished()
	})
	end := time.Now()
	stopPerf()
	res.ServerCPUSeconds = (t.cpuTime() - cpu0).Seconds()
	res.ClientCPUSeconds = (selfCPU() - self0).Seconds()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		res.Aborted = cause.Error()
		for _, v := range viewers {
			v.abort()
		}
	}
	readers.Wait()
	if res.Aborted == "" {
		res.GenRuntimeSeconds = t.genRuntime().Seconds()
	}
	if j, err := t.job(); err == nil {
		res.JobEvents = j.LastSeq
	} else {
		for _, v := range viewers { // exec has exited: the exit event's seq
			if v.exit {
				res.JobEvents = max(res.JobEvents, v.last)
			}
		}
	}
	summarize(res, viewers, st, start, end)
	return nil
}

// runReplay runs the job to its end with no viewer, then connects all
// viewers at once from after=0 and times each until its exit event.
func runReplay(cfg config, t *target, res *result) error {
	ctx, cancel := runContext(cfg)
	defer cancel(nil)
	start := time.Now()
	t.startJob()
	if cfg.mode == "exec" {
		if err := t.serveStored(ctx); err != nil {
			return err
		}
	}
	if err := t.waitFinished(ctx); err != nil {
		return err
	}
	res.JobSeconds = time.Since(start).Seconds()
	res.GenRuntimeSeconds = t.genRuntime().Seconds()
	time.Sleep(300 * time.Millisecond)
	if err := resetPeakRSS(t.pid()); err != nil {
		fmt.Fprintf(os.Stderr, "fanout: cannot reset the server's peak RSS (%v): replay_peak_rss_kib is the whole run's\n", err)
	}
	res.BaseRSSKiB = procStatus(t.pid(), "VmRSS")
	res.LoadAtStart = loadAvg()

	st := &stats{}
	d := newDialer(cfg.readBuf)
	viewers := make([]*viewer, cfg.viewers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]int{}
	cpu0, self0 := t.cpuTime(), selfCPU()
	stopPerf := startPerf(cfg.perf, t.pid())
	t0 := time.Now()
	for i := range viewers {
		viewers[i] = &viewer{dialed: time.Now()}
		wg.Add(1)
		go func(v *viewer) {
			defer wg.Done()
			c, retries, err := dial(ctx, d, t.streamURL())
			v.retries = retries
			if err != nil {
				mu.Lock()
				errs[errClass(err)]++
				mu.Unlock()
				v.err, v.code = err, -1
				st.done.Add(1)
				return
			}
			v.c = c
			v.read(st)
		}(viewers[i])
	}
	n := int64(len(viewers))
	supervise(ctx, cancel, cfg, t, st, n, res, func() bool { return st.done.Load() == n })
	end := time.Now()
	stopPerf()
	res.ServerCPUSeconds = (t.cpuTime() - cpu0).Seconds()
	res.ClientCPUSeconds = (selfCPU() - self0).Seconds()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		res.Aborted = cause.Error()
		for _, v := range viewers {
			v.abort()
		}
	}
	wg.Wait()
	res.ReplayPeakRSSKiB = procStatus(t.pid(), "VmHWM")
	res.ConnectErrors = errs
	var times []float64
	connected := 0
	for _, v := range viewers {
		if v.c != nil {
			connected++
		}
		if v.exit {
			times = append(times, v.exitAt.Sub(v.dialed).Seconds())
		}
	}
	res.Connected = connected
	sort.Float64s(times)
	if len(times) > 0 {
		res.ReplayMedianSeconds = times[(len(times)-1)/2]
		res.ReplayMaxSeconds = times[len(times)-1]
	}
	if j, err := t.job(); err == nil {
		res.JobEvents = j.LastSeq
	}
	summarize(res, viewers, st, t0, end)
	return nil
}

// runContext bounds a run by cfg.timeout; its cancel takes the reason
// (the server's memory) that ends a run early.
func runContext(cfg config) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	t := time.AfterFunc(cfg.timeout, func() { cancel(fmt.Errorf("timeout after %s", cfg.timeout)) })
	return ctx, func(cause error) { t.Stop(); cancel(cause) }
}

// connectAll opens n connections to url, conc at a time, calling onConn
// (if not nil) with each as soon as it is open. It returns the viewers
// connected and the dial errors by kind.
func connectAll(ctx context.Context, d *websocket.Dialer, url string, n, conc int, onConn func(*viewer)) ([]*viewer, map[string]int) {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		viewers []*viewer
		errs    = map[string]int{}
		sem     = make(chan struct{}, conc)
	)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			v := &viewer{dialed: time.Now()}
			c, retries, err := dial(ctx, d, url)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[errClass(err)]++
				return
			}
			v.c, v.retries = c, retries
			viewers = append(viewers, v)
			if onConn != nil {
				onConn(v)
			}
		}()
	}
	wg.Wait()
	return viewers, errs
}

// errClass shortens a dial error for counting.
func errClass(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func mergeCounts(ms ...map[string]int) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// supervise waits until done() or ctx ends. Meanwhile it samples the
// server's RSS every 100 ms (ending the run, through cancel, when it passes
// cfg.maxRSS) and prints progress on stderr every 5 s.
func supervise(ctx context.Context, cancel context.CancelCauseFunc, cfg config, t *target, st *stats, n int64, res *result, done func() bool) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	lastPrint := start
	for {
		rss := procStatus(t.pid(), "VmRSS")
		res.MaxRSSSampledKiB = max(res.MaxRSSSampledKiB, rss)
		res.PeakRSSKiB = max(res.PeakRSSKiB, procStatus(t.pid(), "VmHWM")) // exec may exit with its last viewer
		res.AgentPeakRSSKiB = max(res.AgentPeakRSSKiB, t.agentPeakRSS())
		if rss > cfg.maxRSS<<10 {
			cancel(fmt.Errorf("server RSS %d MiB passed -max-rss %d MiB", rss>>10, cfg.maxRSS))
		}
		if time.Since(lastPrint) >= 5*time.Second {
			lastPrint = time.Now()
			fmt.Fprintf(os.Stderr, "fanout: %4.0fs events=%d done=%d/%d rss=%dMiB load=%s\n",
				time.Since(start).Seconds(), st.events.Load(), st.done.Load(), n, rss>>10, loadAvg())
		}
		if done() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// finished reports whether the job has ended (polled once the viewers are
// done, and throughout when there are none).
func (t *target) finished() bool {
	if t.exited != nil {
		select {
		case <-t.exited:
			return true // exec exits only after its job
		default:
		}
	}
	j, err := t.job()
	return err == nil && j.final()
}

// startPerf records a CPU profile of pid with perf until the returned
// function is called; without file it does nothing.
func startPerf(file string, pid int) func() {
	if file == "" {
		return func() {}
	}
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", file, "-p", fmt.Sprint(pid))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "fanout: perf:", err)
		return func() {}
	}
	return func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}
}
