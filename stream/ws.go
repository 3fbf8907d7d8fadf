package stream

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
)

// clientReadLimit bounds one message from a viewer.
const clientReadLimit = 64 << 10

var heartbeatMsg = []byte("[]")

// serveStream serves GET /api/jobs/{ref}/stream?after=SEQ.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	j, after, err := s.streamRequest(r)
	if !isUpgrade(r) {
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSONError(w, http.StatusUpgradeRequired, "this endpoint is a WebSocket")
		return
	}
	c, aerr := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.OriginPatterns})
	if aerr != nil {
		return // Accept answered (403 for a foreign origin)
	}
	// Errors come as close codes after the upgrade, so that a browser can
	// tell them apart.
	if err != nil {
		code, why := s.closeFor(err, "open "+r.URL.Path)
		c.Close(code, why)
		return
	}
	wc := s.register(c, r.RemoteAddr)
	if wc == nil {
		c.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer s.unregister(wc)
	if j.Status.Final() && after >= j.LastSeq {
		wc.close(websocket.StatusNormalClosure, "job finished")
		return
	}
	wc.run(j.ID, after)
}

// streamRequest validates a stream request: the job exists and after is a
// seq it holds.
func (s *Server) streamRequest(r *http.Request) (jobs.Job, jobs.Seq, error) {
	after, err := intParam(r.URL.Query().Get("after"), "after", 0, 0, 1<<62)
	if err != nil {
		return jobs.Job{}, 0, err
	}
	j, err := s.lookup(r.Context(), r)
	if err != nil {
		return jobs.Job{}, 0, err
	}
	if jobs.Seq(after) > j.LastSeq {
		return jobs.Job{}, 0, fmt.Errorf("after %d is beyond the last stored seq %d; start over with after=0: %w",
			after, j.LastSeq, jobs.ErrConflict)
	}
	return j, jobs.Seq(after), nil
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// closeFor returns the close code and reason for err. Internal errors are
// logged (with what was being done) and not shown.
func (s *Server) closeFor(err error, doing string) (websocket.StatusCode, string) {
	code := closeCode(err)
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

// wsConn is one open stream. Its handler goroutine writes; a reader
// goroutine reads client messages and notices departure; a pinger sends
// protocol pings. Whoever ends the stream first calls close, which sends
// the close frame and then cancels ctx to stop the others.
type wsConn struct {
	s       *Server
	c       *websocket.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
	closing atomic.Bool // close has begun: write no more data
	wg      sync.WaitGroup
	job     jobs.ID
	remote  string // the viewer's address, for logs
}

// register tracks c for Close; nil when the server is closed.
func (s *Server) register(c *websocket.Conn, remote string) *wsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	wc := &wsConn{s: s, c: c, ctx: ctx, cancel: cancel, remote: remote}
	if s.conns == nil {
		s.conns = make(map[*wsConn]struct{})
	}
	s.conns[wc] = struct{}{}
	s.wg.Add(1)
	return wc
}

func (s *Server) unregister(wc *wsConn) {
	wc.close(websocket.StatusGoingAway, "")
	s.mu.Lock()
	delete(s.conns, wc)
	s.mu.Unlock()
	s.wg.Done()
}

// Close closes every open stream with 1001 "server shutting down" (an
// http.Server's Shutdown leaves hijacked connections alone) and waits for
// their goroutines. Streams opened later are closed at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*wsConn, 0, len(s.conns))
	for wc := range s.conns {
		conns = append(conns, wc)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, wc := range conns {
		wg.Go(func() { wc.close(websocket.StatusGoingAway, "server shutting down") })
	}
	wg.Wait()
	s.wg.Wait()
	return nil
}

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

// write sends one message. A write that does not finish within
// WriteTimeout closes the stream with 4429; the close frame still reaches a
// viewer that resumes reading within the library's close timeout (5 s),
// after which the connection is torn down.
func (wc *wsConn) write(p []byte) error {
	if wc.closing.Load() {
		return net.ErrClosed // let the close frame have the connection
	}
	t := time.AfterFunc(wc.s.writeTimeout(), func() { wc.tooSlow("write timed out") })
	defer t.Stop()
	return wc.c.Write(context.Background(), websocket.MessageText, p)
}

// tooSlow closes a viewer that does not keep up with 4429.
func (wc *wsConn) tooSlow(why string) {
	wc.s.logger().Info("stream: viewer too slow; closing with 4429", "job", wc.job, "remote", wc.remote, "why", why)
	wc.close(CodeTooSlow, "viewer too slow; resume with after=<last seq seen>")
}

// run streams job id from after to the end, then closes.
func (wc *wsConn) run(id jobs.ID, after jobs.Seq) {
	wc.job = id
	sub := wc.s.Hub.Subscribe(id, after)
	defer sub.Close()
	wc.c.SetReadLimit(clientReadLimit)
	wc.wg.Add(2)
	go wc.readLoop()
	go wc.pingLoop()
	defer wc.wg.Wait()

	hb := wc.s.heartbeat()
	for {
		ctx, cancel := context.WithTimeout(wc.ctx, hb)
		b, err := sub.Next(ctx)
		cancel()
		var msg []byte
		switch {
		case err == nil:
			msg = b.JSON()
		case errors.Is(err, io.EOF):
			wc.close(websocket.StatusNormalClosure, "job finished")
			return
		case wc.ctx.Err() != nil:
			return // closed by someone else
		case errors.Is(err, context.DeadlineExceeded):
			msg = heartbeatMsg
		case errors.Is(err, ErrClosed):
			wc.close(websocket.StatusGoingAway, "server shutting down")
			return
		default:
			wc.close(wc.s.closeFor(err, fmt.Sprintf("job %d: next batch", id)))
			return
		}
		err = wc.write(msg)
		if b != nil {
			b.recycle()
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
// cancels the stream. After Accept, the request's context does not tell
// that the client left: this loop does.
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
		if err := wc.handle(m); err != nil {
			return
		}
	}
}

// handle answers one viewer message. Answers are out-of-band notices: an
// array of one object without seq, which clients ignore unless they know
// its type.
func (wc *wsConn) handle(m clientMessage) error {
	var notice string
	switch m.Type {
	case "cancel":
		if wc.s.Cancel == nil {
			notice = "cancel is not available here"
		} else if err := wc.s.Cancel(wc.ctx, wc.job); err != nil {
			notice = "cancel failed: " + err.Error()
		}
	default:
		notice = "unsupported message"
	}
	if notice == "" {
		return nil
	}
	b, _ := json.Marshal([]map[string]string{{"type": "error", "error": notice}})
	return wc.write(b)
}

// pingLoop sends a protocol ping every Heartbeat. A peer answers only
// once it has read what was sent before the ping, so one that does not
// answer within Heartbeat+WriteTimeout is gone or too far behind: 4429.
func (wc *wsConn) pingLoop() {
	defer wc.wg.Done()
	hb := wc.s.heartbeat()
	t := time.NewTicker(hb)
	defer t.Stop()
	for {
		select {
		case <-wc.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(wc.ctx, hb+wc.s.writeTimeout())
		err := wc.c.Ping(ctx)
		cancel()
		if err != nil {
			if wc.ctx.Err() == nil {
				wc.tooSlow("no answer to ping")
			}
			return
		}
	}
}
