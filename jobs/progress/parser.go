package progress

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// Mode selects which sources of progress a job's output is scanned
// for (jobrun exec --progress).
type Mode string

// The progress modes. The zero value "" means Auto.
const (
	// Auto: every source, including the heuristics that read
	// ordinary tool output ("45%", "[3/10]", curl's meter, pip's bar...).
	// A heuristic can be fooled ("coverage 45%" moves the job's percent);
	// jobs whose output is not a progress display should use explicit.
	Auto Mode = "auto"
	// Explicit: only the machine-readable sources: the user's
	// regex, ::progress directives, OSC 9;4, ##vso[task.setprogress] and
	// JSON lines.
	Explicit Mode = "explicit"
	// Off: no progress at all; ::progress lines are plain lines.
	Off Mode = "off"
)

// ParseMode parses a --progress value; "" is Auto.
//
// An error of ParseMode or NewParser always means a setting the user gave
// cannot be used. This package has no error vocabulary: a caller that sorts
// errors wraps its own sentinel (jobs.Runner.Start wraps jobs.ErrInvalid).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return Auto, nil
	case Auto, Explicit, Off:
		return m, nil
	}
	return "", fmt.Errorf("progress mode %q: want auto, explicit or off", s)
}

// maxAutoLine is the longest line, after escape sequences are removed, that
// the heuristics look at. Progress displays fit on a terminal line; longer
// lines are data, and scanning them would only find false positives.
const maxAutoLine = 1024

// Parser finds progress in lines of a job's output. The zero value
// is an auto-mode parser without a regex.
//
// A parser remembers two things between lines: the last percent it
// reported (an OSC 9;4 indeterminate, error or paused state without a value
// carries it, so a job's bar does not drop to 0) and whether the previous
// line was a bare number (the pv -n rule, see parseAuto). Give each output
// stream its own parser. Parse is safe for concurrent use.
type Parser struct {
	// Mode selects the sources; "" means Auto, and a value that
	// ParseMode would reject reads only the explicit sources.
	Mode Mode
	// Regex, when set, is tried first on the line with escape sequences
	// removed. It has a named group "percent", or "current" and "total", and
	// optionally "message"; NewParser checks this.
	Regex *regexp.Regexp
	// Reported links the parsers of one job's streams: once any of them
	// has found progress in a machine-readable source (the regex, a
	// ::progress directive, OSC 9;4, ##vso, a JSON line), the job reports
	// its own progress, and none of them guesses from ordinary output any
	// more (Auto's heuristics): a per-file bar no longer moves the job's
	// percent. nil: the parser keeps the latch to itself.
	Reported *atomic.Bool

	own      atomic.Bool // the latch when Reported is nil
	mu       sync.Mutex
	last     float64 // the last percent reported
	bare     bool    // the previous non-empty line was a bare number
	bareLast float64 // its value
}

// NewParser returns a parser for mode with the optional user regex
// (empty for none). The regex must compile and have a named group percent,
// or current and total; it is an error with mode Off.
func NewParser(mode Mode, regex string) (*Parser, error) {
	mode, err := ParseMode(string(mode))
	if err != nil {
		return nil, err
	}
	p := &Parser{Mode: mode}
	if regex == "" {
		return p, nil
	}
	if mode == Off {
		return nil, errors.New("progress regex given with progress mode off")
	}
	re, err := regexp.Compile(regex)
	if err != nil {
		return nil, fmt.Errorf("progress regex: %w", err)
	}
	has := func(name string) bool { return re.SubexpIndex(name) >= 0 }
	if !has("percent") && !(has("current") && has("total")) {
		return nil, fmt.Errorf("progress regex %q: needs a named group (?P<percent>...), or (?P<current>...) and (?P<total>...)", regex)
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
func (p *Parser) Parse(line []byte) (Report, bool) {
	mode := p.Mode
	if mode == "" {
		mode = Auto
	}
	if mode == Off {
		return Report{}, false
	}
	if p.Regex == nil {
		switch quickScan(line, mode == Auto) {
		case quickBlank:
			return Report{}, false
		case quickNone:
			p.mu.Lock()
			p.bare, p.bareLast = false, 0
			p.mu.Unlock()
			return Report{}, false
		}
	}
	return p.parseFull(line, mode)
}

// parseFull is Parse without the quick scan.
func (p *Parser) parseFull(line []byte, mode Mode) (Report, bool) {
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
			pr.State = StateNormal
		}
		pr.Message = boundMessage(pr.Message)
		p.last = pr.Percent
	}
	return pr, ok
}

func (p *Parser) parse(raw []byte, text string, mode Mode) (Report, bool) {
	if pr, ok := p.parseExplicit(raw, text); ok {
		p.reported().Store(true)
		return pr, true
	}
	if mode != Auto || len(text) > maxAutoLine || p.reported().Load() {
		return Report{}, false
	}
	return p.parseAuto(text)
}

// parseExplicit tries the machine-readable sources, in order.
func (p *Parser) parseExplicit(raw []byte, text string) (Report, bool) {
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
	return parseJSON(text)
}

// reported is the latch that turns the heuristics off.
func (p *Parser) reported() *atomic.Bool {
	if p.Reported != nil {
		return p.Reported
	}
	return &p.own
}

// parseRegex applies the user's regex. A match whose groups do not give a
// valid value is not progress, and the other sources are tried.
func parseRegex(re *regexp.Regexp, text string) (Report, bool) {
	m := re.FindStringSubmatchIndex(text)
	if m == nil {
		return Report{}, false
	}
	group := func(name string) string {
		i := re.SubexpIndex(name)
		if i < 0 || m[2*i] < 0 {
			return ""
		}
		return text[m[2*i]:m[2*i+1]]
	}
	pr := Report{Source: SourceRegex, Message: cleanMessage(group("message"))}
	cur, okCur := parseNumber(group("current"))
	total, okTotal := parseNumber(group("total"))
	counted := okCur && okTotal && validCount(cur, total)
	if counted {
		pr.Current, pr.Total = &cur, &total
	}
	if s := group("percent"); s != "" {
		v, ok := parseNumber(s)
		if !ok || !validPercent(v) {
			return Report{}, false
		}
		pr.Percent = v
		return pr, true
	}
	if !counted {
		return Report{}, false
	}
	pr.Percent = cur / total * 100
	return pr, true
}
