package ingest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream/ingest"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// countingMetrics records what a Server counts.
type countingMetrics struct {
	mu     sync.Mutex
	events int
	bytes  int64
	lags   []time.Duration
}

func (m *countingMetrics) Ingested(n int, bytes int64, lag time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events += n
	m.bytes += bytes
	m.lags = append(m.lags, lag)
}

// TestMetricsIngested: events an agent reports count once, when stored.
func TestMetricsIngested(t *testing.T) {
	db := streamtest.OpenDB(t)
	m := &countingMetrics{}
	s := startIngest(t, db, "", func(in *ingest.Server) { in.Metrics = m })
	a := dialIngest(t, s.base())
	a.welcome(jobs.NewUID())
	evs := streamtest.Lines(1, 5)
	var bytes int64
	for _, e := range evs {
		bytes += int64(len(e.Data) + len(e.EOL))
	}
	a.ack(evs)
	a.ack(evs[:3]) // a resend stores nothing
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events != 5 || m.bytes != bytes || len(m.lags) != 1 || m.lags[0] < 0 {
		t.Errorf("ingested %d events, %d bytes, lags %v; want 5, %d, one lag >= 0", m.events, m.bytes, m.lags, bytes)
	}
}
