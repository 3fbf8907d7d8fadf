package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/access"
)

// clientReadLimit bounds one message from a viewer.
const clientReadLimit = 64 << 10

var heartbeatMsg = []byte("[]")

// accept opens a WebSocket stream whose request was checked with the
// result err. A plain request gets err as an HTTP error (or 426); after
// the upgrade, err becomes a close code, so that a browser can tell errors
// apart. It returns the registered connection (the caller unregisters
// it), or nil when the request has been answered.
//
// v measures the connection's write progress; the connection's writes go
// through a progressWriter of it.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, err error, transport string, v *viewer) *wsConn {
	if !stream.IsUpgrade(r) {
		if err != nil {
			s.writeError(w, r, err)
			return nil
		}
		stream.WriteJSONError(w, http.StatusUpgradeRequired, "this endpoint is a WebSocket")
		return nil
	}
	c, aerr := websocket.Accept(progressWriter{w, v}, r, &websocket.AcceptOptions{OriginPatterns: s.originPatterns()})
	if aerr != nil {
		return nil // Accept answered (403 for a foreign origin)
	}
	if err != nil {
		code, why := s.closeFor(err, "open "+r.URL.Path)
		c.Close(code, why)
		return nil
	}
	wc := s.register(c, r.RemoteAddr, v)
	if wc == nil {
		c.Close(websocket.StatusGoingAway, "server shutting down")
		return nil
	}
	wc.transport = transport
	return wc
}

// serveStream serves GET /api/jobs/{ref}/stream?after=SEQ[&collapse=1].
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	j, after, collapse, err := s.streamRequest(r)
	v := &viewer{} // write progress only, until the stream is a viewer of its job
	if err == nil && stream.IsUpgrade(r) && !(j.Status.Final() && after >= j.LastSeq) {
		v = s.viewers.openStream(j.ID)
		defer s.viewers.closeStream(v)
	}
	wc := s.accept(w, r, err, TransportWS, v)
	if wc == nil {
		return
	}
	defer s.unregister(wc)
	cut := func() { wc.tooSlow("no write progress while exec waits to exit") }
	v.cut.Store(&cut)
	wc.access = access.GrantOf(r.Context())
	defer s.viewer(TransportWS, after > 0)()
	if j.Status.Final() && after >= j.LastSeq {
		wc.close(websocket.StatusNormalClosure, "job finished")
		return
	}
	wc.job = j.ID
	wc.onMessage = wc.jobMessage
	sub := s.Hub.Subscribe(j.ID, after)
	defer sub.Close()
	wc.run(newSource(sub, after, j.LastSeq, collapse, s.Hub.PageBytes()))
}

// streamRequest validates a stream request: the job exists and after is a
// seq it holds.
func (s *Server) streamRequest(r *http.Request) (j jobs.Job, after jobs.Seq, collapse bool, err error) {
	q := r.URL.Query()
	a, err := intParam(q.Get("after"), "after", 0, 0, 1<<62)
	if err != nil {
		return jobs.Job{}, 0, false, err
	}
	if collapse, err = boolParam(q.Get("collapse"), "collapse"); err != nil {
		return jobs.Job{}, 0, false, err
	}
	if j, err = s.lookup(r.Context(), r); err != nil {
		return jobs.Job{}, 0, false, err
	}
	if err := checkAfter(j, jobs.Seq(a)); err != nil {
		return jobs.Job{}, 0, false, err
	}
	return j, jobs.Seq(a), collapse, nil
}

// checkAfter refuses a resume cursor beyond what the job holds.
func checkAfter(j jobs.Job, after jobs.Seq) error {
	if after > j.LastSeq {
		return fmt.Errorf("after %d is beyond the last stored seq %d; start over with after=0: %w",
			after, j.LastSeq, jobs.ErrConflict)
	}
	return nil
}

// closeFor returns the close code and reason for err. Internal errors are
// logged (with what was being done) and not shown.
func (s *Server) closeFor(err error, doing string) (websocket.StatusCode, string) {
	code := stream.CloseCode(err)
	if code == websocket.StatusInternalError {
		s.logger().Error("stream: "+doing, "err", err)
		return code, "internal error"
	}
	// A close frame holds at most 123 bytes of reason.
	why := err.Error()
	if len(why) > 120 {
		why = why[:120]
	}
	return code, strings.ToValidUTF8(why, "")
}

// wsConn is one open WebSocket (a job stream or the dashboard stream). Its
// handler goroutine writes; a reader goroutine reads client messages and
// notices departure; a pinger sends protocol pings. Whoever ends the
// connection first calls close, which sends the close frame and then
// cancels ctx to stop the others.
type wsConn struct {
	s       *Server
	c       *websocket.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
	closing atomic.Bool // close has begun: write no more data
	wg      sync.WaitGroup
	// pinger fires ping every Heartbeat; pingMu guards it and pingOff,
	// set when the stream ends (no ping starts after).
	pinger  *time.Timer
	pingMu  sync.Mutex
	pingOff bool
	job     jobs.ID      // the job streamed, 0 for the dashboard
	remote  string       // the viewer's address, for logs
	access  access.Grant // what the viewer may do (cancel needs full)
	// transport is TransportWS or TransportDashboard, for Metrics.
	transport string
	// view measures the progress of writes (and, for a job stream, what
	// it was sent: viewers.go); stall is the write watchdog (checkStall).
	view  *viewer
	stall *time.Timer

	// onMessage answers one client message (nil: no answer).
	onMessage func(clientMessage) []byte
	// answering is held while a client message is handled and answered,
	// so that the close after the exit event waits for the answer (a
	// cancel's notice must not be lost to the job ending at once).
	answering sync.Mutex
}

// register tracks c for Close; nil when the server is closed.
func (s *Server) register(c *websocket.Conn, remote string, v *viewer) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	wc := &wsConn{s: s, c: c, ctx: ctx, cancel: cancel, remote: remote, view: v}
	wc.stall = time.AfterFunc(time.Hour, wc.checkStall)
	wc.stall.Stop()
	if !s.track(wc) {
		cancel()
		return nil
	}
	return wc
}

func (s *Server) unregister(wc *wsConn) {
	wc.close(websocket.StatusGoingAway, "")
	s.untrack(wc)
}

// shutdown closes the connection for Server.Close.
func (wc *wsConn) shutdown() { wc.close(websocket.StatusGoingAway, "server shutting down") }

// close ends the stream with code; only the first call has an effect and
// later calls wait for it. The close frame goes out before ctx is
// cancelled, because a cancelled read or write tears the connection down
// without one.
func (wc *wsConn) close(code websocket.StatusCode, why string) {
	wc.once.Do(func() {
		wc.closing.Store(true)
		wc.c.Close(code, why)
		wc.cancel()
	})
}

// write sends one message. A write that makes no progress for
// WriteTimeout (the viewer takes no bytes: viewers.go) closes the stream
// with 4429; the close frame still reaches a viewer that resumes reading
// within the library's close timeout (5 s), after which the connection is
// torn down. A viewer far behind but reading is never cut.
func (wc *wsConn) write(p []byte) error {
	if wc.closing.Load() {
		return net.ErrClosed // let the close frame have the connection
	}
	v := wc.view
	v.beginWrite()
	wc.stall.Reset(wc.s.writeTimeout())
	err := wc.c.Write(context.Background(), websocket.MessageText, p)
	wc.stall.Stop()
	v.endWrite()
	return err
}

// checkStall is the write watchdog (wc.stall, one timer per connection,
// reset per write: no allocation per message): a write in progress that
// has made no progress for WriteTimeout closes the stream with 4429.
func (wc *wsConn) checkStall() {
	timeout := wc.s.writeTimeout()
	if !wc.view.writing.Load() {
		return // the write is over; a late fire
	}
	if idle := wc.view.idleFor(time.Now()); idle < timeout {
		wc.stall.Reset(timeout - idle)
		return
	}
	wc.tooSlow("write made no progress for " + timeout.String())
}

// tooSlow closes a viewer that does not keep up with 4429.
func (wc *wsConn) tooSlow(why string) {
	wc.s.logger().Info("stream: viewer too slow; closing with 4429", "job", wc.job, "remote", wc.remote, "why", why)
	wc.s.metrics().ViewerDropped(wc.transport)
	wc.close(stream.CodeTooSlow, "viewer too slow; resume with after=<last seq seen>")
}

// start starts the reader and the pinger. The handler calls the returned
// stop before it returns: it waits for the reader and a ping in flight.
func (wc *wsConn) start() (stop func()) {
	wc.c.SetReadLimit(clientReadLimit)
	wc.wg.Add(1)
	go wc.readLoop()
	wc.pinger = time.AfterFunc(wc.s.heartbeat(), wc.ping)
	return func() {
		wc.pingMu.Lock()
		wc.pingOff = true
		wc.pinger.Stop()
		wc.pingMu.Unlock()
		wc.wg.Wait()
	}
}

// run streams src to the end of the job, then closes.
func (wc *wsConn) run(src source) {
	defer wc.start()()

	hb := wc.s.heartbeat()
	for {
		b, err := src.NextWithin(wc.ctx, hb)
		var msg []byte
		switch {
		case err == nil:
			msg = b.JSON()
		case errors.Is(err, io.EOF):
			wc.answering.Lock() // let an answer in progress go out first
			wc.answering.Unlock()
			wc.close(websocket.StatusNormalClosure, "job finished")
			return
		case wc.ctx.Err() != nil:
			return // closed by someone else
		case errors.Is(err, context.DeadlineExceeded):
			msg = heartbeatMsg
		case errors.Is(err, stream.ErrClosed):
			wc.close(websocket.StatusGoingAway, "server shutting down")
			return
		default:
			wc.close(wc.s.closeFor(err, fmt.Sprintf("job %d: next batch", wc.job)))
			return
		}
		err = wc.write(msg)
		if b != nil {
			if err == nil && b.HasExit {
				wc.view.exit.Store(true)
			}
			b.Recycle()
		}
		if err != nil {
			wc.close(websocket.StatusGoingAway, "")
			return
		}
	}
}

// clientMessage is what a viewer may send.
type clientMessage struct {
	Type string `json:"type"`
}

// readLoop reads viewer messages until the connection ends; its end
// cancels the connection. After Accept, the request's context does not
// tell that the client left: this loop does.
func (wc *wsConn) readLoop() {
	defer wc.wg.Done()
	defer wc.cancel()
	for {
		typ, p, err := wc.c.Read(wc.ctx)
		if err != nil {
			return
		}
		var m clientMessage
		if typ != websocket.MessageText || json.Unmarshal(p, &m) != nil {
			m.Type = ""
		}
		if wc.onMessage == nil {
			continue
		}
		wc.answering.Lock()
		var werr error
		if answer := wc.onMessage(m); answer != nil {
			werr = wc.write(answer)
		}
		wc.answering.Unlock()
		if werr != nil {
			return
		}
	}
}

// notice is an out-of-band answer to a client message on a job stream: an
// object without seq, which clients ignore unless they know its type.
type notice struct {
	Type    string `json:"type"`              // "notice" or "error"
	Message string `json:"message,omitempty"` // type notice
	Error   string `json:"error,omitempty"`   // type error
	Code    int    `json:"code,omitempty"`    // type error: the HTTP status of the same failure
}

// jobMessage answers a message on a job stream, as an array of one notice
// (stream messages are arrays): {"type":"cancel"} cancels the job like
// POST /api/jobs/{ref}/cancel.
func (wc *wsConn) jobMessage(m clientMessage) []byte {
	var n notice
	switch m.Type {
	case "cancel":
		if !wc.access.CanChange() {
			n = wc.s.errorNotice(fmt.Errorf("%s access is read-only: cancel needs the server's full token: %w", wc.access.Scope, stream.ErrForbidden), "cancel job")
		} else if err := wc.s.cancel(wc.ctx, wc.job); err != nil {
			n = wc.s.errorNotice(err, "cancel job")
		} else {
			n = notice{Type: "notice", Message: "cancel requested"}
		}
	default:
		n = notice{Type: "error", Error: "unsupported message", Code: http.StatusBadRequest}
	}
	b, _ := json.Marshal([]notice{n})
	return b
}

// errorNotice describes err as an error notice; internal errors are logged
// and not shown.
func (s *Server) errorNotice(err error, doing string) notice {
	code := stream.StatusCode(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.logger().Error("stream: "+doing, "err", err)
		msg = "internal error"
	}
	return notice{Type: "error", Error: msg, Code: code}
}

// ping sends a protocol ping, Heartbeat after the previous one was
// answered (a timer, not a goroutine per viewer: a goroutine exists only
// while a ping waits for its pong). A peer answers only once it has read
// what was sent before the ping, so one that does not answer within
// Heartbeat+WriteTimeout is gone or stuck: 4429, unless it took bytes
// meanwhile (a slow reader far behind, whose pong waits behind the data:
// it is alive).
func (wc *wsConn) ping() {
	wc.pingMu.Lock()
	if wc.pingOff {
		wc.pingMu.Unlock()
		return
	}
	wc.wg.Add(1) // before stop's Wait: stop sets pingOff under pingMu first
	wc.pingMu.Unlock()
	defer wc.wg.Done()

	hb := wc.s.heartbeat()
	wait := hb + wc.s.writeTimeout()
	ctx, cancel := context.WithTimeout(wc.ctx, wait)
	err := wc.c.Ping(ctx)
	cancel()
	switch {
	case wc.ctx.Err() != nil:
		return
	case err != nil && time.Since(time.Unix(0, wc.view.progress.Load())) >= wait:
		wc.tooSlow("no answer to ping")
		return
	}
	wc.pingMu.Lock()
	if !wc.pingOff {
		wc.pinger.Reset(hb)
	}
	wc.pingMu.Unlock()
}
