package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// Store is what the ingest endpoint needs from the store. *sqlite.DB
// satisfies it.
type Store interface {
	// RegisterJob registers a job reported by an agent, idempotently by
	// its uid, and returns its id and last stored seq.
	RegisterJob(ctx context.Context, j jobs.Job) (jobs.ID, jobs.Seq, error)
	// IngestEvents stores a batch idempotently by seq and returns the
	// events it appended and the job's last stored seq.
	IngestEvents(ctx context.Context, id jobs.ID, evs []jobs.Event) ([]jobs.Event, jobs.Seq, error)
	// TouchAgent records that the job's agent was heard from now.
	TouchAgent(ctx context.Context, id jobs.ID) error
}

// Server serves GET /api/ingest, where agents (jobrun exec --server)
// report their jobs (see proto.go and docs/protocol.md). Each
// connection is one job: it registers the job, stores the events it is
// sent, publishes what it appended to Hub after the commit, and
// acknowledges. Set the fields before the first request; zero values mean
// the documented defaults.
type Server struct {
	// Store registers jobs and stores their events; required.
	Store Store
	// Hub receives the appended events after each commit; nil: none.
	Hub *stream.Hub
	// Heartbeat is the interval of heartbeats, both ways: the server
	// sends one every Heartbeat and tells agents (in welcome) to do the
	// same. Default 20 s.
	Heartbeat time.Duration
	// AgentTimeout closes a connection whose agent sent nothing for this
	// long (4408). Default 60 s.
	AgentTimeout time.Duration
	// WriteTimeout bounds each message write. Default 10 s.
	WriteTimeout time.Duration
	// ReadLimit is the largest message read; a larger one closes the
	// connection with 1009. Default MaxMessage (16 MiB).
	ReadLimit int64
	// Logger receives connection events and internal errors. nil
	// discards them.
	Logger *slog.Logger
	// Metrics counts the events stored; nil counts nothing.
	Metrics Metrics

	mu     sync.Mutex
	conns  map[*conn]struct{}
	byJob  map[jobs.ID]map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func (in *Server) logger() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return discard
}

// discard is the logger of a nil Logger field: nothing here logs to a
// global.
var discard = slog.New(slog.DiscardHandler)

func (in *Server) heartbeat() time.Duration {
	if in.Heartbeat > 0 {
		return in.Heartbeat
	}
	return 20 * time.Second
}

func (in *Server) agentTimeout() time.Duration {
	if in.AgentTimeout > 0 {
		return in.AgentTimeout
	}
	return 60 * time.Second
}

func (in *Server) writeTimeout() time.Duration {
	if in.WriteTimeout > 0 {
		return in.WriteTimeout
	}
	return 10 * time.Second
}

// conn is one agent connection. The handler goroutine reads and
// answers; a heartbeat goroutine writes heartbeats; Cancel may write a
// cancel from any goroutine (coder/websocket writes are safe for
// concurrent use).
type conn struct {
	in     *Server
	c      *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	remote string
	silent atomic.Bool // the watchdog closed the connection
	job    jobs.ID     // set once welcomed, under in.mu
}

// ServeHTTP serves GET /api/ingest.
func (in *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		stream.WriteJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if !stream.IsUpgrade(r) {
		stream.WriteJSONError(w, http.StatusUpgradeRequired, "this endpoint is a WebSocket for agents (jobrun exec --server)")
		return
	}
	// Agents send no Origin; a browser's foreign Origin is refused (403).
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	limit := in.ReadLimit
	if limit <= 0 {
		limit = MaxMessage
	}
	c.SetReadLimit(limit)
	ic := in.register(c, r.RemoteAddr)
	if ic == nil {
		c.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer in.unregister(ic)
	ic.run()
}

// register tracks a new connection for Close; nil once closed.
func (in *Server) register(c *websocket.Conn, remote string) *conn {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	ic := &conn{in: in, c: c, ctx: ctx, cancel: cancel, remote: remote}
	if in.conns == nil {
		in.conns = make(map[*conn]struct{})
		in.byJob = make(map[jobs.ID]map[*conn]struct{})
	}
	in.conns[ic] = struct{}{}
	in.wg.Add(1)
	return ic
}

func (in *Server) unregister(ic *conn) {
	ic.close(websocket.StatusGoingAway, "")
	in.mu.Lock()
	delete(in.conns, ic)
	if set := in.byJob[ic.job]; set != nil {
		delete(set, ic)
		if len(set) == 0 {
			delete(in.byJob, ic.job)
		}
	}
	in.mu.Unlock()
	in.wg.Done()
}

// welcomed files the connection under its job, for Cancel.
func (in *Server) welcomed(ic *conn, id jobs.ID) {
	in.mu.Lock()
	defer in.mu.Unlock()
	ic.job = id
	set := in.byJob[id]
	if set == nil {
		set = make(map[*conn]struct{})
		in.byJob[id] = set
	}
	set[ic] = struct{}{}
}

// Cancel asks the agent of job id to cancel it: it sends {"type":"cancel"}
// on every connection of that job. The job then ends as canceled when its
// agent reports the exit. With no agent connected, the error wraps
// jobs.ErrConflict (HTTP 409). api.Server.Cancel can be set to it.
func (in *Server) Cancel(ctx context.Context, id jobs.ID) error {
	in.mu.Lock()
	var conns []*conn
	for ic := range in.byJob[id] {
		conns = append(conns, ic)
	}
	in.mu.Unlock()
	if len(conns) == 0 {
		return fmt.Errorf("cancel job %d: agent not connected: %w", id, jobs.ErrConflict)
	}
	msg, _ := json.Marshal(message{Type: msgCancel})
	var errs []error
	for _, ic := range conns {
		if err := ic.write(msg); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(conns) {
		return fmt.Errorf("cancel job %d: agent not connected (%w): %w", id, errors.Join(errs...), jobs.ErrConflict)
	}
	in.logger().Info("ingest: cancel sent to agent", "job", id)
	return nil
}

// Close closes every agent connection with 1001 (agents reconnect and
// resend what was not acknowledged) and waits for their handlers.
// Connections opened later are closed at once.
func (in *Server) Close() error {
	in.mu.Lock()
	in.closed = true
	conns := make([]*conn, 0, len(in.conns))
	for ic := range in.conns {
		conns = append(conns, ic)
	}
	in.mu.Unlock()
	var wg sync.WaitGroup
	for _, ic := range conns {
		wg.Go(func() { ic.close(websocket.StatusGoingAway, "server shutting down") })
	}
	wg.Wait()
	in.wg.Wait()
	return nil
}

// close ends the connection with code; only the first call has an effect.
func (ic *conn) close(code websocket.StatusCode, why string) {
	ic.once.Do(func() {
		ic.c.Close(code, why)
		ic.cancel()
	})
}

// closeErr closes the connection with err's close code and reason.
func (ic *conn) closeErr(err error, doing string) {
	code, why := closeReason(err)
	if code == websocket.StatusInternalError {
		ic.in.logger().Error("ingest: "+doing, "job", ic.job, "remote", ic.remote, "err", err)
		why = "internal error; retry later"
	} else {
		ic.in.logger().Info("ingest: refused", "job", ic.job, "remote", ic.remote, "code", int(code), "why", why)
	}
	ic.close(code, why)
}

// closeReason is the close code and reason for an ingest error.
func closeReason(err error) (websocket.StatusCode, string) {
	code := stream.CloseCode(err)
	why := err.Error()
	if len(why) > 120 { // a close frame holds at most 123 bytes of reason
		why = why[:120]
	}
	return code, why
}

// write sends one message within WriteTimeout.
func (ic *conn) write(p []byte) error {
	ctx, cancel := context.WithTimeout(ic.ctx, ic.in.writeTimeout())
	defer cancel()
	return ic.c.Write(ctx, websocket.MessageText, p)
}

// read reads one message. A watchdog (see run) closes the connection when
// the agent is silent for AgentTimeout, which ends a read in progress.
func (ic *conn) read() (message, error) {
	typ, p, err := ic.c.Read(ic.ctx)
	if err != nil {
		if ic.silent.Load() {
			return message{}, errSilent
		}
		return message{}, err
	}
	var m message
	if typ == websocket.MessageBinary {
		m.Type = msgEvents
		m.Events, err = decodeBinaryEvents(p)
		return m, err
	}
	if err := json.Unmarshal(p, &m); err != nil {
		return m, fmt.Errorf("malformed message: %w: %w", err, jobs.ErrInvalid)
	}
	return m, nil
}

// errSilent: the agent sent nothing for AgentTimeout.
var errSilent = errors.New("agent silent for too long")

// run serves the connection: hello, welcome, then events until the
// connection ends.
func (ic *conn) run() {
	timeout := ic.in.agentTimeout()
	watchdog := time.AfterFunc(timeout, func() {
		ic.silent.Store(true)
		ic.close(stream.CodeSilent, "agent silent for longer than "+timeout.String())
	})
	defer watchdog.Stop()
	m, err := ic.read()
	if err == nil && (m.Type != msgHello || m.Job == nil) {
		err = fmt.Errorf("the first message must be a hello with the job: %w", jobs.ErrInvalid)
	}
	if err != nil {
		ic.readFailed(err)
		return
	}
	id, last, err := ic.in.Store.RegisterJob(ic.ctx, m.Job.job())
	if err != nil {
		ic.closeErr(err, "register job")
		return
	}
	ic.in.welcomed(ic, id)
	log := ic.in.logger().With("job", id, "uid", m.Job.UID, "remote", ic.remote)
	log.Info("ingest: agent connected", "last_seq", last)
	defer log.Info("ingest: agent disconnected")
	hb := ic.in.heartbeat()
	welcome, _ := json.Marshal(message{Type: msgWelcome, ID: id, LastSeq: &last, Heartbeat: hb.Milliseconds()})
	if err := ic.write(welcome); err != nil {
		ic.close(websocket.StatusGoingAway, "")
		return
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	defer ic.close(websocket.StatusGoingAway, "")
	wg.Go(ic.heartbeats)

	var ack []byte
	touched := time.Now()
	for {
		watchdog.Reset(timeout)
		m, err := ic.read()
		watchdog.Stop() // handling a message does not count as silence
		if err != nil {
			ic.readFailed(err)
			return
		}
		switch m.Type {
		case msgEvents:
			if len(m.Events) == 0 || len(m.Events) > MaxEvents {
				ic.closeErr(fmt.Errorf("an events message carries 1 to %d events, not %d: %w",
					MaxEvents, len(m.Events), jobs.ErrInvalid), "events")
				return
			}
			fresh, last, err := ic.in.Store.IngestEvents(ic.ctx, id, m.Events)
			if err != nil {
				if ic.ctx.Err() == nil {
					ic.closeErr(err, "store events")
				}
				return
			}
			if len(fresh) > 0 {
				ic.in.ingested(fresh)
				if ic.in.Hub != nil {
					ic.in.Hub.Publish(id, fresh)
				}
			}
			touched = time.Now()
			ack = append(append(ack[:0], `{"type":"ack","seq":`...), strconv.FormatInt(int64(last), 10)...)
			ack = append(ack, '}')
			if err := ic.write(ack); err != nil {
				return
			}
		case msgHeartbeat:
			// Record it at most every half heartbeat: the job reads as
			// unreachable only after AgentTimeout anyway.
			if time.Since(touched) >= hb/2 {
				if err := ic.in.Store.TouchAgent(ic.ctx, id); err != nil && ic.ctx.Err() == nil {
					log.Warn("ingest: record heartbeat", "err", err)
				}
				touched = time.Now()
			}
		default:
			ic.closeErr(fmt.Errorf("unexpected message type %q: %w", m.Type, jobs.ErrInvalid), "read")
			return
		}
	}
}

// ingested counts committed events for Metrics: one pass over the batch
// for its bytes; the lag is the first (oldest) event's.
func (in *Server) ingested(evs []jobs.Event) {
	var n int64
	for i := range evs {
		n += int64(len(evs[i].Data) + len(evs[i].EOL))
	}
	in.metrics().Ingested(len(evs), n, max(time.Since(evs[0].Time), 0))
}

// readFailed ends the connection after a failed read: a protocol error
// gets its close code; a departed agent needs none.
func (ic *conn) readFailed(err error) {
	switch {
	case errors.Is(err, errSilent):
		// The watchdog has closed it.
	case errors.Is(err, jobs.ErrInvalid):
		ic.closeErr(err, "read")
	case websocket.CloseStatus(err) == websocket.StatusMessageTooBig:
		// The library has answered with 1009 already.
	default:
		ic.close(websocket.StatusGoingAway, "")
	}
}

// heartbeats sends a heartbeat every Heartbeat until the connection ends.
func (ic *conn) heartbeats() {
	msg, _ := json.Marshal(message{Type: msgHeartbeat})
	t := time.NewTicker(ic.in.heartbeat())
	defer t.Stop()
	for {
		select {
		case <-ic.ctx.Done():
			return
		case <-t.C:
			if err := ic.write(msg); err != nil {
				ic.close(websocket.StatusGoingAway, "")
				return
			}
		}
	}
}
