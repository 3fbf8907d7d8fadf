package jobs

import (
	"bytes"
	"unicode/utf8"
)

// piece is one line event's worth of bytes cut from a stream: Data excludes
// the terminator EOL. Data is a slice of the read buffer (or, for a line
// that straddles two read buffers, of a private copy); it is capped so that
// appending to it can never overwrite the bytes that follow.
type piece struct {
	Data []byte
	EOL  string
}

// splitter cuts one stream's bytes into pieces. It is a pure state machine:
// the caller feeds it what it reads (write), tells it when the flush delay
// has passed (flush) and when the stream ended (close). Concatenating Data
// and EOL of every piece gives back exactly the bytes written, whatever the
// chunking and whenever flush is called.
//
// It never copies bytes except the unfinished line when consecutive writes
// are not adjacent in memory (the reader started a new buffer); it never
// modifies the bytes it is given, and the caller must not either while a
// piece referencing them may still be in use.
type splitter struct {
	max int // longest Data; MaxLineBytes unless a test says otherwise

	// pend holds the bytes of the current line not yet emitted. Its
	// capacity reaches to the end of the read buffer, which lets write
	// extend it in place when the next read lands right after it.
	pend []byte
	// scanned is how many leading bytes of pend are known to hold no
	// "\n" and no "\r". A held "\r" is the byte at pend[scanned].
	scanned int
	// held: a flush already held back an incomplete UTF-8 sequence; the
	// next flush without a write in between emits it anyway.
	held bool
}

// split modes: what the caller knows about the bytes after pend.
const (
	modeRead  = iota // more bytes may follow at any moment
	modeFlush        // nothing came for the flush delay
	modeEOF          // nothing will ever come
)

func newSplitter() splitter { return splitter{max: MaxLineBytes} }

// write splits p, the bytes read right after everything written before,
// appending finished pieces to out.
func (s *splitter) write(p []byte, out []piece) []piece {
	for len(p) > 0 {
		s.held = false
		switch {
		case len(s.pend) == 0:
			s.pend, s.scanned, p = p, 0, nil
		case adjacent(s.pend, p):
			s.pend, p = s.pend[:len(s.pend)+len(p)], nil
		default:
			// The line continues in another buffer: copy just enough of p
			// to finish it (or cut it), then go on with the rest of p in
			// place.
			j := s.joinLen(p)
			joined := make([]byte, len(s.pend)+j)
			copy(joined, s.pend)
			copy(joined[len(s.pend):], p[:j])
			s.pend, p = joined, p[j:]
		}
		out = s.split(out, modeRead)
	}
	return out
}

// flush is called when no byte arrived for the flush delay: it emits the
// held "\r" and the unterminated line as a fragment, except an incomplete
// UTF-8 sequence at its end, which it holds back once.
func (s *splitter) flush(out []piece) []piece {
	if s.held {
		s.held = false
		return s.split(out, modeEOF)
	}
	out = s.split(out, modeFlush)
	s.held = len(s.pend) > 0
	return out
}

// close emits everything left: the stream has ended.
func (s *splitter) close(out []piece) []piece {
	out = s.split(out, modeEOF)
	s.pend, s.scanned, s.held = nil, 0, false
	return out
}

// pending reports whether bytes are waiting for a terminator or for time.
func (s *splitter) pending() bool { return len(s.pend) > 0 }

// joinLen is how many bytes of p, which does not follow pend in memory,
// must be copied after pend so that split can make progress: up to and
// including the first terminator (and the byte after a "\r", to see whether
// it is "\n"), or up to the length cut.
func (s *splitter) joinLen(p []byte) int {
	need := max(1, s.max+1-len(s.pend))
	end := min(len(p), need)
	if i := indexEOL(p[:end]); i >= 0 {
		end = i + 1
		if p[i] == '\r' && i+1 < len(p) {
			end++
		}
	}
	return end
}

// split emits the pieces that pend holds, as far as mode allows.
func (s *splitter) split(out []piece, mode int) []piece {
	for len(s.pend) > 0 {
		n := len(s.pend)
		end := min(n, s.max+1) // a terminator at index max still fits
		if s.scanned < end {
			if i := indexEOL(s.pend[s.scanned:end]); i >= 0 {
				at := s.scanned + i
				switch {
				case s.pend[at] == '\n':
					out = s.emit(out, at, "\n", 1)
				case at+1 < n && s.pend[at+1] == '\n':
					out = s.emit(out, at, "\r\n", 2)
				case at+1 < n || mode != modeRead:
					out = s.emit(out, at, "\r", 1)
				default: // "\r" is the last byte so far: wait for the next
					s.scanned = at
					return out
				}
				continue
			}
			s.scanned = end
		}
		if n > s.max { // no terminator within max bytes: cut for length
			out = s.emit(out, s.lengthCut(), "", 0)
			continue
		}
		switch mode {
		case modeRead:
			return out
		case modeFlush:
			if c := n - incompleteTail(s.pend); c > 0 {
				out = s.emit(out, c, "", 0)
			}
			return out
		default:
			out = s.emit(out, n, "", 0)
		}
	}
	return out
}

// emit appends pend[:n] with eol and drops those bytes and the eolLen bytes
// of the terminator from pend.
func (s *splitter) emit(out []piece, n int, eol string, eolLen int) []piece {
	out = append(out, piece{Data: s.pend[:n:n], EOL: eol})
	s.pend = s.pend[n+eolLen:]
	s.scanned = max(0, s.scanned-n-eolLen)
	if len(s.pend) == 0 {
		s.scanned = 0
	}
	return out
}

// lengthCut is where to cut pend, longer than max, for length: at max, or
// before a valid UTF-8 sequence that straddles max.
func (s *splitter) lengthCut() int {
	k := incompleteTail(s.pend[:s.max])
	if k == 0 {
		return s.max
	}
	seq := s.pend[s.max-k : min(len(s.pend), s.max-k+utf8.UTFMax)]
	if utf8.FullRune(seq) {
		if r, size := utf8.DecodeRune(seq); r == utf8.RuneError && size == 1 {
			return s.max // not valid UTF-8 after all: cut anywhere
		}
	}
	return s.max - k
}

// indexEOL returns the index of the first "\n" or "\r" in p, or -1. It
// searches windows that double in size, so that finding a terminator d bytes
// away costs O(d) even when the other kind of terminator is far away or
// absent (a progress bar redrawn with "\r" and never a "\n").
func indexEOL(p []byte) int {
	for off, w := 0, 64; off < len(p); off, w = off+w, w*2 {
		q := p[off:min(len(p), off+w)]
		i := bytes.IndexByte(q, '\n')
		if i < 0 {
			i = len(q)
		}
		if j := bytes.IndexByte(q[:i], '\r'); j >= 0 {
			return off + j
		}
		if i < len(q) {
			return off + i
		}
	}
	return -1
}

// adjacent reports whether b starts right where a ends in memory.
func adjacent(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && cap(a) > len(a) && &a[:len(a)+1][len(a)] == &b[0]
}

// incompleteTail returns how many bytes at the end of p (0 to 3) start a
// UTF-8 sequence that is valid so far but not complete.
func incompleteTail(p []byte) int {
	for k := 1; k <= utf8.UTFMax-1 && k <= len(p); k++ {
		c := p[len(p)-k]
		if c < 0x80 {
			return 0
		}
		if c < 0xC0 { // continuation byte: look further back
			continue
		}
		if seqLen(c) > k && validPrefix(p[len(p)-k:]) {
			return k
		}
		return 0
	}
	return 0
}

// seqLen is the length of the UTF-8 sequence that lead byte c starts, or 0
// if c cannot start one.
func seqLen(c byte) int {
	switch {
	case c >= 0xC2 && c <= 0xDF:
		return 2
	case c >= 0xE0 && c <= 0xEF:
		return 3
	case c >= 0xF0 && c <= 0xF4:
		return 4
	}
	return 0
}

// validPrefix reports whether p, shorter than the sequence its first byte
// starts, can still become a valid UTF-8 encoding.
func validPrefix(p []byte) bool {
	for i := 1; i < len(p); i++ {
		lo, hi := byte(0x80), byte(0xBF)
		if i == 1 {
			switch p[0] {
			case 0xE0:
				lo = 0xA0
			case 0xED:
				hi = 0x9F
			case 0xF0:
				lo = 0x90
			case 0xF4:
				hi = 0x8F
			}
		}
		if p[i] < lo || p[i] > hi {
			return false
		}
	}
	return true
}
