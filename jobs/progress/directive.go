package progress

import (
	"strconv"
	"strings"
)

var directivePrefix = "::progress"

// parseDirective parses "::progress 45", "::progress 45.5 message" or
// "::progress 3/10 message" (leading blanks allowed, "45%" accepted). A
// line that starts like a directive but does not parse is not a directive:
// it stays a visible line so that the mistake shows.
func parseDirective(text string) (Report, bool) {
	s := strings.TrimLeft(text, " \t")
	if !strings.HasPrefix(s, directivePrefix) {
		return Report{}, false
	}
	s = s[len(directivePrefix):]
	if s == "" || (s[0] != ' ' && s[0] != '\t') {
		return Report{}, false
	}
	s = strings.TrimLeft(s, " \t")
	arg, msg := s, ""
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		arg, msg = s[:i], s[i+1:]
	}
	pr := Report{Source: SourceExplicit, Message: cleanMessage(msg)}
	if c, t, ok := strings.Cut(arg, "/"); ok {
		cur, ok1 := parseDecimal(c)
		total, ok2 := parseDecimal(t)
		if !ok1 || !ok2 || !validCount(cur, total) {
			return Report{}, false
		}
		pr.Current, pr.Total = &cur, &total
		pr.Percent = cur / total * 100
		return pr, true
	}
	v, ok := parseDecimal(strings.TrimSuffix(arg, "%"))
	if !ok || !validPercent(v) {
		return Report{}, false
	}
	pr.Percent = v
	return pr, true
}

// FormatDirective returns the ::progress line (without a newline)
// that reports p: "::progress 3/10 msg" when p has a count, else
// "::progress 45.5 msg". It is what `jobrun progress` prints.
func FormatDirective(p Report) string {
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
