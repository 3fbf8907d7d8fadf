package progress

import (
	"regexp"
	"strings"
	"unicode"
)

// The auto-mode heuristics read the progress displays of common tools from
// a line's text (escape sequences removed). The rules, in order; the first
// that gives a valid value wins:
//
//  1. apt's download status "45% [2 libfoo 1,234 kB/5,678 kB 21%]": the
//     leading overall percent, not the per-file one at the end.
//  2. The last percentage in the line, "45%" or "45.5 %" (wget, curl -#,
//     rsync, pv, apt's "Progress: [ 45%]", "[####   ] 45%"). The number
//     stands alone: not "x45%", "1.45%"'s tail, "-5%", nor "%s"/"%20"
//     after it. If the last percentage is above 100 the line has no
//     percentage.
//  3. curl's progress meter, "28 1953k 28 546k 0 0 694k 0 0:00:02 ...":
//     the first column.
//  4. Sizes "12.3MB/45.6MB" (docker pull) or "4.5/10.0 MB" (pip): current
//     and total in bytes (kB, MB... are powers of 1000, KiB, MiB... of
//     1024).
//  5. A count after a bar, "Building [=====>  ] 45/120" (cargo).
//  6. A bracketed count, "[3/10]" or "(3/10)" (yarn, docker build).
//  7. A labelled count, "Step 3/10", "epoch 3/10", and "3 of 10".
//  8. pv -n: a line that is only a number 0..100 counts when the previous
//     non-empty line of this parser was also a bare number not greater
//     than it. One bare number is far more often data (a count, an exit
//     code) than progress; a non-decreasing run of them is pv -n's output.
//     The first number of a run is therefore not reported.
//  9. A bar without numbers, "[######......]", npm's "⸨████░░░░⸩" or old
//     pip's "|█████▌    |": the
//     filled fraction, when the bar is at least 10 wide and partly filled
//     (so that "[==========]" separators, as googletest prints, are not
//     100%).
//
// Counts need 0 <= current <= total and total > 0, and must stand alone:
// "Step 2026/11/25", "[1/2.5]" and fractions inside paths or URLs
// ("src/1/2.go", "http://x/3/4") are not counts, and a bare "3/10" without
// a bracket, label, bar or unit is not one either (too many dates,
// versions and paths look like it).
//
// The message is the line's text without bars and spinners, whitespace
// collapsed, when it has a word that is not a unit ("eta", "MB/s"), and is
// bounded to maxProgressMessage runes.
func (p *Parser) parseAuto(text string) (Report, bool) {
	pr, withMessage, ok := autoValue(text, p.bare, p.bareLast)
	if !ok {
		return Report{}, false
	}
	pr.Source = SourceAuto
	if withMessage {
		pr.Message = autoMessage(text)
	}
	return pr, true
}

var (
	aptRe      = regexp.MustCompile(`^\s*(\d{1,3})% \[`)
	percentRe  = regexp.MustCompile(`(\d{1,3}(?:\.\d+)?) ?%`)
	curlNum    = `\d+(?:\.\d+)?[kMGTPE]?`
	curlTime   = `(?:--:--:--|\d+:\d\d:\d\d)`
	curlRe     = regexp.MustCompile(`^\s*(\d{1,3})\s+` + curlNum + `\s+\d{1,3}\s+` + curlNum + `\s+\d{1,3}\s+` + curlNum + `\s+` + curlNum + `\s+` + curlNum + `\s+` + curlTime + `\s+` + curlTime + `\s+` + curlTime + `\s+` + curlNum + `\s*$`)
	sizeRe     = regexp.MustCompile(`(\d[\d,]*(?:\.\d+)?)\s*((?:[kKMGTP]i?)?B|bytes)?\s*/\s*(\d[\d,]*(?:\.\d+)?)\s*((?:[kKMGTP]i?)?B|bytes)\b`)
	barCountRe = regexp.MustCompile(`\[[ =#>.~*░▒▓█▉▊▋▌▍▎▏━╸╺-]{3,}\]\s*(\d{1,9})\s*/\s*(\d{1,9})`)
	bracketRe  = regexp.MustCompile(`[\[(]\s*(\d{1,9})\s*/\s*(\d{1,9})\s*[\])]`)
	labelRe    = regexp.MustCompile(`(?i)\b(?:step|stage|phase|task|job|item|file|part|chunk|batch|epoch|page|layer|test|package|module|target|iteration|round|pass)s?\s*#?\s*(\d{1,9})\s*/\s*(\d{1,9})`)
	ofRe       = regexp.MustCompile(`\b(\d{1,9}) (?:of|OF|Of) (\d{1,9})`)
	fillRe     = regexp.MustCompile(`[\[⸨|]([#=>█▉▊▋▌▍▎▏■]+)([ .░·□-]+)[\]⸩|]`)
)

// autoValue applies the rules of parseAuto in order. withMessage is false
// for the displays that are all numbers (curl's meter, pv -n). Every line
// of output passes through here, so each rule first checks for the bytes
// it needs: a plain log line costs a few byte scans, not a dozen regexps.
func autoValue(s string, prevBare bool, prevBareVal float64) (pr Report, withMessage, ok bool) {
	if strings.IndexAny(s, "0123456789") < 0 {
		pr, ok = fillFraction(s) // the only rule without digits
		return pr, true, ok
	}
	if strings.IndexByte(s, '%') >= 0 {
		if m := aptRe.FindStringSubmatch(s); m != nil {
			if v, ok := parseDecimal(m[1]); ok && validPercent(v) {
				return Report{Percent: v}, true, true
			}
		}
		if v, ok := lastPercent(s); ok {
			return Report{Percent: v}, true, true
		}
	}
	if t := strings.TrimLeft(s, " "); t != "" && isDigit(t[0]) && strings.Count(t, ":") >= 6 {
		if m := curlRe.FindStringSubmatch(s); m != nil {
			if v, ok := parseDecimal(m[1]); ok && validPercent(v) {
				return Report{Percent: v}, false, true
			}
		}
	}
	if strings.IndexByte(s, '/') >= 0 {
		if strings.IndexByte(s, 'B') >= 0 || strings.Contains(s, "bytes") {
			if pr, ok := lastSize(s); ok {
				return pr, true, true
			}
		}
		if hasCount(s) {
			for _, re := range []*regexp.Regexp{barCountRe, bracketRe} {
				if pr, ok := lastCount(s, re, false); ok {
					return pr, true, true
				}
			}
			if pr, ok := lastCount(s, labelRe, true); ok {
				return pr, true, true
			}
		}
	}
	if strings.Contains(s, " of ") || strings.Contains(s, " OF ") || strings.Contains(s, " Of ") {
		if pr, ok := lastCount(s, ofRe, true); ok {
			return pr, true, true
		}
	}
	if v, bare := bareNumber(s); bare {
		if validPercent(v) && prevBare && v >= prevBareVal {
			return Report{Percent: v}, false, true
		}
		return Report{}, false, false
	}
	pr, ok = fillFraction(s)
	return pr, true, ok
}

// hasCount reports whether s has a digit, a '/' and a digit, blanks
// allowed around the '/': the shape every count rule needs.
func hasCount(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '/' {
			continue
		}
		l := strings.TrimRight(s[:i], " ")
		r := strings.TrimLeft(s[i+1:], " ")
		if l != "" && r != "" && isDigit(l[len(l)-1]) && isDigit(r[0]) {
			return true
		}
	}
	return false
}

// bareNumber reports whether s is only a number (1 to 3 digits, an
// optional fraction, blanks around), for the pv -n rule.
func bareNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '.'); i > 3 || (i < 0 && len(s) > 3) {
		return 0, false
	}
	return parseDecimal(s)
}

// lastPercent finds the last standalone percentage of s.
func lastPercent(s string) (float64, bool) {
	ms := percentRe.FindAllStringSubmatchIndex(s, -1)
	for k := len(ms) - 1; k >= 0; k-- {
		m := ms[k]
		if !standsAlone(s, m[2], m[1]) || (m[2] > 0 && strings.IndexByte("-+,", s[m[2]-1]) >= 0) {
			continue
		}
		v, ok := parseDecimal(s[m[2]:m[3]])
		return v, ok && validPercent(v)
	}
	return 0, false
}

// standsAlone reports whether s[i:j] is not glued to a word, a number, a
// path or a version: the byte before i is not a letter, digit, '_', '/' or
// '.', and the byte at j is not a letter, digit, '_' or '/', nor a '.' or
// ',' followed by a digit.
func standsAlone(s string, i, j int) bool {
	if i > 0 {
		if c := s[i-1]; isWordByte(c) || c == '/' || c == '.' {
			return false
		}
	}
	if j < len(s) {
		c := s[j]
		if isWordByte(c) || c == '/' {
			return false
		}
		if (c == '.' || c == ',') && j+1 < len(s) && isDigit(s[j+1]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return isDigit(c) || c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80
}

// sizeUnits maps the units of rule 4 to bytes.
var sizeUnits = map[string]float64{
	"B": 1, "bytes": 1,
	"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
	"KiB": 1 << 10, "kiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50,
}

// lastSize finds the last "current[unit]/total unit" of s.
func lastSize(s string) (Report, bool) {
	ms := sizeRe.FindAllStringSubmatchIndex(s, -1)
	for k := len(ms) - 1; k >= 0; k-- {
		m := ms[k]
		if !standsAlone(s, m[0], m[1]) {
			continue
		}
		cur, ok1 := parseNumber(s[m[2]:m[3]])
		total, ok2 := parseNumber(s[m[6]:m[7]])
		totalUnit := sizeUnits[s[m[8]:m[9]]]
		curUnit := totalUnit
		if m[4] >= 0 {
			curUnit = sizeUnits[s[m[4]:m[5]]]
		}
		if !ok1 || !ok2 || curUnit == 0 || totalUnit == 0 {
			continue
		}
		cur, total = cur*curUnit, total*totalUnit
		if !validCount(cur, total) {
			continue
		}
		return Report{Percent: cur / total * 100, Current: &cur, Total: &total}, true
	}
	return Report{}, false
}

// lastCount finds the last valid count of re (groups current, total) in s.
// When alone is set the match must also stand alone (rule 7); bracketed
// counts are delimited by their brackets.
func lastCount(s string, re *regexp.Regexp, alone bool) (Report, bool) {
	ms := re.FindAllStringSubmatchIndex(s, -1)
	for k := len(ms) - 1; k >= 0; k-- {
		m := ms[k]
		if alone && !standsAlone(s, m[2], m[5]) {
			continue
		}
		cur, ok1 := parseDecimal(s[m[2]:m[3]])
		total, ok2 := parseDecimal(s[m[4]:m[5]])
		if !ok1 || !ok2 || !validCount(cur, total) {
			continue
		}
		return Report{Percent: cur / total * 100, Current: &cur, Total: &total}, true
	}
	return Report{}, false
}

// fillFraction reads a partly filled bar without numbers (rule 9).
func fillFraction(s string) (Report, bool) {
	if strings.IndexAny(s, "[|") < 0 && !strings.Contains(s, "⸨") { // IndexAny with a non-ASCII set is slow
		return Report{}, false
	}
	m := fillRe.FindStringSubmatch(s)
	if m == nil {
		return Report{}, false
	}
	fill, empty := len([]rune(m[1])), len([]rune(m[2]))
	if fill+empty < 10 {
		return Report{}, false
	}
	return Report{Percent: float64(fill) / float64(fill+empty) * 100}, true
}

var bracketBarRe = regexp.MustCompile(`[\[⸨][ =#>.~*░▒▓█▉▊▋▌▍▎▏■□·━╸╺-]*[\]⸩]|<[ =#>.-]{3,}>`)

// autoMessage is the line's text as a progress message: bars ("[==>  ]",
// gradle's "<==-->"), block and box glyphs, braille spinners and runs of
// five or more bar characters removed, whitespace collapsed; "" unless a
// word remains that is not a unit.
func autoMessage(text string) string {
	s := bracketBarRe.ReplaceAllString(text, " ")
	s = strings.Map(func(r rune) rune {
		if (r >= 0x2500 && r <= 0x259f) || (r >= 0x2800 && r <= 0x28ff) || r == '⸨' || r == '⸩' {
			return ' '
		}
		return r
	}, s)
	s = cleanMessage(removeRuns(s))
	if !hasWord(s) {
		return ""
	}
	return s
}

// removeRuns replaces runs of five or more of the same bar character
// ("#####", "=====", wget's "..........") with a space.
func removeRuns(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i + 1
		if strings.IndexByte("#=.-*~_", s[i]) >= 0 {
			for j < len(s) && s[j] == s[i] {
				j++
			}
			if j-i >= 5 {
				b.WriteByte(' ')
				i = j
				continue
			}
		}
		b.WriteString(s[i:j])
		i = j
	}
	return b.String()
}

// notWords are the tokens of progress displays that say nothing: units,
// "eta", rsync's counters.
var notWords = map[string]bool{
	"b": true, "kb": true, "mb": true, "gb": true, "tb": true, "pb": true,
	"kib": true, "mib": true, "gib": true, "tib": true, "bytes": true,
	"k": true, "m": true, "g": true, "s": true, "it": true, "eta": true,
	"xfr": true, "chk": true, "ir": true, "to": true, "of": true,
}

// hasWord reports whether s has a run of two or more letters that is not
// in notWords.
func hasWord(s string) bool {
	words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
	for _, w := range words {
		if len([]rune(w)) >= 2 && !notWords[strings.ToLower(w)] {
			return true
		}
	}
	return false
}
