package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
)

// AgentOptions configures an Agent. The zero value of each optional field
// means its documented default.
type AgentOptions struct {
	// URL is the server's root, such as "http://buildhost:7070"; required.
	URL string
	// HTTP makes the WebSocket handshakes; nil means http.DefaultClient.
	HTTP *http.Client
	// OnWelcome is called, from the agent's goroutine, each time the server
	// has registered the job, with the server's id for it.
	OnWelcome func(id jobs.ID)
	// OnCancel is called, from the agent's goroutine, when the server asks
	// to cancel the job (a viewer canceled it). It must not block.
	OnCancel func()
	// Logger receives connection troubles: the first failure of an outage
	// as a warning, the rest at debug level. Default: discard.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait before reconnecting
	// (doubling, with jitter). Defaults 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// Window is how many events messages may await their ack. Default 8.
	Window int
}

// Agent delivers one job from a local spool to a jobrun server over the
// ingest protocol (proto.go). The runner stores the job in the
// spool (History) and publishes to the Agent (jobs.Publisher); the Agent
// owns one goroutine that connects, says hello, resends from the seq
// after the server's last_seq, reading the spool, then sends live batches
// as they are published, and reconnects with backoff whenever the
// connection drops, until the server has acknowledged the job's exit
// event, the server refuses the job for good, or Close.
//
// Nothing is kept in memory that is not in the spool: a batch is sent only
// after the runner committed it there, and what the server has not
// acknowledged is simply read from the spool again after a reconnect.
type Agent struct {
	opts AgentOptions
	hist stream.History
	hub  *stream.Hub

	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup

	mu       sync.Mutex
	acked    jobs.Seq // the server's last committed seq, as it last said
	serverID jobs.ID
	failed   error         // why the server refuses the job for good
	done     bool          // the run goroutine has ended
	changed  chan struct{} // closed and replaced when any of the above changes
}

// NewAgent returns an Agent that reads the job from h, the spool. Call
// Start once the job exists, and Close when done.
func NewAgent(h stream.History, o AgentOptions) *Agent {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 8
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Agent{
		opts: o,
		hist: h,
		// A message carries at most 4096 events or about 1 MiB of them,
		// well within the server's limits even when JSON escaping grows
		// the bytes six-fold.
		hub:     stream.NewHub(h, stream.HubOptions{PollInterval: -1, PageEvents: 4096, PageBytes: 1 << 20, Logger: o.Logger}),
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
	}
}

// Publish hands events that the runner committed to the spool to the
// agent. It never blocks.
func (a *Agent) Publish(id jobs.ID, events []jobs.Event) { a.hub.Publish(id, events) }

var _ jobs.Publisher = (*Agent)(nil)

// Start starts delivering job j, as stored in the spool (j.ID is the
// spool's id). Call it once.
func (a *Agent) Start(j jobs.Job) {
	a.wg.Go(func() { a.run(j) })
}

// Acked returns the server's last committed seq of the job, as it last
// said, and the server's id of the job (0 before the first welcome).
func (a *Agent) Acked() (jobs.Seq, jobs.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acked, a.serverID
}

// Wait returns nil once the server has acknowledged seq; the server's
// refusal (a *stream.CloseError or *stream.HTTPError) if it refused the job for good;
// stream.ErrClosed if the agent stopped; or ctx's error.
func (a *Agent) Wait(ctx context.Context, seq jobs.Seq) error {
	for {
		a.mu.Lock()
		acked, failed, done, ch := a.acked, a.failed, a.done, a.changed
		a.mu.Unlock()
		switch {
		case acked >= seq:
			return nil
		case failed != nil:
			return failed
		case done:
			return stream.ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops delivering (whatever was not acknowledged stays in the
// spool) and waits for the agent's goroutine.
func (a *Agent) Close() error {
	a.once.Do(a.cancel)
	a.wg.Wait()
	a.hub.Close()
	return nil
}

// update changes the agent's state under mu and wakes Wait.
func (a *Agent) update(fn func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn()
	close(a.changed)
	a.changed = make(chan struct{})
}

// run is the agent's goroutine: one session per connection, with backoff
// between them.
func (a *Agent) run(j jobs.Job) {
	defer a.update(func() { a.done = true })
	log := a.opts.Logger.With("uid", j.UID, "server", a.opts.URL)
	wait := a.opts.MinBackoff
	outage := false
	for {
		s := &session{a: a, job: j}
		err := s.run()
		if s.finished {
			return
		}
		if a.ctx.Err() != nil {
			return
		}
		if permanent(err) {
			log.Error("the server refuses the job", "err", err)
			a.update(func() { a.failed = err })
			return
		}
		if s.welcomed {
			wait = a.opts.MinBackoff // it made contact: the drop is news
		}
		if !outage || s.welcomed {
			log.Warn("lost the connection to the server; the job goes on and its output is kept in the spool; reconnecting", "err", err)
		} else {
			log.Debug("reconnecting", "err", err)
		}
		outage = true
		d := wait/2 + rand.N(wait/2+1)
		wait = min(2*wait, a.opts.MaxBackoff)
		t := time.NewTimer(d)
		select {
		case <-a.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// permanent reports whether err means the server will never take the job:
// retrying cannot help.
func permanent(err error) bool {
	var ce *stream.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case stream.CodeInvalid, stream.CodeConflict, stream.CodeGone, stream.CodeMismatch, int(websocket.StatusMessageTooBig):
			return true
		}
		return false
	}
	var he *stream.HTTPError
	if errors.As(err, &he) {
		return he.StatusCode >= 400 && he.StatusCode < 500 &&
			he.StatusCode != http.StatusRequestTimeout && he.StatusCode != http.StatusTooManyRequests
	}
	return errors.Is(err, errSpoolBehind)
}

// errSpoolBehind: the server holds more of the job than the spool, so the
// spool is not this job's.
var errSpoolBehind = errors.New("the server holds more events of the job than the spool")

// session is one connection of an agent.
type session struct {
	a        *Agent
	job      jobs.Job
	c        *websocket.Conn
	hb       time.Duration
	welcomed bool // the server registered the job on this connection
	finished bool // the server acknowledged the exit event

	closeErr error // why the reader stopped
}

// ingestURL is the WebSocket URL of the server's ingest endpoint.
func ingestURL(base string) string {
	u := strings.TrimSuffix(base, "/") + "/api/ingest"
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		return "ws://" + rest
	}
	return u
}

func (s *session) run() error {
	a := s.a
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	c, resp, err := websocket.Dial(dctx, ingestURL(a.opts.URL), &websocket.DialOptions{HTTPClient: a.opts.HTTP})
	dcancel()
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return fmt.Errorf("connect to %s: %w", a.opts.URL, stream.ReadHTTPError(resp))
		}
		return fmt.Errorf("connect to %s: %w", a.opts.URL, err)
	}
	s.c = c
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)

	hello, _ := json.Marshal(message{Type: msgHello, Job: helloOf(s.job)})
	if err := s.write(ctx, hello); err != nil {
		return err
	}
	last, err := s.welcome(ctx)
	if err != nil {
		return err
	}

	// The reader takes acks, cancels and heartbeats until the connection
	// ends; its end ends the session.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		defer cancel()
		s.closeErr = s.read(ctx)
	})
	err = s.send(ctx, last)
	cancel()
	wg.Wait()
	if s.finished {
		return nil
	}
	if s.closeErr != nil {
		return s.closeErr
	}
	return err
}

// write sends one message within 10 s.
func (s *session) write(ctx context.Context, p []byte) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.c.Write(wctx, websocket.MessageText, p); err != nil {
		return stream.CloseErrorOf(err)
	}
	return nil
}

// writeBinary sends one binary events message within 10 s.
func (s *session) writeBinary(ctx context.Context, p []byte) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.c.Write(wctx, websocket.MessageBinary, p); err != nil {
		return stream.CloseErrorOf(err)
	}
	return nil
}

// welcome reads the server's welcome and records it.
func (s *session) welcome(ctx context.Context) (jobs.Seq, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, p, err := s.c.Read(rctx)
	if err != nil {
		return 0, stream.CloseErrorOf(err)
	}
	var m message
	if err := json.Unmarshal(p, &m); err != nil || m.Type != msgWelcome || m.ID <= 0 || m.LastSeq == nil {
		return 0, fmt.Errorf("bad welcome from %s: %.100q", s.a.opts.URL, p)
	}
	last := *m.LastSeq
	j, err := s.a.hist.Job(ctx, jobs.Ref{ID: s.job.ID})
	if err != nil {
		return 0, fmt.Errorf("read the spool: %w", err)
	}
	if last > j.LastSeq {
		return 0, fmt.Errorf("%w: server at seq %d, spool at %d", errSpoolBehind, last, j.LastSeq)
	}
	s.hb = time.Duration(m.Heartbeat) * time.Millisecond
	if s.hb <= 0 {
		s.hb = 20 * time.Second
	}
	s.welcomed = true
	s.a.update(func() { s.a.acked, s.a.serverID = last, m.ID })
	if s.a.opts.OnWelcome != nil {
		s.a.opts.OnWelcome(m.ID)
	}
	return last, nil
}

// read is the session's reader: acks, cancels, heartbeats. A server silent
// for three heartbeats is gone (half-open TCP, a sleeping laptop).
func (s *session) read(ctx context.Context) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, 3*s.hb)
		_, p, err := s.c.Read(rctx)
		timedOut := rctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil {
			if timedOut {
				return fmt.Errorf("the server sent nothing for %s", 3*s.hb)
			}
			return stream.CloseErrorOf(err)
		}
		var m message
		if json.Unmarshal(p, &m) != nil {
			continue // not ours to judge: ignore what we do not understand
		}
		switch m.Type {
		case msgAck:
			s.a.update(func() { s.a.acked = max(s.a.acked, m.Seq) })
		case msgCancel:
			if s.a.opts.OnCancel != nil {
				s.a.opts.OnCancel()
			}
		}
	}
}

// send sends the job's events after last, from the spool and then live,
// keeping at most Window messages unacknowledged, until the server has
// acknowledged the exit event or ctx ends.
func (s *session) send(ctx context.Context, last jobs.Seq) error {
	a := s.a
	j, err := a.hist.Job(ctx, jobs.Ref{ID: s.job.ID})
	if err != nil {
		return fmt.Errorf("read the spool: %w", err)
	}
	if j.Status.Final() && last >= j.LastSeq {
		return s.delivered() // the server has it all already
	}
	sub := a.hub.Subscribe(s.job.ID, last)
	defer sub.Close()
	heartbeat, _ := json.Marshal(message{Type: msgHeartbeat})
	var (
		inflight []jobs.Seq // last seq of each unacknowledged message
		msg      []byte
	)
	for {
		err := s.waitAcks(ctx, func(acked jobs.Seq) bool {
			for len(inflight) > 0 && inflight[0] <= acked {
				inflight = inflight[1:]
			}
			return len(inflight) < a.opts.Window
		})
		if err != nil {
			return err
		}
		nctx, cancel := context.WithTimeout(ctx, s.hb)
		b, err := sub.Next(nctx)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			// The exit event, at last, has been sent.
			if err := s.waitAcks(ctx, func(acked jobs.Seq) bool { return acked >= last }); err != nil {
				return err
			}
			return s.delivered()
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if err := s.write(ctx, heartbeat); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("read the spool: %w", err)
		}
		if msg, err = appendBinaryEvents(msg[:0], b.Events); err != nil {
			return err
		}
		last = b.Last
		inflight = append(inflight, last)
		if err := s.writeBinary(ctx, msg); err != nil {
			return err
		}
	}
}

// waitAcks waits until done(the last acknowledged seq) holds.
func (s *session) waitAcks(ctx context.Context, done func(jobs.Seq) bool) error {
	for {
		s.a.mu.Lock()
		acked, ch := s.a.acked, s.a.changed
		s.a.mu.Unlock()
		if done(acked) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// delivered ends a session whose job the server has whole.
func (s *session) delivered() error {
	s.finished = true
	s.c.Close(websocket.StatusNormalClosure, "delivered")
	return nil
}
