package search

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jobrun/jobrun/jobs"
)

// visualCase is a case of ui/jstest/testdata/visual-lines.json, which the
// page's LogModel passes too (ui/jstest/visuallines.test.js).
type visualCase struct {
	Name   string       `json:"name"`
	Events []jobs.Event `json:"events"`
	Lines  []struct {
		Seq    jobs.Seq    `json:"seq"`
		Line   int64       `json:"line"`
		Stream jobs.Stream `json:"stream"`
		Text   string      `json:"text"`
		Hidden bool        `json:"hidden"`
	} `json:"lines"`
}

func TestVisualLinesAreThePageRows(t *testing.T) {
	b, err := os.ReadFile("../../ui/jstest/testdata/visual-lines.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []visualCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			type line struct {
				Seq    jobs.Seq
				Line   int64
				Stream jobs.Stream
				Text   string
				Hidden bool
			}
			var got, want []line
			var sc lineScanner
			sc.done = func(l *visualLine) {
				got = append(got, line{l.seq, l.line, l.stream, string(l.text), l.directive || l.marker})
			}
			sc.reset()
			for i := range c.Events {
				sc.add(&c.Events[i], false)
			}
			sc.flush()
			slices.SortFunc(got, func(a, b line) int { return int(a.Seq - b.Seq) })
			for _, l := range c.Lines {
				want = append(want, line{l.Seq, l.Line, l.Stream, l.Text, l.Hidden})
			}
			if !slices.Equal(got, want) {
				t.Errorf("lines\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestMatcher(t *testing.T) {
	for _, c := range []struct {
		name, q      string
		regex, exact bool
		text         string
		want         [][2]int // nil: no match
	}{
		{"ignores case", "error", false, false, "An ERROR and an Error", [][2]int{{3, 8}, {16, 21}}},
		{"case", "Error", false, true, "An ERROR and an Error", [][2]int{{16, 21}}},
		{"no match", "warning", false, false, "An ERROR", nil},
		{"non-overlapping", "aa", false, false, "aaaAA", [][2]int{{0, 2}, {2, 4}}},
		{"a query starting with a non-letter", "[3/", false, false, "step [3/10]", [][2]int{{5, 8}}},
		{"folds non-ASCII", "wörld", false, false, "héllo WÖRLD", [][2]int{{6, 11}}},
		{"folds the query", "ÉTÉ", false, false, "un été", [][2]int{{3, 6}}},
		{"Kelvin sign folds to k", "k", false, false, "5 \u212a", [][2]int{{2, 3}}},
		{"long s folds to s", "\u017f", false, false, "Sun", [][2]int{{0, 1}}},
		{"a non-ASCII query does not match ASCII text", "é", false, false, "e", nil},
		{"UTF-16 offsets after an astral character", "abc", false, false, "😀 abc", [][2]int{{3, 6}}},
		{"UTF-16 offsets of a case-sensitive match", "b", false, true, "日本 b 😀b", [][2]int{{3, 4}, {7, 8}}},
		{"regex", `\d+`, true, false, "a 12 b 345", [][2]int{{2, 4}, {7, 10}}},
		{"regex ignores case", `ERR\w*`, true, false, "an error", [][2]int{{3, 8}}},
		{"regex with case", `ERR\w*`, true, true, "an error", nil},
		{"regex matching nothing matches without a range", `x*`, true, false, "abc", [][2]int{}},
		{"regex UTF-16 offsets", `ö+`, true, false, "😀ÖÖ", [][2]int{{2, 4}}},
		{"regex prefilter folds as RE2", `ſ\w+K`, true, false, "S1\u212a", [][2]int{{0, 3}}},
		{"regex prefilter, no match", `needle\d`, true, false, "NEEDLE", nil},
		{"folding is RE2's: no dotted I for i", "i", false, false, "İ", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := newMatcher(c.q, c.regex, c.exact)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := m.match([]byte(c.text), false, nil)
			if ok != (c.want != nil) || (ok && !slices.Equal(append([][2]int{}, got...), c.want)) {
				t.Errorf("match(%q, %q) = %v, %v; want %v", c.q, c.text, got, ok, c.want)
			}
		})
	}
	for _, c := range []struct {
		expr, lit string
		fold      bool
	}{
		{`error: .* failed`, "error: ", false},
		{`(?i)ne+dle\b`, "dle", true},
		{`^line (12|34)5 of`, "line ", false},
		{`a|b`, "", false},
		{`(abc)+x*`, "abc", false},
		{`x*`, "", false},
	} {
		lit, fold := requiredLiteral(c.expr)
		if !strings.EqualFold(string(lit), c.lit) || (c.lit != "" && fold != c.fold) {
			t.Errorf("requiredLiteral(%q) = %q %v, want %q %v", c.expr, string(lit), fold, c.lit, c.fold)
		}
	}
	for _, q := range []string{"", "(", "a{2,1}", string([]byte{0xff})} {
		if _, err := newMatcher(q, true, false); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("newMatcher(%q): %v, want ErrInvalid", q, err)
		}
	}
}
