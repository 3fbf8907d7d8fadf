package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// Chunk body encoding. A chunk row holds the events first_seq..last_seq of
// one job; the seq of the i-th event is first_seq+i, so seq is not stored.
// Each event is:
//
//	kind   byte         kindLine, kindExit or kindProgress
//	time   varint       zigzag; µs since the previous event of the chunk
//	                    (the first event: since the Unix epoch)
//	kindLine:
//	  stream byte       streamStdout, streamStderr or streamTTY
//	  eol    byte       jobs.EOLCode
//	  flags  byte       flagDirective
//	  line   varint     zigzag
//	  len    uvarint
//	  data   len bytes  exactly as written
//	other kinds:
//	  len    uvarint
//	  json   len bytes  the event's wire JSON (jobs.Event.AppendJSON)
//
// Decoding checks every length against the body, so a damaged body yields
// an error, never a panic or a read out of bounds.

const (
	kindLine     byte = 1
	kindExit     byte = 2
	kindProgress byte = 3
)

const (
	streamStdout byte = 1
	streamStderr byte = 2
	streamTTY    byte = 3
)

const flagDirective byte = 1

// Chunk size limits: a batch larger than this is split into several rows.
const (
	MaxChunkEvents = 4096    // events in one chunk
	maxChunkBytes  = 1 << 20 // about, of one chunk's body
)

// ErrCorrupt wraps every decoding error: a damaged chunk, or a chunk row
// that does not agree with its body.
var ErrCorrupt = errors.New("corrupt event chunk")

func streamCode(s jobs.Stream) byte {
	switch s {
	case jobs.StreamStdout:
		return streamStdout
	case jobs.StreamStderr:
		return streamStderr
	case jobs.StreamTTY:
		return streamTTY
	}
	return 0
}

func streamFromCode(c byte) jobs.Stream {
	switch c {
	case streamStdout:
		return jobs.StreamStdout
	case streamStderr:
		return jobs.StreamStderr
	case streamTTY:
		return jobs.StreamTTY
	}
	return ""
}

func kindOf(t jobs.EventType) byte {
	switch t {
	case jobs.TypeLine:
		return kindLine
	case jobs.TypeExit:
		return kindExit
	case jobs.TypeProgress:
		return kindProgress
	}
	return 0
}

// ChunkEncoder accumulates the body of one chunk row. The zero value is
// ready after Reset. Every backend stores what it reports: a row (job,
// First, First+N-1, FirstLine, LastLine, N, Body).
type ChunkEncoder struct {
	Body      []byte
	N         int      // events in the chunk
	First     jobs.Seq // seq of its first event
	FirstLine int64    // the first line event's line; 0 until the chunk holds one
	LastLine  int64    // the highest line of its line events (seeking by line uses it)
	prev      int64    // time of the previous event, unix µs
	json      []byte   // scratch for non-line events
}

// Last is the seq of the chunk's last event.
func (c *ChunkEncoder) Last() jobs.Seq { return c.First + jobs.Seq(c.N) - 1 }

// Reset starts a new chunk whose first event has seq first, keeping the
// buffers.
func (c *ChunkEncoder) Reset(first jobs.Seq) {
	*c = ChunkEncoder{Body: c.Body[:0], json: c.json, First: first}
}

// Full reports whether e would not fit in the chunk any more.
func (c *ChunkEncoder) Full(e *jobs.Event) bool {
	return c.N >= MaxChunkEvents || c.N > 0 && len(c.Body)+len(e.Data)+32 > maxChunkBytes
}

// Add appends e to the chunk; its seq must be the next one.
func (c *ChunkEncoder) Add(e *jobs.Event) error {
	kind := kindOf(e.Type)
	if kind == 0 {
		return fmt.Errorf("event type %q cannot be stored", e.Type)
	}
	t := e.Time.UnixMicro()
	c.Body = append(c.Body, kind)
	c.Body = binary.AppendVarint(c.Body, t-c.prev) // wraps and unwraps exactly
	c.prev = t
	if kind == kindLine {
		var flags byte
		if e.Directive {
			flags |= flagDirective
		}
		c.Body = append(c.Body, streamCode(e.Stream), jobs.EOLCode(e.EOL), flags)
		c.Body = binary.AppendVarint(c.Body, e.Line)
		c.Body = binary.AppendUvarint(c.Body, uint64(len(e.Data)))
		c.Body = append(c.Body, e.Data...)
		if c.FirstLine == 0 {
			c.FirstLine = e.Line
		}
		// The highest, not the last: a stream's open line can continue
		// after the other stream started later lines.
		c.LastLine = max(c.LastLine, e.Line)
	} else {
		c.json = e.AppendJSON(c.json[:0])
		c.Body = binary.AppendUvarint(c.Body, uint64(len(c.json)))
		c.Body = append(c.Body, c.json...)
	}
	c.N++
	return nil
}

// ChunkDecoder reads the events of one chunk body in order.
type ChunkDecoder struct {
	body []byte
	off  int
	seq  jobs.Seq // seq of the next event
	t    int64    // time of the previous event, unix µs
}

// NewChunkDecoder decodes body, whose first event has seq first.
func NewChunkDecoder(body []byte, first jobs.Seq) *ChunkDecoder {
	return &ChunkDecoder{body: body, seq: first}
}

// Seq is the seq of the next event to decode.
func (d *ChunkDecoder) Seq() jobs.Seq { return d.seq }

// Next decodes the next event into e. It returns io.EOF after the last
// event. e.Data aliases the body (capacity-limited, so appending to it
// copies).
func (d *ChunkDecoder) Next(e *jobs.Event) error {
	if d.off >= len(d.body) {
		return io.EOF
	}
	kind := d.body[d.off]
	d.off++
	delta, err := d.varint()
	if err != nil {
		return err
	}
	d.t += delta
	*e = jobs.Event{Seq: d.seq, Time: time.UnixMicro(d.t).UTC()}
	d.seq++
	switch kind {
	case kindLine:
		if len(d.body)-d.off < 3 {
			return d.corrupt("truncated line header")
		}
		stream, eol, flags := d.body[d.off], d.body[d.off+1], d.body[d.off+2]
		d.off += 3
		e.Type, e.Stream, e.EOL = jobs.TypeLine, streamFromCode(stream), jobs.EOLFromCode(eol)
		if e.Stream == "" || eol > 3 || flags&^flagDirective != 0 {
			return d.corrupt("bad line header")
		}
		e.Directive = flags&flagDirective != 0
		if e.Line, err = d.varint(); err != nil {
			return err
		}
		e.Data, err = d.bytes()
		return err
	case kindExit, kindProgress:
		js, err := d.bytes()
		if err != nil {
			return err
		}
		seq, t := e.Seq, e.Time
		if err := e.UnmarshalJSON(js); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if kindOf(e.Type) != kind {
			return d.corrupt("event type does not match its kind")
		}
		e.Seq, e.Time = seq, t
		return nil
	}
	return d.corrupt(fmt.Sprintf("unknown event kind %d", kind))
}

func (d *ChunkDecoder) corrupt(what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrCorrupt, what, d.off)
}

func (d *ChunkDecoder) varint() (int64, error) {
	v, n := binary.Varint(d.body[d.off:])
	if n <= 0 {
		return 0, d.corrupt("bad varint")
	}
	d.off += n
	return v, nil
}

// bytes reads a uvarint length and that many bytes.
func (d *ChunkDecoder) bytes() ([]byte, error) {
	n, k := binary.Uvarint(d.body[d.off:])
	if k <= 0 {
		return nil, d.corrupt("bad length")
	}
	d.off += k
	if n > uint64(len(d.body)-d.off) {
		return nil, d.corrupt("length beyond the end")
	}
	end := d.off + int(n)
	b := d.body[d.off:end:end]
	d.off = end
	return b, nil
}

// DecodeChunk decodes a whole body that must hold exactly n events.
func DecodeChunk(body []byte, first jobs.Seq, n int) ([]jobs.Event, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: negative event count %d", ErrCorrupt, n)
	}
	d := NewChunkDecoder(body, first)
	evs := make([]jobs.Event, 0, min(n, MaxChunkEvents))
	for {
		var e jobs.Event
		err := d.Next(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	if len(evs) != n {
		return nil, fmt.Errorf("%w: %d events, the row says %d", ErrCorrupt, len(evs), n)
	}
	return evs, nil
}

// AppendDecoded appends the events of one chunk with seq > after to evs,
// stopping when evs holds limit events. Events are decoded in place, into
// the slot they end up in. A backend's read of a seq range decodes the
// chunk rows that cover it with it.
func AppendDecoded(evs []jobs.Event, body []byte, first jobs.Seq, n int, after jobs.Seq, limit int) ([]jobs.Event, error) {
	d := NewChunkDecoder(body, first)
	for len(evs) < limit {
		evs = append(evs, jobs.Event{})
		err := d.Next(&evs[len(evs)-1])
		if err != nil || evs[len(evs)-1].Seq <= after {
			evs = evs[:len(evs)-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return evs, err
		}
	}
	if len(evs) < limit && d.Seq() != first+jobs.Seq(n) {
		return evs, fmt.Errorf("%w: %d events, the row says %d", ErrCorrupt, d.Seq()-first, n)
	}
	return evs, nil
}
