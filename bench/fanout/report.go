package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"
)

// result is one run's figures. The text form is one line of key=value
// pairs in this order (the JSON keys), which bench/run.sh picks apart.
type result struct {
	Label   string  `json:"label,omitempty"`
	Mode    string  `json:"mode"`
	Replay  bool    `json:"replay"`
	Viewers int     `json:"viewers"`
	Stalled int     `json:"stalled"`
	Rate    float64 `json:"rate"`
	Burst   int     `json:"burst"`
	Lines   int     `json:"lines"`
	Format  string  `json:"format"`

	Connected        int            `json:"connected"`
	StalledConnected int            `json:"stalled_connected"`
	ConnectSeconds   float64        `json:"connect_seconds"`
	ConnectErrors    map[string]int `json:"connect_errors,omitempty"`

	// Latency: now minus the first event's time, one sample per message
	// with events, over all viewers (live runs only).
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatencyP999Ms float64 `json:"latency_p999_ms"`
	LatencyMaxMs  float64 `json:"latency_max_ms"`
	Samples       int64   `json:"samples"`

	// Delivery: line events (every event but the exit) received by all
	// viewers, against the job's line events × connected viewers. The job
	// has more line events than lines when jobrun stored a line in pieces
	// (a line left unfinished for 100 ms while jobrun's readers waited for
	// the disk, at -rate 0).
	JobEvents      int64   `json:"job_events"` // the job's last seq (its exit event)
	LinesDelivered int64   `json:"lines_delivered"`
	LinesExpected  int64   `json:"lines_expected"`
	WindowSeconds  float64 `json:"window_seconds"` // start signal to the last viewer's exit event (or the end)
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	LinesPerS      float64 `json:"lines_per_s"` // lines / window: the job's rate as the viewers saw it
	Complete       int     `json:"viewers_complete"`
	Closed         int     `json:"viewers_closed"`
	ClosedBy       string  `json:"closed_by"` // close code:count of viewers closed before the exit event
	Unfinished     int     `json:"viewers_unfinished"`
	Gaps           int64   `json:"gaps"`
	Dups           int64   `json:"dups"`
	Messages       int64   `json:"messages"`
	Heartbeats     int64   `json:"heartbeats"`

	// The server: jobrun exec, or jobrun serve.
	BaseRSSKiB       int64   `json:"base_rss_kib"`        // before the viewers connect (replay: after the job)
	ConnectedRSSKiB  int64   `json:"connected_rss_kib"`   // viewers connected, job not started
	PerViewerKiB     float64 `json:"per_viewer_kib"`      // (connected - base) / connections
	MaxRSSSampledKiB int64   `json:"max_rss_sampled_kib"` // VmRSS every 100 ms while the job ran
	PeakRSSKiB       int64   `json:"peak_rss_kib"`        // VmHWM at the end (replay: since the reset)
	ReplayPeakRSSKiB int64   `json:"replay_peak_rss_kib,omitempty"`
	AgentPeakRSSKiB  int64   `json:"agent_peak_rss_kib,omitempty"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	ServerFileLimit  string  `json:"server_file_limit"`

	GenRuntimeSeconds   float64 `json:"gen_runtime_seconds"` // the child's runtime: start signal to last write
	JobSeconds          float64 `json:"job_seconds,omitempty"`
	ReplayMedianSeconds float64 `json:"replay_median_seconds,omitempty"`
	ReplayMaxSeconds    float64 `json:"replay_max_seconds,omitempty"`

	LoadBefore  string `json:"load_before"`
	LoadAtStart string `json:"load_at_start"`
	LoadAfter   string `json:"load_after"`
	Aborted     string `json:"aborted,omitempty"`
}

// summarize fills in res from the viewers and the counters; start and end
// bound the run; res.JobEvents must be set.
func summarize(res *result, viewers []*viewer, st *stats, start, end time.Time) {
	closed := map[string]int{}
	var lastExit time.Time
	var exits int64
	for _, v := range viewers {
		switch {
		case v.exit:
			res.Complete++
			exits++
			if v.exitAt.After(lastExit) {
				lastExit = v.exitAt
			}
		case v.cut.Load():
			res.Unfinished++
		case v.c != nil:
			res.Closed++
			closed[closeName(v.code)]++
		}
	}
	var codes []string
	for c, n := range closed {
		codes = append(codes, fmt.Sprintf("%s:%d", c, n))
	}
	sort.Strings(codes)
	res.ClosedBy = strings.Join(codes, ",")
	window := end.Sub(start)
	if res.Complete > 0 && res.Complete == len(viewers) {
		window = lastExit.Sub(start)
	}
	res.WindowSeconds = window.Seconds()
	res.LinesDelivered = st.events.Load() - exits
	res.LinesExpected = (res.JobEvents - 1) * int64(len(viewers))
	if window > 0 {
		res.DeliveriesPerS = float64(res.LinesDelivered) / window.Seconds()
		if len(viewers) > 0 {
			res.LinesPerS = float64(res.LinesDelivered) / float64(len(viewers)) / window.Seconds()
		}
	}
	res.LatencyP50Ms = st.lat.quantile(0.50)
	res.LatencyP99Ms = st.lat.quantile(0.99)
	res.LatencyP999Ms = st.lat.quantile(0.999)
	res.LatencyMaxMs = st.lat.maxMs()
	res.Samples = st.lat.n.Load()
	res.Gaps, res.Dups = st.gaps.Load(), st.dups.Load()
	res.Messages, res.Heartbeats = st.messages.Load(), st.heartbeats.Load()
}

// print writes res as JSON or as one line of key=value pairs.
func (res *result) print(w io.Writer, asJSON bool) {
	if asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	v := reflect.ValueOf(*res)
	var parts []string
	for i := 0; i < v.NumField(); i++ {
		key, opts, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		f := v.Field(i)
		if opts == "omitempty" && f.IsZero() {
			continue
		}
		var s string
		switch f.Kind() {
		case reflect.Float64:
			s = fmt.Sprintf("%.3f", f.Float())
		case reflect.Map:
			if f.Len() == 0 {
				continue
			}
			b, _ := json.Marshal(f.Interface())
			s = strings.ReplaceAll(string(b), " ", "_")
		case reflect.String:
			s = strings.ReplaceAll(f.String(), " ", "/")
			if s == "" {
				continue
			}
		default:
			s = fmt.Sprint(f.Interface())
		}
		parts = append(parts, key+"="+s)
	}
	fmt.Fprintln(w, strings.Join(parts, " "))
}
