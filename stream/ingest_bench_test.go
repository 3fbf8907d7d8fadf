package stream_test

import (
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// BenchmarkAgentDelivery measures delivering a finished job of 200,000
// lines of about 60 bytes from a spool to a server over loopback: agent
// reads the spool, encodes, server decodes, stores, acknowledges.
func BenchmarkAgentDelivery(b *testing.B) {
	const n = 200000
	for b.Loop() {
		b.StopTimer()
		serverDB := openDB(b)
		s := startIngest(b, serverDB, "")
		sp, j := spoolJob(b)
		for first := jobs.Seq(1); first <= n; first += 5000 {
			commit(b, sp.DB, nil, j.ID, lines(first, 5000))
		}
		commit(b, sp.DB, nil, j.ID, []jobs.Event{exitEvent(n + 1)})
		ag := stream.NewAgent(sp.DB, stream.AgentOptions{URL: s.base()})
		b.StartTimer()
		start := time.Now()
		ag.Start(j)
		if err := ag.Wait(testCtx(b), n+1); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "lines/s")
		b.StopTimer()
		ag.Close()
		s.stop()
		b.StartTimer()
	}
}
