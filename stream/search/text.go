package search

import (
	"unicode/utf8"
)

// The text of a visual line as the job page shows it: ui/static/ansi.js
// parseAnsi with everything but the text left out. Search matches this
// text and gives offsets into it, so the two must agree character for
// character; search_text_test.go holds cases from ansi.test.js.
//
// Per piece (one line event's bytes, invalid UTF-8 read as U+FFFD per
// byte, as the wire's "text" carries it): printable characters and TAB are
// text; ESC sequences (CSI, OSC, DCS/SOS/PM/APC strings, two- and
// three-byte escapes) and their 8-bit introducers are stripped; other C0
// controls, DEL and C1 controls are dropped; BACKSPACE erases the last
// character that the same piece produced. A sequence cut at the end of a
// piece continues in the stream's next piece; a line terminator ("\n",
// "\r\n", "\r") abandons it.

// escMode is the parser state carried from one piece to the next.
type escMode uint8

// The parser modes of ansi.js.
const (
	modeGround escMode = iota
	modeEsc
	modeEscInt
	modeCSI
	modeOSC
	modeOSCEsc
	modeStr
	modeStrEsc
)

// plainASCII[b] is true for the bytes that are text as they are: printable
// ASCII and TAB.
var plainASCII = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = true
	}
	t['\t'] = true
	return t
}()

// isPlainASCII reports whether p is text as it is (no escape, no control,
// nothing beyond ASCII).
func isPlainASCII(p []byte) bool {
	for _, b := range p {
		if !plainASCII[b] {
			return false
		}
	}
	return true
}

// appendText appends the text of piece p to dst, starting in mode and
// returning the mode after it. Backspace erases only what this piece
// appended. At most limit bytes of dst are kept: full reports that some
// text was left out.
func appendText(dst, p []byte, mode escMode, limit int) (out []byte, m escMode, full bool) {
	if mode == modeGround && isPlainASCII(p) {
		if len(dst)+len(p) > limit {
			return append(dst, p[:max(limit-len(dst), 0)]...), mode, true
		}
		return append(dst, p...), mode, false
	}
	start := len(dst)
	for i := 0; i < len(p); {
		c, size := rune(p[i]), 1
		if c >= utf8.RuneSelf {
			c, size = utf8.DecodeRune(p[i:]) // invalid: U+FFFD for one byte
		}
		again := false // the character is read again in the new mode
		switch mode {
		case modeGround:
			switch {
			case c >= 0x20 && c != 0x7f && (c < 0x80 || c > 0x9f), c == '\t':
				if len(dst)+size > limit {
					full = true
				} else if c < utf8.RuneSelf {
					dst = append(dst, byte(c))
				} else {
					dst = utf8.AppendRune(dst, c)
				}
			case c == 0x1b:
				mode = modeEsc
			case c == 0x08:
				if len(dst) > start {
					_, n := utf8.DecodeLastRune(dst[start:])
					dst = dst[:len(dst)-n]
				}
			case c == 0x9b:
				mode = modeCSI
			case c == 0x9d:
				mode = modeOSC
			case c == 0x90 || c == 0x98 || c == 0x9e || c == 0x9f:
				mode = modeStr
			}
		case modeEsc:
			switch {
			case c == '[':
				mode = modeCSI
			case c == ']':
				mode = modeOSC
			case c == 'P' || c == 'X' || c == '^' || c == '_':
				mode = modeStr
			case c >= 0x20 && c <= 0x2f:
				mode = modeEscInt
			case c >= 0x30 && c <= 0x7e:
				mode = modeGround
			case c == 0x1b:
			case c == 0x18 || c == 0x1a:
				mode = modeGround
			case c >= 0x20:
				mode, again = modeGround, true
			}
		case modeEscInt:
			switch {
			case c >= 0x30 && c <= 0x7e:
				mode = modeGround
			case c == 0x1b:
				mode = modeEsc
			case c == 0x18 || c == 0x1a:
				mode = modeGround
			case c > 0x7e:
				mode, again = modeGround, true
			}
		case modeCSI:
			switch {
			case c >= 0x20 && c <= 0x3f:
			case c >= 0x40 && c <= 0x7e:
				mode = modeGround
			case c == 0x1b:
				mode = modeEsc
			case c == 0x18 || c == 0x1a:
				mode = modeGround
			case c > 0x7f:
				mode, again = modeGround, true
			}
		case modeOSC:
			switch {
			case c == 0x07 || c == 0x9c:
				mode = modeGround
			case c == 0x1b:
				mode = modeOSCEsc
			case c == 0x18 || c == 0x1a:
				mode = modeGround
			}
		case modeOSCEsc, modeStrEsc:
			if c == '\\' {
				mode = modeGround
			} else {
				mode, again = modeEsc, true
			}
		case modeStr:
			switch c {
			case 0x9c, 0x18, 0x1a:
				mode = modeGround
			case 0x1b:
				mode = modeStrEsc
			}
		}
		if !again {
			i += size
		}
	}
	return dst, mode, full
}

// isMarker reports whether text (a line's first piece) is an
// `::endgroup::` or `^^^ +++` marker, which the page hides like a
// directive (logmodel.js GH_END, BK_EXPAND).
func isMarker(text []byte) bool {
	var rest []byte
	switch {
	case len(text) >= 12 && string(text[:12]) == "::endgroup::":
		rest = text[12:]
	case len(text) >= 7 && string(text[:7]) == "^^^ +++":
		rest = text[7:]
	default:
		return false
	}
	for len(rest) > 0 {
		r, n := utf8.DecodeRune(rest)
		if !isJSSpace(r) {
			return false
		}
		rest = rest[n:]
	}
	return true
}

// isJSSpace reports whether r is white space to a JavaScript regular
// expression's \s.
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}
