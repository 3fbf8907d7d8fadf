package ingest

import "time"

// Metrics receives what a Server counts, for monitoring: cmd/jobrun
// exports it in Prometheus' format at GET /metrics. It is called once per
// committed batch (never per event) and must not block. A nil Metrics
// counts nothing.
type Metrics interface {
	// Ingested counts a batch of events that an agent reported and the
	// store committed: n events, bytes of output in them (line data and
	// terminators, as GET /log serves them), and lag, from the first
	// event's time (the agent's clock) to the commit.
	Ingested(n int, bytes int64, lag time.Duration)
}

// noMetrics is the nil Metrics.
type noMetrics struct{}

func (noMetrics) Ingested(int, int64, time.Duration) {}

func (in *Server) metrics() Metrics {
	if in.Metrics != nil {
		return in.Metrics
	}
	return noMetrics{}
}
