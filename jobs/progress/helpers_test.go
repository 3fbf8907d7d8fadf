package progress

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// progressString is a compact form of a Parse result for tables and golden
// files: "none", or `percent [current/total] source [state] ["message"]`
// with the state left out when normal.
func progressString(p Report, ok bool) string {
	if !ok {
		return "none"
	}
	var b strings.Builder
	b.WriteString(strconv.FormatFloat(p.Percent, 'f', -1, 64))
	if p.Current != nil || p.Total != nil {
		fmt.Fprintf(&b, " %s/%s", progressFmtPtr(p.Current), progressFmtPtr(p.Total))
	}
	b.WriteString(" " + p.Source)
	if p.State != StateNormal {
		b.WriteString(" " + p.State)
	}
	if p.Message != "" {
		b.WriteString(" " + strconv.Quote(p.Message))
	}
	return b.String()
}

func progressFmtPtr(f *float64) string {
	if f == nil {
		return "nil"
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

// progressSegments splits output as the runner does: lines ended by "\n" or
// "\r\n", and "\r"-segments. A final piece without a terminator is kept.
func progressSegments(data []byte) [][]byte {
	var segs [][]byte
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			segs = append(segs, data)
			break
		}
		segs = append(segs, data[:i])
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return segs
}
