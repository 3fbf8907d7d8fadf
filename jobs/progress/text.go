package progress

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxProgressMessage bounds Report.Message, in runes; a longer message is
// cut and ends with "…". Auto-detected messages are whole lines, and a
// progress event is a summary, not a second copy of the log.
const maxProgressMessage = 200

// parseDecimal parses a plain decimal number: digits with an optional
// fraction, nothing else (no sign, exponent, NaN or Inf).
func parseDecimal(s string) (float64, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// parseNumber parses a number captured by a regex: blanks, a trailing "%"
// and thousands separators are allowed.
func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimSpace(strings.TrimSuffix(s, "%"))
	s = strings.ReplaceAll(s, ",", "")
	return parseDecimal(s)
}

func validPercent(v float64) bool { return v >= 0 && v <= 100 } // false for NaN

// validCount accepts current/total counts: 0 <= current <= total, total > 0.
func validCount(cur, total float64) bool {
	return total > 0 && cur >= 0 && cur <= total && !math.IsInf(total, 0)
}

func roundPercent(v float64) float64 {
	v = math.Round(v*100) / 100
	return math.Max(0, math.Min(100, v))
}

// cleanMessage makes s valid UTF-8 on one line with single spaces.
func cleanMessage(s string) string {
	if s == "" {
		return ""
	}
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
}

// boundMessage cuts s to maxProgressMessage runes.
func boundMessage(s string) string {
	if utf8.RuneCountInString(s) <= maxProgressMessage {
		return s
	}
	n := 0
	for i := range s {
		if n == maxProgressMessage-1 {
			return strings.TrimRight(s[:i], " ") + "…"
		}
		n++
	}
	return s
}

// stripEscapes returns line as text for matching: CSI, OSC, DCS and other
// escape sequences removed, tabs as spaces, other control characters
// removed. An unterminated sequence swallows the rest of the line, as a
// terminal would wait for its end.
func stripEscapes(line []byte) string {
	if !hasControl(line) {
		return string(line)
	}
	out := make([]byte, 0, len(line))
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == 0x1b:
			i = skipEscape(line, i)
		case c == '\t':
			out = append(out, ' ')
			i++
		case c < 0x20 || c == 0x7f:
			i++
		default:
			out = append(out, c)
			i++
		}
	}
	return string(out)
}

// hasControl reports whether line has a control character (C0 or DEL);
// they are all single bytes, so no UTF-8 decoding is needed.
func hasControl(line []byte) bool {
	for _, c := range line {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// skipEscape returns the index just after the escape sequence at line[i].
func skipEscape(line []byte, i int) int {
	i++ // ESC
	if i >= len(line) {
		return i
	}
	switch c := line[i]; c {
	case '[': // CSI: parameters, intermediates, one final byte
		for i++; i < len(line); i++ {
			if b := line[i]; b >= 0x40 && b <= 0x7e {
				return i + 1
			}
		}
		return i
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: up to BEL or ST
		for i++; i < len(line); i++ {
			if line[i] == 0x07 && c == ']' {
				return i + 1
			}
			if line[i] == 0x1b && i+1 < len(line) && line[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	default: // ESC, intermediates, final: "ESC ( B", "ESC 7", "ESC ="
		for ; i < len(line) && line[i] >= 0x20 && line[i] <= 0x2f; i++ {
		}
		if i < len(line) {
			i++
		}
		return i
	}
}
