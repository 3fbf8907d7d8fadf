package ingest_test

import (
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream/ingest"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// BenchmarkAgentDelivery measures delivering a finished job of 200,000
// lines of about 60 bytes from a spool to a server over loopback: agent
// reads the spool, encodes, server decodes, stores, acknowledges.
func BenchmarkAgentDelivery(b *testing.B) {
	const n = 200000
	for b.Loop() {
		b.StopTimer()
		serverDB := streamtest.OpenDB(b)
		s := startIngest(b, serverDB, "")
		sp, j := spoolJob(b)
		for first := jobs.Seq(1); first <= n; first += 5000 {
			streamtest.Commit(b, sp.DB, nil, j.ID, streamtest.Lines(first, 5000))
		}
		streamtest.Commit(b, sp.DB, nil, j.ID, []jobs.Event{streamtest.ExitEvent(n + 1)})
		ag := ingest.NewAgent(sp.DB, ingest.AgentOptions{URL: s.base()})
		b.StartTimer()
		start := time.Now()
		ag.Start(j)
		if err := ag.Wait(streamtest.Ctx(b), n+1); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "lines/s")
		b.StopTimer()
		ag.Close()
		s.stop()
		b.StartTimer()
	}
}
