package jobs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jobrun/jobrun/jobs/progress"
)

// TimeLayout is the wire format of event times: RFC 3339 in UTC with
// microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// AppendJSON appends the wire form of e (one JSON object) to b. It is the
// hot path of every transport, so line events are encoded by hand without
// reflection or per-event allocation.
func (e *Event) AppendJSON(b []byte) []byte {
	var tc timeCache
	return e.appendJSON(b, &tc)
}

func (e *Event) appendJSON(b []byte, tc *timeCache) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(e.Seq), 10)
	b = append(b, `,"time":"`...)
	b = tc.append(b, e.Time)
	b = append(b, `","type":`...)
	b = appendString(b, string(e.Type))
	switch e.Type {
	case TypeLine:
		b = append(b, `,"stream":`...)
		b = appendString(b, string(e.Stream))
		b = append(b, `,"line":`...)
		b = strconv.AppendInt(b, e.Line, 10)
		b = append(b, `,"text":`...)
		var valid bool
		b, valid = appendText(b, e.Data)
		b = append(b, `,"eol":`...)
		b = appendString(b, e.EOL)
		if !valid {
			b = append(b, `,"data":"`...)
			b = base64.StdEncoding.AppendEncode(b, e.Data)
			b = append(b, '"')
		}
		if e.Directive {
			b = append(b, `,"directive":true`...)
		}
	case TypeExit:
		b = append(b, `,"status":`...)
		b = appendString(b, string(e.Status))
		b = append(b, `,"exit_code":`...)
		if e.ExitCode == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendInt(b, int64(*e.ExitCode), 10)
		}
		if e.Signal != "" {
			b = append(b, `,"signal":`...)
			b = appendString(b, e.Signal)
		}
		if e.Incomplete {
			b = append(b, `,"incomplete":true,"incomplete_reason":`...)
			b, _ = appendText(b, []byte(e.IncompleteReason))
		}
	case TypeProgress:
		if e.Progress != nil {
			p, err := json.Marshal(e.Progress)
			if err == nil && len(p) > 2 {
				b = append(b, ',')
				b = append(b, p[1:len(p)-1]...)
			}
		}
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler with the wire form.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// wireEvent is the decoding shape of the wire form.
type wireEvent struct {
	Seq       Seq       `json:"seq"`
	Time      time.Time `json:"time"`
	Type      EventType `json:"type"`
	Stream    Stream    `json:"stream"`
	Line      int64     `json:"line"`
	Text      *string   `json:"text"`
	Data      []byte    `json:"data"`
	EOL       string    `json:"eol"`
	Directive bool      `json:"directive"`
	Status    Status    `json:"status"`
	ExitCode  *int      `json:"exit_code"`
	Signal    string    `json:"signal"`
	// Incomplete and IncompleteReason: exit events only.
	Incomplete       bool   `json:"incomplete"`
	IncompleteReason string `json:"incomplete_reason"`
	progress.Report
}

// UnmarshalJSON implements json.Unmarshaler for the wire form. The bytes of
// a line come from "data" when present, else from "text".
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	*e = Event{Seq: w.Seq, Time: w.Time, Type: w.Type}
	switch w.Type {
	case TypeLine:
		e.Stream, e.Line, e.EOL, e.Directive = w.Stream, w.Line, w.EOL, w.Directive
		switch {
		case w.Data != nil:
			e.Data = w.Data
		case w.Text != nil:
			e.Data = []byte(*w.Text)
		default:
			e.Data = []byte{}
		}
	case TypeExit:
		e.Status, e.ExitCode, e.Signal = w.Status, w.ExitCode, w.Signal
		if w.Incomplete {
			e.Incomplete, e.IncompleteReason = true, w.IncompleteReason
		}
	case TypeProgress:
		p := w.Report
		e.Progress = &p
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// timeCache remembers the formatted date and time of one second, which
// consecutive events mostly share, so that only the microseconds are
// formatted per event.
type timeCache struct {
	sec    int64
	prefix [20]byte // "2006-01-02T15:04:05."
	ok     bool
}

// append appends t in TimeLayout.
func (c *timeCache) append(b []byte, t time.Time) []byte {
	t = t.UTC()
	if sec := t.Unix(); !c.ok || sec != c.sec {
		y := t.Year()
		if y < 0 || y > 9999 {
			return t.AppendFormat(b, TimeLayout)
		}
		p := appendTime(c.prefix[:0], t)
		copy(c.prefix[:], p[:20])
		c.sec, c.ok = sec, true
	}
	b = append(b, c.prefix[:]...)
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendTime appends t in TimeLayout. It is hand-written because
// time.Time.AppendFormat is the largest single cost of encoding a replay.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	hour, min, sec := t.Clock()
	us := t.Nanosecond() / 1000
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, us, 6)
	return append(b, 'Z')
}

// appendDigits appends v zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

// appendString appends s, known to be valid UTF-8, as a JSON string.
func appendString(b []byte, s string) []byte {
	b, _ = appendText(b, []byte(s))
	return b
}

// jsonSafe marks the bytes that appendText copies as they are: printable
// ASCII other than the quote and the backslash.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendText appends p as a JSON string, replacing invalid UTF-8 with
// U+FFFD and escaping quotes, backslashes, control characters and the JS
// line separators U+2028 and U+2029. It reports whether p was valid UTF-8.
func appendText(b []byte, p []byte) ([]byte, bool) {
	b = append(b, '"')
	valid := true
	start := 0
	for i := 0; i < len(p); {
		for i < len(p) && jsonSafe[p[i]] {
			i++
		}
		if i == len(p) {
			break
		}
		c := p[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, p[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			valid = false
			b = append(b, p[start:i]...)
			b = append(b, "\ufffd"...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, p[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, p[start:]...)
	return append(b, '"'), valid
}

// AppendJSONArray appends the events as one JSON array: the payload of one
// WebSocket message.
func AppendJSONArray(b []byte, events []Event) []byte {
	b, _ = AppendJSONArrayAt(b, events, nil)
	return b
}

// AppendJSONArrayAt is AppendJSONArray that also appends to offs where each
// event's JSON starts in b, so that a suffix of the array can be cut
// without encoding it again.
func AppendJSONArrayAt(b []byte, events []Event, offs []int) ([]byte, []int) {
	b = append(b, '[')
	var tc timeCache
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		if offs != nil {
			offs = append(offs, len(b))
		}
		b = events[i].appendJSON(b, &tc)
	}
	return append(b, ']'), offs
}
