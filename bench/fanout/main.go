// Command fanout measures jobrun with many viewers of one job (issue 12):
// it starts the real binary (jobrun exec, or jobrun serve with an agent
// jobrun exec --server), connects N WebSocket viewers to the job's stream
// with an independent client (gorilla/websocket), runs a job printing
// lines at a given rate, and prints the latency from the moment jobrun
// read a line (the event's time) to the moment a viewer had it, how many
// lines were delivered, how many viewers were closed and why, and the
// server's peak RSS and CPU time.
//
//	fanout -mode exec -viewers 1000 -rate 1000 -burst 10 -duration 30s
//	fanout -mode serve -viewers 5000 -rate 20 -burst 4 -duration 30s
//	fanout -viewers 1 -rate 0 -lines 1000000 -format seq      # seq 1 1000000
//	fanout -viewers 1 -stalled 100 -rate 0 -lines 1000000     # isolation
//	fanout -replay -viewers 50 -rate 0 -lines 1000000         # replay
//
// How live latency is measured honestly: the job's command is this program
// re-executed as a line generator (fanout -gen), which waits for a start
// signal on its stdin (jobrun exec passes its stdin through). The viewers
// connect with after=0 to the registered job while it has printed
// nothing, and only when all are connected (and the server's memory has
// been read) does the generator start. Every event a viewer gets is then
// live, and its latency is now minus the event's time, the moment jobrun
// read the line: the same machine's clock. One sample per message, from
// its first (oldest) event; the client reads the whole message but parses
// only the first event's seq and time and the last event's seq and type.
//
// With -replay the job runs to its end first with no viewer; then all
// viewers connect at once from after=0 and each is timed until it has the
// exit event. In mode exec, exec exits with its job when nobody watches,
// so the replays are served by jobrun serve on exec's database, as a user
// who opens the job later gets them.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// config is a run's parameters (the flags).
type config struct {
	mode     string        // "exec" or "serve"
	viewers  int           // viewers that read
	stalled  int           // viewers that connect and never read
	rate     float64       // lines per second; 0: as fast as possible
	burst    int           // lines per burst
	duration time.Duration // job length at rate, when lines is 0
	lines    int           // lines in all (wins over duration)
	format   string        // line format: fox or seq
	bin      string        // jobrun binary; "": build it
	replay   bool          // viewers connect after the job ended
	json     bool          // print JSON
	conc     int           // dials in flight
	readBuf  int           // each viewer's read buffer
	timeout  time.Duration // the whole run; 0: from the job's length
	maxRSS   int64         // MiB: abort when the server's RSS passes it
	perf     string        // record a perf profile of the server here
	label    string        // scenario name, printed with the results
}

// totalLines is how many lines the job prints.
func (c config) totalLines() int {
	if c.lines > 0 || c.rate <= 0 {
		return c.lines
	}
	return int(c.rate * c.duration.Seconds())
}

func main() {
	var cfg config
	var gen genConfig
	genMode := flag.Bool("gen", false, "be the line generator (the job's command; internal)")
	flag.StringVar(&gen.report, "report", "", "with -gen: write the runtime to this file")
	flag.StringVar(&cfg.mode, "mode", "exec", "exec: viewers watch jobrun exec; serve: they watch jobrun serve, to which an agent (exec --server) reports the job")
	flag.IntVar(&cfg.viewers, "viewers", 100, "viewers that read the stream, one connection each")
	flag.IntVar(&cfg.stalled, "stalled", 0, "extra viewers that connect and never read (isolation)")
	flag.Float64Var(&cfg.rate, "rate", 1000, "lines per second; 0: as fast as the pipe takes them")
	flag.IntVar(&cfg.burst, "burst", 10, "lines per burst (one write each)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "the job's length at -rate (when -lines is 0)")
	flag.IntVar(&cfg.lines, "lines", 0, "lines the job prints (wins over -duration; needed with -rate 0)")
	flag.StringVar(&cfg.format, "format", "fox", `lines: "fox" (60 bytes, numbered) or "seq" (as seq 1 N prints)`)
	flag.StringVar(&cfg.bin, "bin", "", "the jobrun binary (default: go build ./cmd/jobrun into a temporary folder)")
	flag.BoolVar(&cfg.replay, "replay", false, "run the job first, then connect the viewers from after=0 and time each until the exit event")
	flag.BoolVar(&cfg.json, "json", false, "print the results as JSON")
	flag.IntVar(&cfg.conc, "conc", 32, "connections being opened at once")
	flag.IntVar(&cfg.readBuf, "readbuf", 16<<10, "each viewer's read buffer, bytes")
	flag.DurationVar(&cfg.timeout, "timeout", 0, "bound on the run (default: the job's length + 3 min)")
	flag.Int64Var(&cfg.maxRSS, "max-rss", 4096, "abort when the server's RSS passes this many MiB")
	flag.StringVar(&cfg.perf, "perf", "", "record a CPU profile of the server (perf record -g) while the job runs, to this file")
	flag.StringVar(&cfg.label, "label", "", "a name for the scenario, printed with the results")
	flag.Parse()

	if *genMode {
		gen.rate, gen.burst, gen.lines, gen.format = cfg.rate, cfg.burst, cfg.lines, cfg.format
		if err := generate(gen); err != nil {
			fmt.Fprintln(os.Stderr, "fanout -gen:", err)
			os.Exit(1)
		}
		return
	}
	if err := check(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(2)
	}
	res, err := run(cfg)
	if res != nil {
		res.print(os.Stdout, cfg.json)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// check validates cfg and fills in defaults.
func check(cfg *config) error {
	switch {
	case cfg.mode != "exec" && cfg.mode != "serve":
		return fmt.Errorf("-mode %q: want exec or serve", cfg.mode)
	case cfg.format != "fox" && cfg.format != "seq":
		return fmt.Errorf("-format %q: want fox or seq", cfg.format)
	case cfg.viewers < 0 || cfg.stalled < 0 || cfg.conc < 1 || cfg.burst < 1 || cfg.rate < 0:
		return fmt.Errorf("-viewers, -stalled, -rate: at least 0; -conc, -burst: at least 1")
	case cfg.totalLines() <= 0:
		return fmt.Errorf("the job prints no line: give -lines (needed with -rate 0) or -duration")
	case cfg.replay && cfg.stalled > 0:
		return fmt.Errorf("-stalled is for live runs")
	}
	if cfg.timeout == 0 {
		cfg.timeout = 3 * time.Minute
		if cfg.rate > 0 {
			cfg.timeout += time.Duration(float64(cfg.totalLines()) / cfg.rate * float64(time.Second))
		}
	}
	return nil
}

// run does one measurement.
func run(cfg config) (*result, error) {
	limit, err := raiseFileLimit()
	if err != nil {
		return nil, fmt.Errorf("raise the open-files limit: %w", err)
	}
	if n := uint64(cfg.viewers+cfg.stalled) + 100; limit < n {
		fmt.Fprintf(os.Stderr, "fanout: warning: open-files limit %d < %d needed\n", limit, n)
	}
	bin := cfg.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "fanout-bin-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if bin, err = build(dir); err != nil {
			return nil, err
		}
	}
	res := &result{Label: cfg.label, Mode: cfg.mode, Viewers: cfg.viewers, Stalled: cfg.stalled,
		Rate: cfg.rate, Burst: cfg.burst, Lines: cfg.totalLines(), Format: cfg.format, Replay: cfg.replay,
		LoadBefore: loadAvg()}
	t, err := startTarget(cfg, bin)
	if t != nil {
		defer t.stop()
	}
	if err != nil {
		return nil, err
	}
	res.ServerFileLimit = fileLimit(t.pid())
	if cfg.replay {
		err = runReplay(cfg, t, res)
	} else {
		err = runLive(cfg, t, res)
	}
	res.PeakRSSKiB = max(res.PeakRSSKiB, procStatus(t.pid(), "VmHWM"))
	res.AgentPeakRSSKiB = max(res.AgentPeakRSSKiB, t.agentPeakRSS())
	res.LoadAfter = loadAvg()
	if err != nil {
		err = fmt.Errorf("%w\njobrun's stderr (tail):\n%s", err, t.logs)
	}
	return res, err
}

// build compiles ./cmd/jobrun of the module this is run in into dir.
func build(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("no -bin given and not inside jobrun's module (go env GOMOD: %q, %v)", mod, err)
	}
	bin := filepath.Join(dir, "jobrun")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/jobrun")
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/jobrun: %v\n%s", err, out)
	}
	return bin, nil
}
