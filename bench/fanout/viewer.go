package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// stats is what all viewers add to while they read.
type stats struct {
	lat        hist         // now - first event's time, one sample per message
	events     atomic.Int64 // events received, the exit included
	messages   atomic.Int64 // messages with events
	heartbeats atomic.Int64 // "[]" messages
	other      atomic.Int64 // messages that are not arrays of events (notices)
	gaps       atomic.Int64 // messages whose first seq > previous last + 1
	dups       atomic.Int64 // messages whose first seq <= previous last
	done       atomic.Int64 // viewers whose stream ended, one way or another
}

// viewer is one WebSocket connection to the job stream, read by its own
// goroutine with gorilla/websocket (not jobrun's client), as an
// independent client would.
type viewer struct {
	c       *websocket.Conn
	sample  bool        // record latencies (live viewers; not replays)
	dialed  time.Time   // when the dial began (replay time starts here)
	last    int64       // the last seq received
	exit    bool        // the exit event was received
	exitAt  time.Time   // when it was
	code    int         // close code, 1006 for a connection lost without one, -1 for another error
	err     error       // the error that ended the stream
	retries int         // dial attempts that failed before this connection
	cut     atomic.Bool // closed by us when the run was aborted
	ended   atomic.Bool // read has returned
}

// dialer builds viewers' connections. The write buffer is pooled, since a
// viewer writes nothing but pongs and its close frame.
func newDialer(readBuf int) *websocket.Dialer {
	return &websocket.Dialer{
		ReadBufferSize:   readBuf,
		WriteBufferPool:  &sync.Pool{},
		HandshakeTimeout: 30 * time.Second,
		NetDialContext:   (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	}
}

// dial connects to url, retrying a few times with backoff (a connect
// storm can overflow the listen backlog, or meet a per-client limit).
func dial(ctx context.Context, d *websocket.Dialer, url string) (*websocket.Conn, int, error) {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		c, resp, err := d.DialContext(ctx, url, nil)
		if err == nil {
			c.SetReadLimit(64 << 20)
			return c, attempt, nil
		}
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
				return nil, attempt, err
			}
		}
		if attempt == 5 || ctx.Err() != nil {
			return nil, attempt, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff *= 2
	}
}

// read reads the stream to its end. For each message it looks only at the
// first event's seq and time and the last event's seq and type (scan), so
// that the client costs little next to the server under test.
func (v *viewer) read(st *stats) {
	defer st.done.Add(1)
	defer v.ended.Store(true)
	var buf bytes.Buffer
	for {
		_, r, err := v.c.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			v.end(err)
			return
		}
		now := time.Now()
		m := scan(buf.Bytes())
		switch m.kind {
		case msgHeartbeat:
			st.heartbeats.Add(1)
			continue
		case msgOther:
			st.other.Add(1)
			continue
		}
		st.messages.Add(1)
		switch {
		case m.first == v.last+1:
		case m.first <= v.last:
			st.dups.Add(1)
		default:
			st.gaps.Add(1)
		}
		st.events.Add(m.last - m.first + 1)
		v.last = m.last
		if v.sample {
			st.lat.add(now.Sub(m.time))
		}
		if m.exit {
			v.exit, v.exitAt = true, now
		}
	}
}

// end records why the stream ended.
func (v *viewer) end(err error) {
	v.err = err
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		v.code = ce.Code
	default:
		v.code = -1
	}
}

// abort closes the viewer's connection for a run cut short, unless its
// stream has already ended.
func (v *viewer) abort() {
	if v.c != nil && !v.ended.Load() {
		v.cut.Store(true)
		v.c.Close()
	}
}

// Kinds of message.
const (
	msgEvents = iota
	msgHeartbeat
	msgOther
)

// message is what scan finds in one stream message.
type message struct {
	kind        int
	first, last int64
	time        time.Time // the first event's
	exit        bool      // the last event is the exit
}

var (
	seqKey  = []byte(`{"seq":`)
	timeKey = []byte(`,"time":"`)
	exitKey = []byte(`"type":"exit"`)
)

// scan reads a stream message (a JSON array of events, each object
// starting with "seq" then "time", as docs/protocol.md and jobs.AppendJSON
// have it) without decoding it: the first event's seq and time, and the
// last event's seq and whether it is the exit. `{"seq":` cannot occur
// inside a string, where quotes are escaped, so the last one found is the
// start of the last event.
func scan(b []byte) message {
	if len(b) == 2 && b[0] == '[' && b[1] == ']' {
		return message{kind: msgHeartbeat}
	}
	if len(b) < 2 || b[0] != '[' || !bytes.HasPrefix(b[1:], seqKey) {
		return message{kind: msgOther}
	}
	rest := b[1+len(seqKey):]
	first, n := parseUint(rest)
	rest = rest[n:]
	if n == 0 || !bytes.HasPrefix(rest, timeKey) {
		return message{kind: msgOther}
	}
	rest = rest[len(timeKey):]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return message{kind: msgOther}
	}
	t, ok := parseTime(rest[:q])
	if !ok {
		return message{kind: msgOther}
	}
	i := bytes.LastIndex(b, seqKey)
	last, n := parseUint(b[i+len(seqKey):])
	if n == 0 {
		return message{kind: msgOther}
	}
	return message{kind: msgEvents, first: first, last: last, time: t,
		exit: bytes.Contains(b[i:], exitKey)}
}

// parseUint parses the decimal digits at the start of b and returns the
// value and how many bytes they took.
func parseUint(b []byte) (int64, int) {
	var v int64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}

// parseTime parses an event time, 2006-01-02T15:04:05.000000Z, without
// the generality (and cost) of time.Parse; other forms fall back to it.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) == 27 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == '.' && b[26] == 'Z' {
		num := func(s []byte) int { v, _ := parseUint(s); return int(v) }
		return time.Date(num(b[0:4]), time.Month(num(b[5:7])), num(b[8:10]),
			num(b[11:13]), num(b[14:16]), num(b[17:19]), num(b[20:26])*1000, time.UTC), true
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	return t, err == nil
}

// closeName names a close code for the report.
func closeName(code int) string {
	switch code {
	case -1:
		return "error"
	case websocket.CloseAbnormalClosure:
		return "1006"
	}
	return strconv.Itoa(code)
}
