package progress

import "bytes"

// The quick scan: every line of every job passes through Parse, and almost
// none holds progress. quickScan looks at the raw bytes once, with a table
// lookup per byte and no allocation, and tells Parse when no source can
// match, so that a plain log line costs a few nanoseconds per byte instead
// of the escape stripping, string copy and rule checks of the full parse.
// It is conservative: anything it cannot rule out goes to the full parse,
// and FuzzProgressParse checks that the two agree on every input.

// quickResult is the verdict of quickScan.
type quickResult uint8

const (
	quickMaybe quickResult = iota // run the full parse
	quickBlank                    // blank line: no progress, parser state unchanged
	quickNone                     // no progress, and not a bare number
)

// Byte classes of quickScan.
const (
	qSpace   = 1 << iota // ' ', '\t': blank, and a word separator (escape stripping turns tabs into spaces)
	qDigit               // '0'-'9'
	qDot                 // '.': allowed in a bare number
	qControl             // other control characters, ESC, DEL: escape stripping changes the text
	qHigh                // bytes >= 0x80: maybe Unicode space (TrimSpace), maybe a bar glyph
	qAuto                // '%', '/', '[', '|': a byte some heuristic needs
	qLook                // '#' (##vso) and ':' (curl's meter has six): look closer
	qOther               // any other printable ASCII byte
)

var quickClass = func() (t [256]uint8) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = qOther
	}
	for c := 0; c < 0x20; c++ {
		t[c] = qControl
	}
	t[0x7f] = qControl
	for _, c := range " \t" {
		t[c] = qSpace
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = qDigit
	}
	t['.'] = qDot
	for c := 0x80; c < 0x100; c++ {
		t[c] = qHigh
	}
	for _, c := range "%/[|" {
		t[c] = qAuto
	}
	t['#'] = qLook
	t[':'] = qLook
	return t
}()

// quickScan decides whether line (without its terminator) can hold
// progress for Parse without a user regex; auto selects the heuristics.
// It mirrors the sources' own first checks:
//   - a ::progress directive starts with "::progress" after blanks;
//   - OSC 9;4 starts with ESC, a control character;
//   - ##vso needs "##";
//   - a JSON line starts with '{' after blanks (Unicode blanks: a high byte);
//   - the heuristics (on lines of at most maxAutoLine bytes) need '%', a
//     '/' before a digit, six ':', " of " between words, a bar bracket
//     ('[', '|', '⸨'), or a line that is only a number (the pv -n rule,
//     which also keeps state between lines).
//
// Lines with control characters other than tabs go to the full parse:
// escape stripping changes their text.
func quickScan(line []byte, auto bool) quickResult {
	var seen uint8
	for _, c := range line {
		seen |= quickClass[c]
	}
	if seen&^qSpace == 0 {
		return quickBlank
	}
	if seen&qControl != 0 {
		return quickMaybe
	}
	// Only digits, dots, blanks and maybe Unicode blanks: a bare number to
	// the full parse, which also updates the pv -n state.
	if seen&^(qSpace|qDigit|qDot|qHigh) == 0 && seen&qDigit != 0 {
		return quickMaybe
	}
	first := line
	for len(first) > 0 && (first[0] == ' ' || first[0] == '\t') {
		first = first[1:]
	}
	if len(first) > 0 && (first[0] == '{' || first[0] >= 0x80) {
		return quickMaybe
	}
	if bytes.HasPrefix(first, []byte(directivePrefix)) {
		return quickMaybe
	}
	if seen&qLook != 0 && bytes.Contains(line, []byte("##")) {
		return quickMaybe
	}
	if !auto || len(line) > maxAutoLine {
		return quickNone
	}
	if seen&qLook != 0 && bytes.Count(line, []byte(":")) >= 6 {
		return quickMaybe
	}
	if seen&qAuto != 0 && quickAuto(line) {
		return quickMaybe
	}
	if seen&qHigh != 0 && bytes.Contains(line, []byte("⸨")) {
		return quickMaybe
	}
	if seen&qDigit != 0 && hasOf(line) {
		return quickMaybe
	}
	return quickNone
}

// quickAuto reports whether line has a '%', '[' or '|', or a '/' followed
// (after blanks) by a digit, as every count and size has.
func quickAuto(line []byte) bool {
	if bytes.IndexByte(line, '%') >= 0 || bytes.IndexByte(line, '[') >= 0 || bytes.IndexByte(line, '|') >= 0 {
		return true
	}
	for i := 0; i < len(line); i++ {
		if line[i] != '/' {
			continue
		}
		j := i + 1
		for j < len(line) && quickClass[line[j]] == qSpace {
			j++
		}
		if j < len(line) && isDigit(line[j]) {
			return true
		}
	}
	return false
}

// hasOf reports whether line has "of" in any case between blanks, as "3 of
// 10" has. It looks only where an 'f' is (a vectorized byte search), as
// most lines have none.
func hasOf(line []byte) bool {
	for _, f := range [2]byte{'f', 'F'} {
		for i := 0; i < len(line); {
			j := bytes.IndexByte(line[i:], f)
			if j < 0 {
				break
			}
			k := i + j
			if k >= 2 && k+1 < len(line) && line[k-1]|0x20 == 'o' &&
				quickClass[line[k-2]] == qSpace && quickClass[line[k+1]] == qSpace {
				return true
			}
			i = k + 1
		}
	}
	return false
}
