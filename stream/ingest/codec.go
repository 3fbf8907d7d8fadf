package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// Binary events messages. Besides {"type":"events"} text messages, an
// agent may send a batch as one binary WebSocket message, which carries
// the bytes as they are (no escaping, no base64) and decodes without
// reflection: decoding JSON was most of the server's work per event.
// docs/protocol.md has the layout:
//
//	version  byte     1
//	first    uvarint  seq of the first event; the others follow contiguously
//	count    uvarint  number of events, 1..MaxEvents
//	events, each:
//	  kind   byte     1 line, 2 exit, 3 progress
//	  time   varint   µs since the previous event (the first: since the Unix epoch)
//	  kind 1 (line):
//	    stream byte   1 stdout, 2 stderr, 3 tty
//	    eol    byte   0 "", 1 "\n", 2 "\r\n", 3 "\r"
//	    flags  byte   1: directive
//	    line   varint the visual line number
//	    len    uvarint, then len bytes: the exact bytes of the piece
//	  kinds 2 and 3:
//	    len    uvarint, then len bytes: the event's wire JSON object
//
// Varints are encoding/binary's (signed ones zigzag). Decoding checks every
// length, so a damaged message is an error, never a panic.

// binaryVersion is the first byte of a binary events message.
const binaryVersion = 1

// Event kinds and stream codes of binary events messages.
const (
	binLine     = 1
	binExit     = 2
	binProgress = 3
)

var binStreams = [...]jobs.Stream{1: jobs.StreamStdout, 2: jobs.StreamStderr, 3: jobs.StreamTTY}

func binStream(s jobs.Stream) byte {
	for i, name := range binStreams {
		if name == s && i > 0 {
			return byte(i)
		}
	}
	return 0
}

// appendBinaryEvents appends evs, contiguous and not empty, as one binary
// events message to b.
func appendBinaryEvents(b []byte, evs []jobs.Event) ([]byte, error) {
	b = append(b, binaryVersion)
	b = binary.AppendUvarint(b, uint64(evs[0].Seq))
	b = binary.AppendUvarint(b, uint64(len(evs)))
	var prev int64
	var js []byte
	for i := range evs {
		e := &evs[i]
		if e.Seq != evs[0].Seq+jobs.Seq(i) {
			return b, fmt.Errorf("encode events: seq %d after %d: %w", e.Seq, evs[0].Seq+jobs.Seq(i)-1, jobs.ErrInvalid)
		}
		t := e.Time.UnixMicro()
		switch e.Type {
		case jobs.TypeLine:
			b = append(b, binLine)
			b = binary.AppendVarint(b, t-prev)
			var flags byte
			if e.Directive {
				flags = 1
			}
			b = append(b, binStream(e.Stream), jobs.EOLCode(e.EOL), flags)
			b = binary.AppendVarint(b, e.Line)
			b = binary.AppendUvarint(b, uint64(len(e.Data)))
			b = append(b, e.Data...)
		case jobs.TypeExit, jobs.TypeProgress:
			kind := byte(binExit)
			if e.Type == jobs.TypeProgress {
				kind = binProgress
			}
			b = append(b, kind)
			b = binary.AppendVarint(b, t-prev)
			js = e.AppendJSON(js[:0])
			b = binary.AppendUvarint(b, uint64(len(js)))
			b = append(b, js...)
		default:
			return b, fmt.Errorf("encode events: seq %d has type %q: %w", e.Seq, e.Type, jobs.ErrInvalid)
		}
		prev = t
	}
	return b, nil
}

// errBinary wraps every decoding error of a binary events message.
var errBinary = errors.New("malformed binary events message")

// decodeBinaryEvents decodes one binary events message. Line events' Data
// alias p.
func decodeBinaryEvents(p []byte) ([]jobs.Event, error) {
	d := binDecoder{p: p}
	if len(p) == 0 || p[0] != binaryVersion {
		return nil, fmt.Errorf("%w: unknown version: %w", errBinary, jobs.ErrInvalid)
	}
	d.off = 1
	first := d.uvarint()
	n := d.uvarint()
	if d.err == nil && (first < 1 || first > 1<<62 || n < 1 || n > MaxEvents) {
		d.fail("bad seq or count")
	}
	if d.err != nil {
		return nil, d.err
	}
	evs := make([]jobs.Event, 0, n)
	var t int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		kind := d.byte()
		t += d.varint()
		e := jobs.Event{Seq: jobs.Seq(first + i), Time: time.UnixMicro(t).UTC()}
		switch kind {
		case binLine:
			st, eol, flags := d.byte(), d.byte(), d.byte()
			if int(st) >= len(binStreams) || st == 0 || eol > 3 || flags > 1 {
				d.fail("bad line header")
			}
			e.Type, e.EOL, e.Directive = jobs.TypeLine, jobs.EOLFromCode(eol), flags == 1
			if d.err == nil {
				e.Stream = binStreams[st]
			}
			e.Line = d.varint()
			e.Data = d.bytes()
		case binExit, binProgress:
			js := d.bytes()
			if d.err != nil {
				break
			}
			seq, tm := e.Seq, e.Time
			if err := e.UnmarshalJSON(js); err != nil {
				d.fail("bad event JSON")
				break
			}
			want := jobs.TypeExit
			if kind == binProgress {
				want = jobs.TypeProgress
			}
			if e.Type != want {
				d.fail("event type does not match its kind")
			}
			e.Seq, e.Time = seq, tm
		default:
			d.fail("unknown event kind")
		}
		evs = append(evs, e)
	}
	if d.err == nil && d.off != len(p) {
		d.fail("bytes after the last event")
	}
	if d.err != nil {
		return nil, d.err
	}
	return evs, nil
}

// binDecoder reads a binary events message; the first error sticks.
type binDecoder struct {
	p   []byte
	off int
	err error
}

func (d *binDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d: %w", errBinary, what, d.off, jobs.ErrInvalid)
	}
}

func (d *binDecoder) byte() byte {
	if d.err != nil || d.off >= len(d.p) {
		d.fail("truncated")
		return 0
	}
	d.off++
	return d.p[d.off-1]
}

func (d *binDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *binDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.p[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// bytes reads a uvarint length and that many bytes.
func (d *binDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.p)-d.off) {
		d.fail("length beyond the end")
		return nil
	}
	end := d.off + int(n)
	b := d.p[d.off:end:end]
	d.off = end
	return b
}
