package progress

import (
	"bytes"
	"math"
	"regexp"
	"testing"
	"unicode/utf8"
)

// FuzzProgressParse checks that Parse never panics and that whatever it
// reports is well formed: percent within 0..100 and not NaN, a valid
// count, a bounded valid message, a known source and state.
func FuzzProgressParse(f *testing.F) {
	for _, s := range []string{
		"45%", "45.5 %", "[####    ] 45%", "::progress 3/10 step three", "::progress 45 msg",
		"\x1b]9;4;1;45\x07", "\x1b]9;4;3\x1b\\", "\x1b]9;4;2;", "##vso[task.setprogress value=75;]Upload",
		`{"progress":0.5,"msg":"x"}`, `{"percent":45,"current":1,"total":2}`,
		" 28 1953k   28  546k    0     0   694k      0  0:00:02 --:--:--  0:00:02  694k",
		"abc123: Downloading [=====>    ]  12.3MB/45.6MB", "━━━━ 4.5/10.0 MB 1.2 MB/s eta 0:00:05",
		"Building [=====>  ] 45/120", "Step 3/10", "3 of 10", "(3/10)", "[##########........]",
		"2026/11/25", "src/1/2.go", "http://x/3/4", "v2/3", "0/0", "100/50", "42", "\x1b[", "\x1b]",
		"99999999999999999999%", "1e400 of 1e400", "[999999999/999999999]",
		"3\tof 10", "\u00a045\n46\n47", "done\t[3/\t10]", "x ⸨██░░░░░░░░⸩", "{\"percent\":5}", "12\n\n13\nhello\n14",
	} {
		f.Add([]byte(s))
	}
	re := regexp.MustCompile(`(?P<percent>[\d.eE+-]+|NaN|Inf)|(?P<current>\S+)/(?P<total>\S+)(?P<message>.*)`)
	sources := map[string]bool{SourceRegex: true, SourceExplicit: true, SourceOSC: true,
		SourceVSO: true, SourceJSON: true, SourceAuto: true}
	states := map[string]bool{StateNormal: true, StateIndeterminate: true,
		StateError: true, StatePaused: true}
	f.Fuzz(func(t *testing.T, line []byte) {
		checkQuickScan(t, line)
		// Fresh parsers, so that the result depends on line alone.
		for _, p := range []*Parser{{}, {Mode: Explicit, Regex: re}} {
			for range 2 { // twice: the second sees the parser's state
				pr, ok := p.Parse(line)
				if !ok {
					if pr != (Report{}) {
						t.Fatalf("Parse(%q) = %+v with ok false", line, pr)
					}
					continue
				}
				if math.IsNaN(pr.Percent) || pr.Percent < 0 || pr.Percent > 100 {
					t.Fatalf("Parse(%q) percent %v", line, pr.Percent)
				}
				if (pr.Current == nil) != (pr.Total == nil) {
					t.Fatalf("Parse(%q) current %v total %v: one without the other", line, pr.Current, pr.Total)
				}
				if pr.Current != nil && !validCount(*pr.Current, *pr.Total) {
					t.Fatalf("Parse(%q) count %v/%v", line, *pr.Current, *pr.Total)
				}
				if !utf8.ValidString(pr.Message) || utf8.RuneCountInString(pr.Message) > maxProgressMessage {
					t.Fatalf("Parse(%q) message %q", line, pr.Message)
				}
				if !sources[pr.Source] || !states[pr.State] {
					t.Fatalf("Parse(%q) source %q state %q", line, pr.Source, pr.State)
				}
			}
		}
	})
}

// checkQuickScan checks that Parse's quick scan never changes a result:
// the lines of input, fed in order, give the same values and leave the
// same parser state with the quick scan as with the full parse alone.
func checkQuickScan(t *testing.T, input []byte) {
	t.Helper()
	for _, mode := range []Mode{Auto, Explicit} {
		quick, full := &Parser{Mode: mode}, &Parser{Mode: mode}
		for _, line := range bytes.Split(input, []byte("\n")) {
			p1, ok1 := quick.Parse(line)
			p2, ok2 := full.parseFull(line, mode)
			if s1, s2 := progressString(p1, ok1), progressString(p2, ok2); s1 != s2 {
				t.Fatalf("%s mode, line %q: Parse = %s, the full parse = %s", mode, line, s1, s2)
			}
			if quick.bare != full.bare || quick.bareLast != full.bareLast || quick.last != full.last {
				t.Fatalf("%s mode, line %q: state after Parse (bare %v %v, last %v) differs from the full parse's (%v %v, %v)",
					mode, line, quick.bare, quick.bareLast, quick.last, full.bare, full.bareLast, full.last)
			}
		}
	}
}
