package progress

import (
	"sync/atomic"
	"testing"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
	}{
		{"", Auto},
		{"auto", Auto},
		{"explicit", Explicit},
		{"off", Off},
	} {
		got, err := ParseMode(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"Auto", "on", "none", " auto"} {
		if _, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q): no error", in)
		}
	}
}

func TestNewParserErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  Mode
		regex string
	}{
		{"bad mode", "sometimes", ""},
		{"bad syntax", Auto, `(?P<percent>\d+`},
		{"no named group", Auto, `(\d+)%`},
		{"current without total", Auto, `(?P<current>\d+) files`},
		{"message only", Explicit, `(?P<message>.*)`},
		{"regex with mode off", Off, `(?P<percent>\d+)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewParser(tc.mode, tc.regex)
			if err == nil {
				t.Fatalf("NewParser(%q, %q) = %v, nil; want an error", tc.mode, tc.regex, p)
			}
		})
	}
	p, err := NewParser("", "")
	if err != nil || p.Mode != Auto || p.Regex != nil {
		t.Fatalf(`NewParser("", "") = %+v, %v; want auto mode without regex`, p, err)
	}
}

// progressCase is one line and the expected Parse result (progressString).
type progressCase struct {
	name string
	line string
	want string
}

func runProgressCases(t *testing.T, p *Parser, cases []progressCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Parser{Mode: p.Mode, Regex: p.Regex} // fresh state per case
			if got := progressString(p.Parse([]byte(tc.line))); got != tc.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tc.line, got, tc.want)
			}
		})
	}
}

func TestProgressExplicit(t *testing.T) {
	cases := []progressCase{
		{"percent", "::progress 45", `45 explicit`},
		{"percent and message", "::progress 45.5 compiling foo.c", `45.5 explicit "compiling foo.c"`},
		{"count and message", "::progress 3/10 step three", `30 3/10 explicit "step three"`},
		{"count", "::progress 1/3", `33.33 1/3 explicit`},
		{"percent sign", "::progress 45% half way", `45 explicit "half way"`},
		{"zero", "::progress 0", `0 explicit`},
		{"hundred", "::progress 100 done", `100 explicit "done"`},
		{"leading blanks", "  \t::progress 45", `45 explicit`},
		{"tabs", "::progress\t45\tlinking", `45 explicit "linking"`},
		{"message spaces collapsed", "::progress 45   a   b  ", `45 explicit "a b"`},
		{"after an escape sequence", "\x1b[2K::progress 45", `45 explicit`},
		{"out of range", "::progress 101", `none`},
		{"negative", "::progress -5", `none`},
		{"not a number", "::progress abc", `none`},
		{"no value", "::progress", `none`},
		{"no value but blank", "::progress   ", `none`},
		{"exponent", "::progress 1e1", `none`},
		{"NaN", "::progress NaN", `none`},
		{"current above total", "::progress 11/10", `none`},
		{"zero total", "::progress 0/0", `none`},
		{"other word", "::progressive 45", `none`},
		{"not at the start", "echo ::progress 45", `none`},
	}
	runProgressCases(t, &Parser{Mode: Explicit}, cases)

	p := &Parser{}
	if pr, ok := p.Parse([]byte("::progress 45")); !ok || !pr.Directive() {
		t.Errorf("Parse(::progress 45).Directive() = false, want true")
	}
	if pr, ok := (&Parser{}).Parse([]byte("45%")); !ok || pr.Directive() {
		t.Errorf("Parse(45%%) = %s, Directive %v; want auto progress, not a directive", progressString(pr, ok), pr.Directive())
	}
}

func TestFormatDirective(t *testing.T) {
	three, ten := 3.0, 10.0
	for _, tc := range []struct {
		in   Report
		want string
	}{
		{Report{Percent: 45}, "::progress 45"},
		{Report{Percent: 45.5, Message: "compiling\nfoo.c"}, "::progress 45.5 compiling foo.c"},
		{Report{Percent: 30, Current: &three, Total: &ten, Message: "step three"}, "::progress 3/10 step three"},
	} {
		got := FormatDirective(tc.in)
		if got != tc.want {
			t.Errorf("FormatDirective(%+v) = %q, want %q", tc.in, got, tc.want)
		}
		back, ok := (&Parser{Mode: Explicit}).Parse([]byte(got))
		if !ok || back.Percent != tc.in.Percent {
			t.Errorf("Parse(%q) = %s, want percent %v", got, progressString(back, ok), tc.in.Percent)
		}
	}
}

func TestProgressDialects(t *testing.T) {
	cases := []progressCase{
		// OSC 9;4 (ConEmu's documentation; cargo's, captured, is in testdata/captures/cargo-osc.txt).
		{"osc BEL", "\x1b]9;4;1;45\x07", `45 osc`},
		{"osc ST", "\x1b]9;4;1;45\x1b\\", `45 osc`},
		{"osc with text", "\x1b[1m    Building\x1b[0m [==>   ] 1/6: c4  \x1b]9;4;1;17\x1b\\", `17 osc "Building 1/6: c4"`},
		{"osc error", "\x1b]9;4;2;60\x07", `60 osc error`},
		{"osc error without value", "\x1b]9;4;2\x07", `0 osc error`},
		{"osc indeterminate", "\x1b]9;4;3\x07", `0 osc indeterminate`},
		{"osc indeterminate with value", "\x1b]9;4;3;0\x07", `0 osc indeterminate`},
		{"osc paused", "\x1b]9;4;4;70\x1b\\", `70 osc paused`},
		{"osc set without value", "\x1b]9;4;1\x07", `0 osc`},
		{"osc clamped", "\x1b]9;4;1;150\x07", `100 osc`},
		{"osc last wins", "\x1b]9;4;1;10\x07\x1b]9;4;1;20\x07", `20 osc`},
		{"osc clear", "\x1b]9;4;0;0\x1b\\", `none`},
		{"osc clear then other source", "\x1b]9;4;0\x07::progress 5", `5 explicit`},
		{"osc unterminated", "\x1b]9;4;1;45", `none`},
		{"osc bad state", "\x1b]9;4;5;45\x07", `none`},
		{"osc other number", "\x1b]9;5;45\x07", `none`},
		{"osc hyperlink is not progress", "\x1b]8;;https://x/3/4\x1b\\link\x1b]8;;\x1b\\", `none`},

		// Azure Pipelines logging commands (from their documentation).
		{"vso", "##vso[task.setprogress value=75;]Upload Log", `75 vso "Upload Log"`},
		{"vso without semicolon", "##vso[task.setprogress value=75]", `75 vso`},
		{"vso case", "##VSO[task.SetProgress Value=10;]x", `10 vso "x"`},
		{"vso after prefix", "2026-11-25T10:00:00Z ##vso[task.setprogress value=5;]", `5 vso`},
		{"vso out of range", "##vso[task.setprogress value=150;]x", `none`},
		{"vso without value", "##vso[task.setprogress]msg", `none`},
		{"vso other command", "##vso[task.setprogressbar value=1;]", `none`},
		{"vso setvariable", "##vso[task.setvariable variable=x]5", `none`},

		// JSON lines.
		{"json fraction", `{"progress":0.5}`, `50 json`},
		{"json fraction one", `{"progress":1}`, `100 json`},
		{"json percent", `{"percent":45.5,"message":"compiling"}`, `45.5 json "compiling"`},
		{"json percent wins", `{"percent":45,"progress":0.9}`, `45 json`},
		{"json slog", `{"time":"2026-11-25T10:00:00Z","level":"INFO","msg":"copy","progress":0.25,"current":25,"total":100}`, `25 25/100 json "copy"`},
		{"json blanks", `  {"percent": 10}  `, `10 json`},
		{"json fraction too big", `{"progress":50}`, `none`},
		{"json percent too big", `{"percent":150}`, `none`},
		{"json negative", `{"percent":-1}`, `none`},
		{"json string", `{"progress":"downloading"}`, `none`},
		{"json null", `{"progress":null}`, `none`},
		{"json broken", `{"progress":0.5`, `none`},
		{"json array", `[{"percent":5}]`, `none`},
		{"json bad count", `{"percent":5,"current":3,"total":0}`, `5 json`},
	}
	runProgressCases(t, &Parser{Mode: Explicit}, cases)
}

// An OSC state without a value keeps the parser's last percent, so that a
// job's bar does not drop to zero when it turns indeterminate or errors.
func TestProgressOSCKeepsLastPercent(t *testing.T) {
	p := &Parser{}
	for _, step := range []struct{ line, want string }{
		{"\x1b]9;4;1;45\x07", `45 osc`},
		{"\x1b]9;4;3\x07", `45 osc indeterminate`},
		{"\x1b]9;4;2;0\x07", `45 osc error`},
		{"\x1b]9;4;4\x07", `45 osc paused`},
		{"\x1b]9;4;1;50\x07", `50 osc`},
	} {
		if got := progressString(p.Parse([]byte(step.line))); got != step.want {
			t.Errorf("Parse(%q) = %s, want %s", step.line, got, step.want)
		}
	}
}

func TestProgressRegex(t *testing.T) {
	for _, tc := range []struct {
		name, regex, line, want string
	}{
		{"percent", `(?P<percent>\d+)% done`, "upload 45% done", `45 regex`},
		{"count and message", `(?P<current>\d+) files of (?P<total>\d+)(?: - (?P<message>.*))?`, "12 files of 48 - copying x", `25 12/48 regex "copying x"`},
		{"thousands", `(?P<current>[\d,]+) of (?P<total>[\d,]+) rows`, "1,200 of 4,800 rows", `25 1200/4800 regex`},
		{"escapes removed first", `^(?P<percent>\d+) done$`, "\x1b[1m45\x1b[0m done", `45 regex`},
		{"before directives", `\[(?P<current>\d+)/(?P<total>\d+)\]`, "::progress 10 [5/10]", `50 5/10 regex`},
		{"percent and count", `(?P<percent>\d+)% \((?P<current>\d+)/(?P<total>\d+)\)`, "40% (4/10)", `40 4/10 regex`},
		{"invalid value falls through", `value (?P<percent>\d+)`, "value 150, 45%", `45 auto "value 150, 45%"`},
		{"bad count falls through", `(?P<current>\d+)/(?P<total>\d+)`, "0/0", `none`},
		{"no match", `(?P<percent>\d+)% done`, "nothing here", `none`},
		{"empty optional percent", `(?P<percent>\d+)?x(?P<current>\d+)/(?P<total>\d+)`, "x1/4", `25 1/4 regex`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewParser(Auto, tc.regex)
			if err != nil {
				t.Fatal(err)
			}
			if got := progressString(p.Parse([]byte(tc.line))); got != tc.want {
				t.Errorf("Parse(%q) with %q\n got %s\nwant %s", tc.line, tc.regex, got, tc.want)
			}
		})
	}
	p, err := NewParser(Explicit, `(?P<percent>\d+)% done`)
	if err != nil {
		t.Fatal(err)
	}
	if got := progressString(p.Parse([]byte("45% done"))); got != `45 regex` {
		t.Errorf("explicit mode: Parse(45%% done) = %s, want 45 regex", got)
	}
}

func TestProgressModes(t *testing.T) {
	lines := []string{"::progress 45", "\x1b]9;4;1;45\x07", "##vso[task.setprogress value=45;]", `{"percent":45}`, "45%", "[3/10]"}
	wants := map[Mode][]bool{
		Auto:     {true, true, true, true, true, true},
		"":       {true, true, true, true, true, true},
		Explicit: {true, true, true, true, false, false},
		Off:      {false, false, false, false, false, false},
	}
	for mode, want := range wants {
		for i, line := range lines {
			p := &Parser{Mode: mode} // each source alone (a report turns the heuristics off)
			if _, ok := p.Parse([]byte(line)); ok != want[i] {
				t.Errorf("mode %q: Parse(%q) ok = %v, want %v", mode, line, ok, want[i])
			}
		}
	}
}

func TestProgressMessageBounded(t *testing.T) {
	long := "::progress 45 "
	for range 300 {
		long += "é"
	}
	pr, ok := (&Parser{}).Parse([]byte(long))
	if n := len([]rune(pr.Message)); !ok || n != maxProgressMessage {
		t.Errorf("message of %d runes, want %d", n, maxProgressMessage)
	}
	pr, ok = (&Parser{}).Parse([]byte("::progress 45 a\xffb"))
	if !ok || pr.Message != "a\uFFFDb" {
		t.Errorf("message %q, want invalid UTF-8 replaced", pr.Message)
	}
}

// BenchmarkProgressParse measures the cost that auto mode adds to every
// line of output.
func BenchmarkProgressParse(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"flood", "00001234 zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}, // BenchmarkRunnerIngest's lines
		{"log", "2026-11-25T10:00:00Z INFO compiled package jobs in 1.2s, 14 files"},
		{"plain", "2026-11-25T10:00:00Z INFO handled request path=/api/jobs/42 status=200 duration=1.2ms"},
		{"words", "compiling the thing that does the other thing"},
		{"bar", "/dev/null            32%[=====>              ] 633.00K   654KB/s"},
		{"pip", "\x1b[2K     \x1b[91m━━━━━━━━━━━━━━━━\x1b[0m\x1b[90m╺━━━━━━━━━━━━━━━━━━━━━━━\x1b[0m \x1b[32m0.8/2.0 MB\x1b[0m \x1b[31m685.6 kB/s\x1b[0m eta \x1b[36m0:00:02\x1b[0m"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, line := &Parser{}, []byte(bc.line)
			for b.Loop() {
				p.Parse(line)
			}
		})
	}
}

// TestReportedTurnsHeuristicsOff: once a job reports its own progress (a
// machine-readable source), ordinary output no longer moves its percent,
// on either stream.
func TestReportedTurnsHeuristicsOff(t *testing.T) {
	out := &Parser{Mode: Auto, Reported: new(atomic.Bool)}
	errs := &Parser{Mode: Auto, Reported: out.Reported}
	if r, ok := out.Parse([]byte("  linking module_01  25%")); !ok || r.Percent != 25 || r.Source != SourceAuto {
		t.Fatalf("before any report, the heuristics read %+v %v; want 25%% from auto", r, ok)
	}
	if r, ok := out.Parse([]byte("::progress 3/20 compiling")); !ok || r.Percent != 15 || r.Source != SourceExplicit {
		t.Fatalf("directive: %+v %v", r, ok)
	}
	for _, p := range []*Parser{out, errs} {
		if r, ok := p.Parse([]byte("  linking module_03  50%")); ok {
			t.Errorf("after the job reported its own progress, the heuristics still read %+v", r)
		}
	}
	if r, ok := errs.Parse([]byte(`{"percent": 40}`)); !ok || r.Percent != 40 {
		t.Errorf("the machine-readable sources still count: %+v %v", r, ok)
	}
	// A parser on its own keeps its own latch.
	alone := &Parser{Mode: Auto}
	alone.Parse([]byte("::progress 10"))
	if r, ok := alone.Parse([]byte("50%")); ok {
		t.Errorf("a lone parser after a directive read %+v", r)
	}
}
