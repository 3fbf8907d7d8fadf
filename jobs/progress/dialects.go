package progress

import (
	"bytes"
	"encoding/json"
	"strings"
)

// The progress dialects that other tools already print: OSC 9;4, Azure
// Pipelines' ##vso[task.setprogress] and JSON lines. They are machine
// readable, so they are active in explicit mode too.

var oscPrefix = []byte("\x1b]9;4;")

// parseOSC reads the terminal progress sequence ESC ] 9 ; 4 ; st [; pr]
// ended by BEL or ESC \ (ConEmu's, also used by Windows Terminal, Ghostty
// and cargo), from the raw bytes: escape stripping would remove it. The
// last sequence in the line wins. st is 0 clear, 1 normal, 2 error,
// 3 indeterminate, 4 paused; pr is 0..100 and clamped to 100 as terminals
// do.
//
// A clear (st 0) carries no value and is not reported: the job keeps its
// last progress until the next value or its exit, the same as a tool that
// simply stops printing a bar. Indeterminate, and error or paused with pr
// missing or 0 (as Windows Terminal reads them), carry last, the parser's
// previous percent, so that a dashboard's bar does not drop to 0. The
// message is the rest of the line's text, as for the heuristics.
func parseOSC(raw []byte, text string, last float64) (Report, bool) {
	found, state, pct, hasPct := false, 0, 0.0, false
	for rest := raw; ; {
		i := bytes.Index(rest, oscPrefix)
		if i < 0 {
			break
		}
		rest = rest[i+len(oscPrefix):]
		st, v, hv, n, ok := parseOSCBody(rest)
		if !ok {
			continue
		}
		found, state, pct, hasPct = true, st, v, hv
		rest = rest[n:]
	}
	if !found || state == 0 {
		return Report{}, false
	}
	pr := Report{Source: SourceOSC, Percent: min(pct, 100), Message: autoMessage(text)}
	switch state {
	case 1:
		pr.State = StateNormal
	case 2, 4:
		pr.State = StateError
		if state == 4 {
			pr.State = StatePaused
		}
		if !hasPct || pct == 0 {
			pr.Percent = last
		}
	case 3:
		pr.State, pr.Percent = StateIndeterminate, last
	}
	return pr, true
}

// parseOSCBody parses "st[;pr]" and the terminator at the start of b,
// returning the state, the value, whether a value was given, and the bytes
// used.
func parseOSCBody(b []byte) (state int, pct float64, hasPct bool, n int, ok bool) {
	if len(b) == 0 || b[0] < '0' || b[0] > '4' {
		return 0, 0, false, 0, false
	}
	state, j := int(b[0]-'0'), 1
	if j < len(b) && b[j] == ';' {
		j++
		start := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' && j-start < 9 {
			pct = pct*10 + float64(b[j]-'0')
			j++
		}
		hasPct = j > start
	}
	switch {
	case j < len(b) && b[j] == 0x07:
		return state, pct, hasPct, j + 1, true
	case j+1 < len(b) && b[j] == 0x1b && b[j+1] == '\\':
		return state, pct, hasPct, j + 2, true
	}
	return 0, 0, false, 0, false
}

const vsoCommand = "##vso[task.setprogress"

// parseVSO reads Azure Pipelines' logging command
// "##vso[task.setprogress value=75;]Upload Log" anywhere in the line (the
// command name is case-insensitive, as the agent reads it). value is
// 0..100; the text after "]" is the message.
func parseVSO(text string) (Report, bool) {
	if !strings.Contains(text, "##") {
		return Report{}, false
	}
	i := strings.Index(asciiLower(text), vsoCommand)
	if i < 0 {
		return Report{}, false
	}
	rest := text[i+len(vsoCommand):]
	if rest == "" || (rest[0] != ' ' && rest[0] != ']') {
		return Report{}, false
	}
	props, msg, ok := strings.Cut(rest, "]")
	if !ok {
		return Report{}, false
	}
	for _, kv := range strings.Split(props, ";") {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "value") {
			continue
		}
		val, ok := parseDecimal(strings.TrimSpace(v))
		if !ok || !validPercent(val) {
			return Report{}, false
		}
		return Report{Source: SourceVSO, Percent: val, Message: cleanMessage(msg)}, true
	}
	return Report{}, false
}

// asciiLower lowercases ASCII letters only, so byte offsets stay valid.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// jsonProgress is the shape of a JSON progress line. Fields are raw so that
// a non-numeric "progress" (a structured log's "progress":"downloading")
// is simply not progress.
type jsonProgress struct {
	Progress json.RawMessage `json:"progress"`
	Percent  json.RawMessage `json:"percent"`
	Message  json.RawMessage `json:"message"`
	Msg      json.RawMessage `json:"msg"`
	Current  json.RawMessage `json:"current"`
	Total    json.RawMessage `json:"total"`
}

// parseJSON reads a line that is one JSON object with a numeric "percent"
// (0..100) or "progress" (always a fraction 0..1; percent wins when both
// are present), and takes "message" (or slog's "msg") and a valid
// "current"/"total" along.
func parseJSON(text string) (Report, bool) {
	s := strings.TrimSpace(text)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' ||
		(!strings.Contains(s, `"progress"`) && !strings.Contains(s, `"percent"`)) {
		return Report{}, false
	}
	var v jsonProgress
	if json.Unmarshal([]byte(s), &v) != nil {
		return Report{}, false
	}
	pr := Report{Source: SourceJSON}
	if pct, ok := jsonNumber(v.Percent); ok && validPercent(pct) {
		pr.Percent = pct
	} else if f, ok := jsonNumber(v.Progress); ok && f >= 0 && f <= 1 {
		pr.Percent = f * 100
	} else {
		return Report{}, false
	}
	var msg string
	if json.Unmarshal(v.Message, &msg) != nil || msg == "" {
		_ = json.Unmarshal(v.Msg, &msg)
	}
	pr.Message = cleanMessage(msg)
	cur, ok1 := jsonNumber(v.Current)
	total, ok2 := jsonNumber(v.Total)
	if ok1 && ok2 && validCount(cur, total) {
		pr.Current, pr.Total = &cur, &total
	}
	return pr, true
}

func jsonNumber(raw json.RawMessage) (float64, bool) {
	var f float64
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &f) != nil {
		return 0, false
	}
	return f, true
}
