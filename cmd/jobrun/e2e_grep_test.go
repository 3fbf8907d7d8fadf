package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// logs --grep prints the matching visual lines with their line numbers,
// the same from the database and from a server, and exits 1 when nothing
// matched.
func TestLogsGrep(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jobrun.db")
	_, code := jobrunOutput(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`echo first; printf '\033[31mBuild ERROR here\033[0m\n'; printf '10%%\r100%%\n'; seq 1 30000; echo "error at the end"`)
	if code != 0 {
		t.Fatalf("exec: exit %d", code)
	}
	// Job 2 writes to both streams (whose lines share one numbering, in
	// the order jobrun read them).
	if _, code = jobrunOutput(t, db, "exec", "-q", "--addr", "127.0.0.1:0", "--linger", "0", "--", "sh", "-c",
		`echo "error on stdout"; echo "error on stderr" >&2`); code != 0 {
		t.Fatalf("exec: exit %d", code)
	}
	_, base := startServe(t, db)
	var numbers strings.Builder
	for i := 1; i <= 30000; i++ {
		fmt.Fprintf(&numbers, "%d:%d\n", i+3, i)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"a regular expression, with case", []string{"--grep", "ERR(OR)?"}, "2:Build ERROR here\n", 0},
		{"-i ignores case", []string{"--grep", "error", "-i"}, "2:Build ERROR here\n30004:error at the end\n", 0},
		{"anchored", []string{"--grep", "^2999[0-9]$"}, strings.TrimSuffix(numbers.String()[strings.Index(numbers.String(), "29993:"):], "30003:30000\n"), 0},
		{"many matches, many requests", []string{"--grep", "^[0-9]+$"}, numbers.String(), 0},
		{"the last frame of a \\r line", []string{"--grep", "%"}, "3:100%\n", 0},
		{"a replaced frame is not searched", []string{"--grep", "10%"}, "", 1},
		{"-F", []string{"--grep", "(", "-F"}, "", 1},
		{"--after", []string{"--grep", "first|end", "--after", "1"}, "30004:error at the end\n", 0},
		{"a bad regular expression", []string{"--grep", "("}, "", 2},
		{"no following", []string{"--grep", "x", "-f"}, "", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, where := range [][]string{nil, {"--server", base}} {
				args := append(append([]string{"logs", "1"}, c.args...), where...)
				out, code := jobrunOutput(t, db, args...)
				if code != c.code || string(out) != c.want {
					t.Errorf("jobrun %s: exit %d, %d lines %.200q; want exit %d, %d lines %.200q", strings.Join(args, " "),
						code, bytes.Count(out, []byte("\n")), out, c.code, strings.Count(c.want, "\n"), c.want)
				}
			}
		})
	}
	for _, where := range [][]string{nil, {"--server", base}} {
		out, code := jobrunOutput(t, db, append([]string{"logs", "2", "--grep", "error", "--stream", "stderr"}, where...)...)
		if got := string(out); code != 0 || (got != "1:error on stderr\n" && got != "2:error on stderr\n") {
			t.Errorf("--stream stderr %v: exit %d %q, want the stderr line", where, code, out)
		}
	}
	// --json prints the matches as the API answers them.
	out, code := jobrunOutput(t, db, "logs", "1", "--grep", "ERROR", "--json", "--server", base)
	if want := `{"seq":2,"line":2,"stream":"stdout","text":"Build ERROR here","ranges":[[6,11]]}` + "\n"; code != 0 || string(out) != want {
		t.Errorf("--json: exit %d %q, want %q", code, out, want)
	}
}
