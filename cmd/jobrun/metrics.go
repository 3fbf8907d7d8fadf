package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/ingest"
)

// This file is the one place that knows Prometheus: stream counts through
// api.Metrics and ingest.Metrics and the store reports commits through
// sqlite.Options.OnCommit; serverMetrics turns both, and the database's
// Stats read at each scrape, into metrics on a registry of its own (not
// the global default), served at GET /metrics.

// serverMetrics is jobrun serve's metrics. It implements api.Metrics and ingest.Metrics.
type serverMetrics struct {
	reg     *prometheus.Registry
	viewers *prometheus.GaugeVec
	dropped *prometheus.CounterVec
	resumed *prometheus.CounterVec
	events  prometheus.Counter
	bytes   prometheus.Counter
	lag     prometheus.Histogram
	commit  prometheus.Histogram
	// writeErrors counts write transactions the database failed; health
	// remembers the latest, for /healthz and jobrun_store_degraded.
	writeErrors prometheus.Counter
	health      writeHealth
}

var (
	_ api.Metrics    = (*serverMetrics)(nil)
	_ ingest.Metrics = (*serverMetrics)(nil)
)

// transports are the label values of the viewer metrics, present from the
// start (at 0) so that dashboards and alerts see every series.
var transports = []string{api.TransportWS, api.TransportSSE, api.TransportLongPoll, api.TransportDashboard}

func newServerMetrics() *serverMetrics {
	m := &serverMetrics{
		reg: prometheus.NewRegistry(),
		viewers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jobrun_viewers",
			Help: "Viewers connected now, by transport (ws, sse, longpoll: waiting long polls, dashboard)."}, []string{"transport"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobrun_viewers_dropped_total",
			Help: "Viewers closed because they fell behind (WebSocket 4429, event stream write timeout)."}, []string{"transport"}),
		resumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobrun_viewers_resumed_total",
			Help: "Streams opened with a resume point (after > 0 or Last-Event-ID): viewers that reconnected."}, []string{"transport"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobrun_ingest_events_total",
			Help: "Events reported by agents (jobrun exec --server) and stored."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobrun_ingest_bytes_total",
			Help: "Bytes of job output in the events reported by agents and stored."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "jobrun_ingest_lag_seconds",
			Help:    "Time from an agent's event (its clock) to its commit here, per stored batch (its oldest event).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "jobrun_store_commit_seconds",
			Help:    "Duration of the database's write transactions, from BEGIN (with the wait for the write lock) to the end of COMMIT.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}}),
	}
	m.writeErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "jobrun_store_write_errors_total",
		Help: "Write transactions that the database failed (a full disk, a lock held too long, an I/O error)."})
	degraded := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jobrun_store_degraded",
		Help: "1 while a write to the database failed within the last minute: GET /healthz answers degraded."},
		func() float64 {
			if m.health.check() != nil {
				return 1
			}
			return 0
		})
	for _, tr := range transports {
		m.viewers.WithLabelValues(tr)
		m.dropped.WithLabelValues(tr)
		m.resumed.WithLabelValues(tr)
	}
	m.reg.MustRegister(m.viewers, m.dropped, m.resumed, m.events, m.bytes, m.lag, m.commit, m.writeErrors, degraded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ViewerOpened counts a viewer in.
func (m *serverMetrics) ViewerOpened(tr string) { m.viewers.WithLabelValues(tr).Inc() }

// ViewerClosed counts a viewer out.
func (m *serverMetrics) ViewerClosed(tr string) { m.viewers.WithLabelValues(tr).Dec() }

// ViewerDropped counts a viewer closed for falling behind.
func (m *serverMetrics) ViewerDropped(tr string) { m.dropped.WithLabelValues(tr).Inc() }

// ViewerResumed counts a reconnected viewer.
func (m *serverMetrics) ViewerResumed(tr string) { m.resumed.WithLabelValues(tr).Inc() }

// Ingested counts a stored batch of an agent's events.
func (m *serverMetrics) Ingested(n int, bytes int64, lag time.Duration) {
	m.events.Add(float64(n))
	m.bytes.Add(float64(bytes))
	m.lag.Observe(lag.Seconds())
}

// observeCommit is the database's OnCommit.
func (m *serverMetrics) observeCommit(d time.Duration) { m.commit.Observe(d.Seconds()) }

// observeWriteError is sqlite.Options.OnWriteError.
func (m *serverMetrics) observeWriteError(err error) {
	m.writeErrors.Inc()
	m.health.failed(err)
}

// watchStore adds the database's state, read at each scrape: jobs by
// status, the bytes stored and, for SQLite, the size of the write-ahead
// log.
func (m *serverMetrics) watchStore(db database, logger *slog.Logger) {
	c := &storeCollector{db: db, logger: logger}
	if db.sq != nil {
		c.walSize = db.sq.WALSize
	}
	m.reg.MustRegister(c)
}

// handler serves the registry in Prometheus' text format.
func (m *serverMetrics) handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// storeCollector reads store.Stats at each scrape.
type storeCollector struct {
	db      serverStore
	logger  *slog.Logger
	walSize func() int64 // SQLite's; nil for PostgreSQL
}

var (
	jobsDesc = prometheus.NewDesc("jobrun_jobs", "Jobs in the database by status (unreachable: agent jobs whose agent is silent).",
		[]string{"status"}, nil)
	storeBytesDesc = prometheus.NewDesc("jobrun_store_bytes", "Bytes of the database's pages in use (jobs and their events).", nil, nil)
	storeFreeDesc  = prometheus.NewDesc("jobrun_store_free_bytes",
		"Bytes of the database's free pages (left by removed jobs; reused, or given back by prune).", nil, nil)
	storeWALDesc = prometheus.NewDesc("jobrun_store_wal_bytes",
		"Size of the database's write-ahead log (the -wal file), truncated by checkpoints once readers allow.", nil, nil)
)

// statuses are the label values of jobrun_jobs, all present.
var statuses = []jobs.Status{jobs.StatusRunning, jobs.StatusUnreachable, jobs.StatusSucceeded,
	jobs.StatusFailed, jobs.StatusCanceled, jobs.StatusLost}

// Describe sends the descriptions of the collected metrics.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- storeBytesDesc
	ch <- storeFreeDesc
	ch <- storeWALDesc
}

// Collect reads the database's Stats; a failed read is reported as an
// invalid metric (the scrape shows the error) and logged. The WAL's size
// (SQLite's -wal file) is the file's, reported even when the database does
// not answer; PostgreSQL has none to report.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.walSize != nil {
		ch <- prometheus.MustNewConstMetric(storeWALDesc, prometheus.GaugeValue, float64(c.walSize()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.db.Stats(ctx)
	if err != nil {
		c.logger.Warn("metrics: database stats", "err", err)
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(st.Jobs[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(storeBytesDesc, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(storeFreeDesc, prometheus.GaugeValue, float64(st.FreeBytes))
}
