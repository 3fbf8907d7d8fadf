package jobs

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// ProgressMode selects which sources of progress a job's output is scanned
// for (jobrun exec --progress).
type ProgressMode string

// The progress modes. The zero value "" means ProgressAuto.
const (
	// ProgressAuto: every source, including the heuristics that read
	// ordinary tool output ("45%", "[3/10]", curl's meter, pip's bar...).
	// A heuristic can be fooled ("coverage 45%" moves the job's percent);
	// jobs whose output is not a progress display should use explicit.
	ProgressAuto ProgressMode = "auto"
	// ProgressExplicit: only the machine-readable sources: the user's
	// regex, ::progress directives, OSC 9;4, ##vso[task.setprogress] and
	// JSON lines.
	ProgressExplicit ProgressMode = "explicit"
	// ProgressOff: no progress at all; ::progress lines are plain lines.
	ProgressOff ProgressMode = "off"
)

// ParseProgressMode parses a --progress value; "" is ProgressAuto.
func ParseProgressMode(s string) (ProgressMode, error) {
	switch m := ProgressMode(s); m {
	case "":
		return ProgressAuto, nil
	case ProgressAuto, ProgressExplicit, ProgressOff:
		return m, nil
	}
	return "", fmt.Errorf("progress mode %q: want auto, explicit or off: %w", s, ErrInvalid)
}

// The values of Progress.Source: where a progress value was found.
const (
	ProgressSourceRegex    = "regex"    // the user's --progress-regex
	ProgressSourceExplicit = "explicit" // a ::progress directive line
	ProgressSourceOSC      = "osc"      // the terminal sequence OSC 9;4
	ProgressSourceVSO      = "vso"      // Azure Pipelines ##vso[task.setprogress]
	ProgressSourceJSON     = "json"     // a JSON line with "progress" or "percent"
	ProgressSourceAuto     = "auto"     // a heuristic on ordinary output
)

// The values of Progress.State. Parse always sets one; only OSC 9;4 says
// anything but normal.
const (
	ProgressStateNormal        = "normal"
	ProgressStateIndeterminate = "indeterminate"
	ProgressStateError         = "error"
	ProgressStatePaused        = "paused"
)

// maxProgressMessage bounds Progress.Message, in runes; a longer message is
// cut and ends with "…". Auto-detected messages are whole lines, and a
// progress event is a summary, not a second copy of the log.
const maxProgressMessage = 200

// maxAutoLine is the longest line, after escape sequences are removed, that
// the heuristics look at. Progress displays fit on a terminal line; longer
// lines are data, and scanning them would only find false positives.
const maxAutoLine = 1024

// Directive reports whether p came from a ::progress directive, whose line
// event the runner marks "directive": true so that pages can hide it.
func (p Progress) Directive() bool { return p.Source == ProgressSourceExplicit }

// ProgressParser finds progress in lines of a job's output. The zero value
// is an auto-mode parser without a regex.
//
// A parser remembers two things between lines: the last percent it
// reported (an OSC 9;4 indeterminate, error or paused state without a value
// carries it, so a job's bar does not drop to 0) and whether the previous
// line was a bare number (the pv -n rule, see parseAuto). Give each output
// stream its own parser. Parse is safe for concurrent use.
type ProgressParser struct {
	// Mode selects the sources; "" means ProgressAuto, and a value that
	// ParseProgressMode would reject reads only the explicit sources.
	Mode ProgressMode
	// Regex, when set, is tried first on the line with escape sequences
	// removed. It has a named group "percent", or "current" and "total", and
	// optionally "message"; NewProgressParser checks this.
	Regex *regexp.Regexp

	mu       sync.Mutex
	last     float64 // the last percent reported
	bare     bool    // the previous non-empty line was a bare number
	bareLast float64 // its value
}

// NewProgressParser returns a parser for mode with the optional user regex
// (empty for none). The regex must compile and have a named group percent,
// or current and total.
func NewProgressParser(mode ProgressMode, regex string) (*ProgressParser, error) {
	mode, err := ParseProgressMode(string(mode))
	if err != nil {
		return nil, err
	}
	p := &ProgressParser{Mode: mode}
	if regex == "" {
		return p, nil
	}
	if mode == ProgressOff {
		return nil, fmt.Errorf("progress regex given with progress mode off: %w", ErrInvalid)
	}
	re, err := regexp.Compile(regex)
	if err != nil {
		return nil, fmt.Errorf("progress regex: %w: %w", err, ErrInvalid)
	}
	has := func(name string) bool { return re.SubexpIndex(name) >= 0 }
	if !has("percent") && !(has("current") && has("total")) {
		return nil, fmt.Errorf("progress regex %q: needs a named group (?P<percent>...), or (?P<current>...) and (?P<total>...): %w", regex, ErrInvalid)
	}
	p.Regex = re
	return p, nil
}

// Parse looks for progress in one line or \r-segment of output, given
// without its terminator. The sources are tried in order: the user regex,
// a ::progress directive, OSC 9;4 (read from the raw bytes), Azure's
// ##vso[task.setprogress], a JSON line, and in auto mode the heuristics;
// the first that yields a valid value wins. The result's Percent is within
// 0..100 (rounded to two decimals), Source and State are set, Current and
// Total are set when the source gives a count (sizes are in bytes).
func (p *ProgressParser) Parse(line []byte) (Progress, bool) {
	mode := p.Mode
	if mode == "" {
		mode = ProgressAuto
	}
	if mode == ProgressOff {
		return Progress{}, false
	}
	if p.Regex == nil {
		switch quickScan(line, mode == ProgressAuto) {
		case quickBlank:
			return Progress{}, false
		case quickNone:
			p.mu.Lock()
			p.bare, p.bareLast = false, 0
			p.mu.Unlock()
			return Progress{}, false
		}
	}
	return p.parseFull(line, mode)
}

// parseFull is Parse without the quick scan.
func (p *ProgressParser) parseFull(line []byte, mode ProgressMode) (Progress, bool) {
	text := stripEscapes(line)
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.parse(line, text, mode)
	if strings.TrimSpace(text) != "" {
		p.bareLast, p.bare = bareNumber(text)
	}
	if ok {
		pr.Percent = roundPercent(pr.Percent)
		if pr.State == "" {
			pr.State = ProgressStateNormal
		}
		pr.Message = boundMessage(pr.Message)
		p.last = pr.Percent
	}
	return pr, ok
}

func (p *ProgressParser) parse(raw []byte, text string, mode ProgressMode) (Progress, bool) {
	if p.Regex != nil {
		if pr, ok := parseRegex(p.Regex, text); ok {
			return pr, true
		}
	}
	if pr, ok := parseDirective(text); ok {
		return pr, true
	}
	if pr, ok := parseOSC(raw, text, p.last); ok {
		return pr, true
	}
	if pr, ok := parseVSO(text); ok {
		return pr, true
	}
	if pr, ok := parseJSON(text); ok {
		return pr, true
	}
	if mode != ProgressAuto || len(text) > maxAutoLine {
		return Progress{}, false
	}
	return p.parseAuto(text)
}

// parseRegex applies the user's regex. A match whose groups do not give a
// valid value is not progress, and the other sources are tried.
func parseRegex(re *regexp.Regexp, text string) (Progress, bool) {
	m := re.FindStringSubmatchIndex(text)
	if m == nil {
		return Progress{}, false
	}
	group := func(name string) string {
		i := re.SubexpIndex(name)
		if i < 0 || m[2*i] < 0 {
			return ""
		}
		return text[m[2*i]:m[2*i+1]]
	}
	pr := Progress{Source: ProgressSourceRegex, Message: cleanMessage(group("message"))}
	cur, okCur := parseNumber(group("current"))
	total, okTotal := parseNumber(group("total"))
	counted := okCur && okTotal && validCount(cur, total)
	if counted {
		pr.Current, pr.Total = &cur, &total
	}
	if s := group("percent"); s != "" {
		v, ok := parseNumber(s)
		if !ok || !validPercent(v) {
			return Progress{}, false
		}
		pr.Percent = v
		return pr, true
	}
	if !counted {
		return Progress{}, false
	}
	pr.Percent = cur / total * 100
	return pr, true
}

var directivePrefix = "::progress"

// parseDirective parses "::progress 45", "::progress 45.5 message" or
// "::progress 3/10 message" (leading blanks allowed, "45%" accepted). A
// line that starts like a directive but does not parse is not a directive:
// it stays a visible line so that the mistake shows.
func parseDirective(text string) (Progress, bool) {
	s := strings.TrimLeft(text, " \t")
	if !strings.HasPrefix(s, directivePrefix) {
		return Progress{}, false
	}
	s = s[len(directivePrefix):]
	if s == "" || (s[0] != ' ' && s[0] != '\t') {
		return Progress{}, false
	}
	s = strings.TrimLeft(s, " \t")
	arg, msg := s, ""
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		arg, msg = s[:i], s[i+1:]
	}
	pr := Progress{Source: ProgressSourceExplicit, Message: cleanMessage(msg)}
	if c, t, ok := strings.Cut(arg, "/"); ok {
		cur, ok1 := parseDecimal(c)
		total, ok2 := parseDecimal(t)
		if !ok1 || !ok2 || !validCount(cur, total) {
			return Progress{}, false
		}
		pr.Current, pr.Total = &cur, &total
		pr.Percent = cur / total * 100
		return pr, true
	}
	v, ok := parseDecimal(strings.TrimSuffix(arg, "%"))
	if !ok || !validPercent(v) {
		return Progress{}, false
	}
	pr.Percent = v
	return pr, true
}

// FormatProgressDirective returns the ::progress line (without a newline)
// that reports p: "::progress 3/10 msg" when p has a count, else
// "::progress 45.5 msg". It is what `jobrun progress` prints.
func FormatProgressDirective(p Progress) string {
	var b strings.Builder
	b.WriteString(directivePrefix)
	b.WriteByte(' ')
	if p.Current != nil && p.Total != nil {
		b.WriteString(strconv.FormatFloat(*p.Current, 'f', -1, 64))
		b.WriteByte('/')
		b.WriteString(strconv.FormatFloat(*p.Total, 'f', -1, 64))
	} else {
		b.WriteString(strconv.FormatFloat(p.Percent, 'f', -1, 64))
	}
	if msg := cleanMessage(p.Message); msg != "" {
		b.WriteByte(' ')
		b.WriteString(msg)
	}
	return b.String()
}

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
