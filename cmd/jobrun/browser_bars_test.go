package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// terminalLines renders output as a terminal shows it: "\r" goes back to
// the start of the line, where the text after it overwrites; "\n" ends the
// line; escape sequences (CSI, OSC) show nothing.
func terminalLines(out []byte) []string {
	var lines []string
	var line []rune
	col := 0
	s := string(out)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			lines = append(lines, string(line))
			line, col = line[:0:0], 0
			i++
		case c == '\r':
			col = 0
			i++
		case c == 0x1b && i+1 < len(s) && s[i+1] == '[':
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j + 1
		case c == 0x1b && i+1 < len(s) && s[i+1] == ']':
			j := i + 2
			for j < len(s) && s[j] != 0x07 && !(s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\') {
				j++
			}
			if j < len(s) && s[j] == 0x1b {
				j++
			}
			i = j + 1
		default:
			r := []rune(s[i:])[0]
			if col < len(line) {
				line[col] = r
			} else {
				line = append(line, r)
			}
			col++
			i += len(string(r))
		}
	}
	if len(line) > 0 {
		lines = append(lines, string(line))
	}
	return lines
}

func TestTerminalLines(t *testing.T) {
	got := terminalLines([]byte("a\r\n  25%\r  50%\r\x1b[1mlong\x1b[0m frame\rshort\n\x1b]8;;x\x07link\x1b]8;;\x1b\\\nend"))
	want := []string{"a", "shortframe", "link", "end"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("terminalLines = %q, want %q", got, want)
	}
}

// TestPageShowsBarsAsATerminalDoes runs examples/build.sh, whose bars end
// with `100%\r` and, after a pause, `\n` (under a PTY, `\r\n`): an empty
// piece that must not wipe the last frame. The page shows each stream's
// lines as a terminal would, both as they arrive and reloaded (collapse=1).
func TestPageShowsBarsAsATerminalDoes(t *testing.T) {
	t.Setenv("JOBRUN_EXAMPLE_STEPS", "5") // startJobrun passes the environment on
	script, err := filepath.Abs("../../examples/build.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		flags   []string
		streams []string
	}{
		{"pipes", nil, []string{"stdout", "stderr"}},
		{"pty", []string{"--pty"}, []string{"tty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "jobrun.db")
			gate, open := startGate(t)
			args := append([]string{"exec", "-q", "--addr", "127.0.0.1:0"}, tc.flags...)
			p := startJobrun(t, db, append(args, "--", "sh", "-c", gate+"exec "+script)...)
			base := p.baseURL(t)
			b := newBrowser(t)
			b.navigate(t, base+"/jobs/1")
			waitStream(t, b, 30*time.Second, "live")
			open()
			waitStream(t, b, 30*time.Second, "ended")

			// The case at hand: a last frame, then an empty piece ending its
			// line. (A "\r" and the "\n" 200 ms later arrive as one piece
			// "\r\n" when the 100 ms flush comes late on a busy machine.)
			out, _ := jobrunOutput(t, db, "logs", "--json", "1")
			ended := 0
			prevCR := map[string]bool{}
			for _, l := range bytes.Split(out, []byte("\n")) {
				var ev struct{ Type, Stream, Text, EOL string }
				if json.Unmarshal(l, &ev) != nil || ev.Type != "line" {
					continue
				}
				if prevCR[ev.Stream] && ev.Text == "" && (ev.EOL == "\n" || ev.EOL == "\r\n") {
					ended++
				}
				prevCR[ev.Stream] = ev.EOL == "\r"
			}
			t.Logf("%d of 5 bars ended by an empty piece after their last frame", ended)
			if ended == 0 {
				t.Errorf("no bar ended by an empty piece after its \\r frame: the test does not test what it should")
			}

			want := map[string][]string{}
			for _, s := range tc.streams {
				raw, code := jobrunOutput(t, db, "logs", "--stream", s, "1")
				if code != 0 {
					t.Fatalf("jobrun logs --stream %s: exit %d", s, code)
				}
				// The page hides the example's ::progress directives.
				for _, l := range terminalLines(raw) {
					if !strings.HasPrefix(l, "::progress ") {
						want[s] = append(want[s], l)
					}
				}
			}
			if !strings.Contains(strings.Join(want[tc.streams[0]], "\n"), "  linking module_03 100%") {
				t.Fatalf("the terminal shows %q; the example changed?", want[tc.streams[0]])
			}
			check := func(when string) {
				t.Helper()
				got := map[string][]string{}
				for _, r := range collectRows(t, b) {
					got[r.Stream] = append(got[r.Stream], r.Text)
				}
				for _, s := range tc.streams {
					if fmt.Sprintf("%q", got[s]) != fmt.Sprintf("%q", want[s]) {
						t.Errorf("%s: the page shows %s as\n%q\na terminal shows\n%q", when, s, got[s], want[s])
					}
				}
			}
			check("live")
			p.wait(t) // exec exits once its viewer has the end: serve the database
			b.navigate(t, serveDB(t, db)+"/jobs/1")
			waitStream(t, b, 30*time.Second, "ended")
			check("reloaded (collapse=1)")
		})
	}
}
