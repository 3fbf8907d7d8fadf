package search

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"unicode"
	"unicode/utf8"

	"github.com/jobrun/jobrun/jobs"
)

// MaxRanges bounds the ranges reported for one line; the line still
// matches when it holds more.
const MaxRanges = 100

// maxQueryBytes bounds q.
const maxQueryBytes = 4096

// matcher finds a search's text in a line's text: a literal string or an
// RE2 regular expression, with or without case. Case-insensitive matching
// folds each character (Unicode simple case folding, as RE2's (?i) does).
type matcher struct {
	re       *regexp.Regexp // a regular expression; nil: lit
	pre      *matcher       // with re: a literal that every match of re holds, or nil
	lit      []byte         // the literal, folded unless exact
	exact    bool           // case-sensitive
	litASCII bool           // lit is ASCII: it can match ASCII text
	buf      []byte         // scratch: folded text
	offs     []int          // scratch: offs[i] is the text offset of buf[i]
	byteRngs [][2]int       // scratch
}

// newMatcher compiles q; a bad regular expression is an error wrapping
// jobs.ErrInvalid.
func newMatcher(q string, regex, exact bool) (*matcher, error) {
	if q == "" {
		return nil, fmt.Errorf("q: give the text to search for: %w", jobs.ErrInvalid)
	}
	if len(q) > maxQueryBytes || !utf8.ValidString(q) {
		return nil, fmt.Errorf("q: want at most %d bytes of UTF-8: %w", maxQueryBytes, jobs.ErrInvalid)
	}
	m := &matcher{exact: exact}
	if regex {
		expr := q
		if !exact {
			expr = "(?i)" + q
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("q=%q: not a regular expression (RE2 syntax): %v: %w", q, err, jobs.ErrInvalid)
		}
		m.re = re
		if lit, fold := requiredLiteral(expr); len(lit) > 0 {
			m.pre, _ = newMatcher(string(lit), false, !fold)
		}
		return m, nil
	}
	m.lit = []byte(q)
	if !exact {
		m.lit = foldString(nil, m.lit)
	}
	m.litASCII = isASCII(m.lit)
	return m, nil
}

// requiredLiteral returns a string that every match of the RE2
// expression expr holds, and whether it is to be found ignoring case; none
// when it knows none. It looks at literals, captures, concatenations and
// x+; the longest one found wins.
func requiredLiteral(expr string) (lit []rune, fold bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, false
	}
	var walk func(re *syntax.Regexp) ([]rune, bool)
	walk = func(re *syntax.Regexp) ([]rune, bool) {
		switch re.Op {
		case syntax.OpLiteral:
			return re.Rune, re.Flags&syntax.FoldCase != 0
		case syntax.OpCapture, syntax.OpPlus:
			return walk(re.Sub[0])
		case syntax.OpConcat:
			var best []rune
			var bestFold bool
			for _, sub := range re.Sub {
				if l, f := walk(sub); len(string(l)) > len(string(best)) {
					best, bestFold = l, f
				}
			}
			return best, bestFold
		}
		return nil, false
	}
	return walk(re.Simplify())
}

// fold maps r to the representative of its case orbit (unicode.SimpleFold,
// which RE2's (?i) uses): the orbit's ASCII lower-case letter if it has
// one, else its smallest character.
func fold(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if 'a' <= f && f <= 'z' {
			return f
		}
		m = min(m, f)
	}
	return m
}

// foldString appends the folded p to dst.
func foldString(dst, p []byte) []byte {
	for _, r := range string(p) {
		dst = utf8.AppendRune(dst, fold(r))
	}
	return dst
}

func isASCII(p []byte) bool {
	for _, b := range p {
		if b >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// match reports whether text matches, and appends the matches' ranges to
// ranges (at most MaxRanges, non-empty, in order) as offsets in
// UTF-16 code units, which is how the page's JavaScript counts. ascii
// says that text is ASCII; false means it may be or not.
func (m *matcher) match(text []byte, ascii bool, ranges [][2]int) ([][2]int, bool) {
	ascii = ascii || isASCII(text)
	var ok bool
	m.byteRngs, ok = m.find(text, ascii, m.byteRngs[:0])
	if !ok {
		return ranges, false
	}
	start := len(ranges)
	ranges = append(ranges, m.byteRngs...)
	if !ascii {
		toUTF16(text, ranges[start:])
	}
	return ranges, true
}

// find appends the byte ranges of the matches in text.
func (m *matcher) find(text []byte, ascii bool, rngs [][2]int) ([][2]int, bool) {
	switch {
	case m.re != nil:
		if m.pre != nil {
			// Cheap first: a line without the literal does not match.
			var ok bool
			if m.pre.byteRngs, ok = m.pre.find(text, ascii, m.pre.byteRngs[:0]); !ok {
				return rngs, false
			}
		}
		if !m.re.Match(text) {
			return rngs, false
		}
		for _, loc := range m.re.FindAllIndex(text, MaxRanges) {
			if loc[1] > loc[0] {
				rngs = append(rngs, [2]int{loc[0], loc[1]})
			}
		}
		return rngs, true
	case m.exact:
		return indexAll(text, m.lit, rngs, bytes.Index)
	case ascii:
		if !m.litASCII {
			return rngs, false
		}
		return indexAll(text, m.lit, rngs, indexFoldASCII)
	}
	// Fold the text, remembering where each folded byte came from.
	m.buf, m.offs = m.buf[:0], m.offs[:0]
	for i, r := range string(text) {
		n := len(m.buf)
		m.buf = utf8.AppendRune(m.buf, fold(r))
		for range len(m.buf) - n {
			m.offs = append(m.offs, i)
		}
	}
	m.offs = append(m.offs, len(text))
	start := len(rngs)
	rngs, ok := indexAll(m.buf, m.lit, rngs, bytes.Index)
	for i := start; i < len(rngs); i++ {
		rngs[i] = [2]int{m.offs[rngs[i][0]], m.offs[rngs[i][1]]}
	}
	return rngs, ok
}

// indexAll appends the ranges of the non-overlapping occurrences of lit in
// text, found by index, at most MaxRanges.
func indexAll(text, lit []byte, rngs [][2]int, index func(s, sep []byte) int) ([][2]int, bool) {
	found := false
	for off, n := 0, 0; n < MaxRanges; n++ {
		i := index(text[off:], lit)
		if i < 0 {
			break
		}
		found = true
		rngs = append(rngs, [2]int{off + i, off + i + len(lit)})
		off += i + len(lit)
	}
	return rngs, found
}

// indexFoldASCII is bytes.Index ignoring ASCII case; lit is lower case.
func indexFoldASCII(s, lit []byte) int {
	if len(lit) == 0 {
		return 0
	}
	c := lit[0]
	other := c // the other case of c
	if 'a' <= c && c <= 'z' {
		other = c - ('a' - 'A')
	}
	last := len(s) - len(lit)
	for i := 0; i <= last; {
		rest := s[i : last+1]
		j := bytes.IndexByte(rest, c)
		if other != c {
			before := rest // the other case counts only before c
			if j >= 0 {
				before = rest[:j]
			}
			if k := bytes.IndexByte(before, other); k >= 0 {
				j = k
			}
		}
		if j < 0 {
			return -1
		}
		if equalFoldASCII(s[i+j+1:i+j+len(lit)], lit[1:]) {
			return i + j
		}
		i += j + 1
	}
	return -1
}

// equalFoldASCII reports whether a equals lit (lower case) ignoring ASCII
// case; both have the same length.
func equalFoldASCII(a, lit []byte) bool {
	for i, c := range a {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lit[i] {
			return false
		}
	}
	return true
}

// toUTF16 turns byte offsets into text (sorted, as matches are) into
// UTF-16 offsets, in place.
func toUTF16(text []byte, rngs [][2]int) {
	b, u := 0, 0 // a byte offset and its UTF-16 offset
	at := func(off int) int {
		for b < off {
			r, n := utf8.DecodeRune(text[b:])
			b += n
			u++
			if r >= 0x10000 {
				u++
			}
		}
		return u
	}
	for i := range rngs {
		rngs[i][0] = at(rngs[i][0])
		rngs[i][1] = at(rngs[i][1])
	}
}
