package jobs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// splitOp is one step of a splitter test: write bytes, let the flush delay
// pass, or end the stream.
type splitOp struct {
	write string
	flush bool
	close bool
}

func w(s string) splitOp { return splitOp{write: s} }

var (
	tick = splitOp{flush: true}
	eof  = splitOp{close: true}
)

// p renders a piece for comparison: data, then eol in brackets.
func p(data, eol string) string { return fmt.Sprintf("%q[%q]", data, eol) }

func render(ps []piece) []string {
	out := make([]string, len(ps))
	for i, pc := range ps {
		out[i] = p(string(pc.Data), pc.EOL)
	}
	return out
}

// runOps feeds ops to a splitter whose writes share one buffer when they
// can (as the reader does), and returns the pieces.
func runOps(t *testing.T, max int, ops []splitOp) []piece {
	t.Helper()
	s := splitter{max: max}
	buf := make([]byte, 0, 1<<20)
	var out []piece
	for _, op := range ops {
		switch {
		case op.flush:
			out = s.flush(out)
		case op.close:
			out = s.close(out)
		default:
			start := len(buf)
			buf = append(buf, op.write...)
			out = s.write(buf[start:len(buf):cap(buf)], out)
		}
	}
	return out
}

func TestSplit(t *testing.T) {
	euro := "€" // e2 82 ac
	tests := []struct {
		name string
		max  int
		ops  []splitOp
		want []string
	}{
		{"empty input", 8, []splitOp{eof}, nil},
		{"newline", 8, []splitOp{w("a\nbc\n\n"), eof}, []string{p("a", "\n"), p("bc", "\n"), p("", "\n")}},
		{"crlf", 8, []splitOp{w("a\r\nb\r\n"), eof}, []string{p("a", "\r\n"), p("b", "\r\n")}},
		{"lone cr", 8, []splitOp{w("10%\r20%\r"), w("done\n"), eof},
			[]string{p("10%", "\r"), p("20%", "\r"), p("done", "\n")}},
		{"cr at buffer end then lf", 8, []splitOp{w("a\r"), w("\nb\n")}, []string{p("a", "\r\n"), p("b", "\n")}},
		{"cr at buffer end then other byte", 8, []splitOp{w("a\r"), w("b\n")}, []string{p("a", "\r"), p("b", "\n")}},
		{"cr then timeout", 8, []splitOp{w("a\r"), tick, w("\nb")}, []string{p("a", "\r"), p("", "\n")}},
		{"fragment timeout", 8, []splitOp{w("abc"), tick, w("de\n")}, []string{p("abc", ""), p("de", "\n")}},
		{"timeout with nothing pending", 8, []splitOp{w("a\n"), tick, tick}, []string{p("a", "\n")}},
		{"no final newline", 8, []splitOp{w("a\nb"), eof}, []string{p("a", "\n"), p("b", "")}},
		{"cr at eof", 8, []splitOp{w("a\r"), eof}, []string{p("a", "\r")}},
		{"long line split", 4, []splitOp{w("abcdefghij\n")}, []string{p("abcd", ""), p("efgh", ""), p("ij", "\n")}},
		{"line of exactly max", 4, []splitOp{w("abcd\nefgh\r\n")}, []string{p("abcd", "\n"), p("efgh", "\r\n")}},
		{"max then cr held", 4, []splitOp{w("abcd\r"), w("\n")}, []string{p("abcd", "\r\n")}},
		{"split at utf-8 boundary", 8, []splitOp{w("abcdef" + euro + "gh\n")},
			[]string{p("abcdef", ""), p(euro+"gh", "\n")}},
		{"split at utf-8 boundary across writes", 8, []splitOp{w("abcdef\xe2"), w("\x82\xacgh\n")},
			[]string{p("abcdef", ""), p(euro+"gh", "\n")}},
		{"invalid utf-8 cut anywhere", 8, []splitOp{w("abcdef\xe2\x82xyz\n")},
			[]string{p("abcdef\xe2\x82", ""), p("xyz", "\n")}},
		{"invalid utf-8 kept", 8, []splitOp{w("\xff\xfe\n\xc3"), eof}, []string{p("\xff\xfe", "\n"), p("\xc3", "")}},
		{"timeout holds incomplete utf-8", 8, []splitOp{w("ab\xe2\x82"), tick, w("\xac\n")},
			[]string{p("ab", ""), p(euro, "\n")}},
		{"second timeout flushes incomplete utf-8", 8, []splitOp{w("ab\xe2\x82"), tick, tick, w("\xac\n")},
			[]string{p("ab", ""), p("\xe2\x82", ""), p("\xac", "\n")}},
		{"eof flushes incomplete utf-8", 8, []splitOp{w("ab\xe2\x82"), eof}, []string{p("ab\xe2\x82", "")}},
		{"timeout with invalid tail", 8, []splitOp{w("ab\xe2\x41"), tick}, []string{p("ab\xe2A", "")}},
		{"line across many writes", 8, []splitOp{w("a"), w("b"), w("c"), w("\n")}, []string{p("abc", "\n")}},
		{"real max line bytes", MaxLineBytes, []splitOp{w(strings.Repeat("x", MaxLineBytes-1) + euro + "\n")},
			[]string{p(strings.Repeat("x", MaxLineBytes-1), ""), p(euro, "\n")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(runOps(t, tt.max, tt.ops))
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("pieces:\n got  %v\n want %v", got, tt.want)
			}
		})
	}
}

// TestSplitNonAdjacent checks that a line straddling two read buffers is
// joined into a private copy and that the rest of the second buffer is then
// split in place.
func TestSplitNonAdjacent(t *testing.T) {
	s := splitter{max: 8}
	b1 := []byte("one\ntw")
	b2 := []byte("o\nthree\nfo")
	out := s.write(b1, nil)
	out = s.write(b2, out)
	out = s.close(out)
	got := strings.Join(render(out), " ")
	want := strings.Join([]string{p("one", "\n"), p("two", "\n"), p("three", "\n"), p("fo", "")}, " ")
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if &out[2].Data[0] != &b2[2] {
		t.Errorf("the piece after the joined line was copied, want a slice of the read buffer")
	}
	if cap(out[0].Data) != len(out[0].Data) {
		t.Errorf("piece capacity %d > length %d: appending to it would overwrite the buffer", cap(out[0].Data), len(out[0].Data))
	}
}

// checkSplit feeds data to a splitter in chunks chosen by rng, into buffers
// laid out like the reader's (tails of shared buffers, sometimes a fresh
// one), with flushes in between, and checks the invariants.
func checkSplit(t *testing.T, data []byte, rng *rand.Rand, max int, flushes bool) {
	t.Helper()
	s := splitter{max: max}
	var out []piece
	var buf []byte
	for rest := data; len(rest) > 0; {
		n := 1 + rng.IntN(min(len(rest), 3*max))
		if rng.IntN(4) == 0 || cap(buf)-len(buf) < n {
			buf = make([]byte, 0, n+rng.IntN(64))
		}
		start := len(buf)
		buf = append(buf, rest[:n]...)
		rest = rest[n:]
		out = s.write(buf[start:len(buf):cap(buf)], out)
		if flushes && rng.IntN(3) == 0 {
			out = s.flush(out)
			if rng.IntN(4) == 0 {
				out = s.flush(out)
			}
		}
	}
	out = s.close(out)

	var got bytes.Buffer
	for i, pc := range out {
		got.Write(pc.Data)
		got.WriteString(pc.EOL)
		if len(pc.Data) > max {
			t.Fatalf("piece %d has %d bytes, more than max %d", i, len(pc.Data), max)
		}
		if bytes.ContainsAny(pc.Data, "\r\n") {
			t.Fatalf("piece %d data %q holds a terminator", i, pc.Data)
		}
		if pc.EOL == "" && len(pc.Data) == 0 {
			t.Fatalf("piece %d is an empty fragment", i)
		}
		if cap(pc.Data) != len(pc.Data) {
			t.Fatalf("piece %d: capacity %d beyond length %d", i, cap(pc.Data), len(pc.Data))
		}
		if !flushes && utf8.Valid(data) && !utf8.Valid(pc.Data) {
			t.Fatalf("piece %d %q cut inside a UTF-8 character of valid input", i, pc.Data)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("concatenated pieces differ from the input:\n got  %q\n want %q", got.Bytes(), data)
	}
}

// randomOutput makes bytes that look like program output: text, unicode,
// "\r", "\r\n", long runs, invalid bytes.
func randomOutput(rng *rand.Rand, n int) []byte {
	atoms := []string{"a", "bc", "hello world", "\n", "\r", "\r\n", "€", "😀", "é", "\xff", "\xe2\x82", "\t", " "}
	var b []byte
	for len(b) < n {
		if rng.IntN(50) == 0 {
			b = append(b, strings.Repeat("x", rng.IntN(40))...)
			continue
		}
		b = append(b, atoms[rng.IntN(len(atoms))]...)
	}
	return b
}

func TestSplitRandom(t *testing.T) {
	for i := range 300 {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		data := randomOutput(rng, rng.IntN(600))
		max := 4 + rng.IntN(20)
		checkSplit(t, data, rng, max, true)
		checkSplit(t, data, rng, max, false)
	}
}

func TestSplitValidUTF8NeverCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		var b strings.Builder
		for b.Len() < 300 {
			b.WriteString([]string{"é", "€", "😀", "ab", "\n", "\r", "xyz"}[rng.IntN(7)])
		}
		checkSplit(t, []byte(b.String()), rng, 4+rng.IntN(12), false)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\rd"), uint64(1), uint8(8))
	f.Add([]byte("€€€€€€€€\xe2\x82"), uint64(2), uint8(5))
	f.Add([]byte("\r\r\n\n\r"), uint64(3), uint8(4))
	f.Add([]byte{}, uint64(4), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, max uint8) {
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		m := 4 + int(max%60)
		checkSplit(t, data, rng, m, seed%2 == 0)
	})
}

// BenchmarkSplit measures splitting 60-byte lines read in 64 KiB chunks.
func BenchmarkSplit(b *testing.B) {
	line := strings.Repeat("abcdefghij", 6)[:59] + "\n"
	data := []byte(strings.Repeat(line, (256<<10)/len(line)))
	b.SetBytes(int64(len(data)))
	out := make([]piece, 0, 8192)
	for b.Loop() {
		s := newSplitter()
		for off := 0; off < len(data); off += 64 << 10 {
			out = s.write(data[off:min(len(data), off+64<<10)], out[:0])
		}
		out = s.close(out[:0])
	}
}
