package api_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/search"
	"github.com/jobrun/jobrun/stream/streamtest"
)

var replayEvents = flag.Int("replay-events", 1_000_000, "events stored for BenchmarkReplay")

// lastSeq returns the seq of the last event of a stream message, scanning
// from its end (the benchmark client does not decode every event).
func lastSeq(msg []byte) jobs.Seq {
	i := bytes.LastIndex(msg, []byte(`{"seq":`))
	if i < 0 {
		return 0
	}
	rest := msg[i+len(`{"seq":`):]
	j := bytes.IndexByte(rest, ',')
	if j < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
	return jobs.Seq(n)
}

// cpuTime is the CPU time this process used so far: on a shared machine it
// is steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// receive reads a stream until the close, checking it reached want.
func receive(b *testing.B, ctx context.Context, base, path string, want jobs.Seq) {
	c, _, err := websocket.Dial(ctx, streamtest.WSURL(base, path), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	var last jobs.Seq
	var buf bytes.Buffer // reused: a browser does not allocate per message either
	for {
		_, r, err := c.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure || last != want {
				b.Errorf("stream ended at seq %d (want %d): %v", last, want, err)
			}
			return
		}
		if s := lastSeq(buf.Bytes()); s > 0 {
			last = s
		}
	}
}

// BenchmarkReplay: a finished job of -replay-events ~60-byte lines,
// replayed to one WebSocket client over loopback.
func BenchmarkReplay(b *testing.B) {
	ctx := streamtest.Ctx(b)
	db := streamtest.OpenDB(b)
	hub := streamtest.NewHub(b, db, stream.HubOptions{})
	base := streamtest.Serve(b, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(b, db)
	n := *replayEvents
	for s := 1; s <= n; s += 5000 {
		k := min(5000, n-s+1)
		if err := db.AppendEvents(ctx, j.ID, streamtest.Lines(jobs.Seq(s), k)); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.AppendEvents(ctx, j.ID, []jobs.Event{streamtest.ExitEvent(jobs.Seq(n + 1))}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		receive(b, ctx, base, "/api/jobs/1/stream", jobs.Seq(n+1))
	}
	b.ReportMetric(float64(n+1)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric((cpuTime()-cpu).Seconds()*1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkLive: batches of 500 lines committed and published while one
// WebSocket client receives them; b.N batches.
func BenchmarkLive(b *testing.B) {
	ctx := streamtest.Ctx(b)
	db := streamtest.OpenDB(b)
	hub := streamtest.NewHub(b, db, stream.HubOptions{})
	base := streamtest.Serve(b, streamtest.NewServer(db, hub))
	j := streamtest.NewJob(b, db)
	const batch = 500
	total := jobs.Seq(b.N*batch + 1)
	// Events are made before the clock starts: the runner's cost is not
	// measured here.
	batches := make([][]jobs.Event, b.N)
	for i := range batches {
		batches[i] = streamtest.Lines(jobs.Seq(i*batch+1), batch)
	}
	done := make(chan struct{})
	b.ResetTimer()
	cpu := cpuTime()
	go func() {
		defer close(done)
		receive(b, ctx, base, "/api/jobs/1/stream", total)
	}()
	for _, evs := range batches {
		if err := db.AppendEvents(ctx, j.ID, evs); err != nil {
			b.Fatal(err)
		}
		hub.Publish(j.ID, evs)
	}
	exit := []jobs.Event{streamtest.ExitEvent(total)}
	if err := db.AppendEvents(ctx, j.ID, exit); err != nil {
		b.Fatal(err)
	}
	hub.Publish(j.ID, exit)
	<-done
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric((cpuTime()-cpu).Seconds()*1e9/float64(b.N*batch), "cpu-ns/line")
}

// BenchmarkProgress answers GET /api/jobs/{ref}/progress for a finished
// job of 1 M lines with a progress event every 1000 lines (and a second
// job with one every 10 lines): the whole log is read, page by page.
func BenchmarkProgress(b *testing.B) {
	db := streamtest.OpenDB(b)
	hub := streamtest.NewHub(b, db, stream.HubOptions{})
	base := streamtest.Serve(b, streamtest.NewServer(db, hub))
	sparse, _ := progressJob(b, db, 1_000_000, 1000, 50)
	dense, _ := progressJob(b, db, 1_000_000, 10, 50)
	for _, bc := range []struct {
		name string
		j    jobs.Job
	}{{"1k progress events", sparse}, {"100k progress events", dense}} {
		j := bc.j
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if status, _, body := get(b, base, fmt.Sprintf("/api/jobs/%d/progress", j.ID)); status != 200 {
					b.Fatalf("%d %s", status, body)
				}
			}
		})
	}
}

var searchLines = flag.Int("search-lines", 2_000_000, "lines stored for BenchmarkSearch")

// BenchmarkSearch: counting the matches in a finished job of
// -search-lines ~50-byte lines (the whole log, in one Search call, as one
// request with an ample budget reads it). A regular expression with a
// literal that every match holds runs only on the lines that hold it.
func BenchmarkSearch(b *testing.B) {
	f, err := buildSearchLog(b, *searchLines)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		q    search.Query
		want int
	}{
		{"literal", search.Query{Text: "needle"}, 5},
		{"case", search.Query{Text: "needle", Case: true}, 3},
		{"regex", search.Query{Text: `ne+dle\b`, Regex: true}, 5},
		{"regex-without-literal", search.Query{Text: `\d{7}`, Regex: true}, -1}, // every line runs the regexp
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := streamtest.Ctx(b)
			cpu := cpuTime()
			for b.Loop() {
				res, err := search.Find(ctx, f.db, f.job, c.q, search.Budget{})
				if err != nil || res.Total == nil || (c.want >= 0 && *res.Total != c.want) {
					b.Fatalf("search %q: %+v %v, want a total of %d", c.q.Text, res, err, c.want)
				}
			}
			b.ReportMetric(float64(f.last)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mevents/s")
			b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
