package jobs

import (
	"bytes"
	"strings"
	"testing"
)

// maskAll feeds chunks to a fresh masker for secrets and returns what it
// passes on, checking on the way that no segment is modified later.
func maskAll(t testing.TB, secrets []string, chunks ...string) string {
	t.Helper()
	m := newMasker(newMaskSet(secrets))
	var out bytes.Buffer
	var segs [][]byte
	// One buffer, as the reader uses it: chunks land one after another,
	// so that held bytes are extended in place.
	buf := make([]byte, 0, 1<<16)
	for _, c := range chunks {
		if cap(buf)-len(buf) < len(c) {
			buf = make([]byte, 0, max(1<<16, len(c)))
		}
		data := buf[len(buf) : len(buf)+len(c) : cap(buf)]
		copy(data, c)
		buf = buf[:len(buf)+len(c)]
		segs = m.write(data, segs[:0])
		for _, s := range segs {
			out.Write(s)
		}
	}
	for _, s := range m.close(segs[:0]) {
		out.Write(s)
	}
	return out.String()
}

func TestMask(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"nothing to mask", nil, "plain output\n", "plain output\n"},
		{"a value", []string{"hunter22"}, "pw=hunter22!\n", "pw=***!\n"},
		{"every occurrence", []string{"hunter22"}, "hunter22hunter22 x hunter22", "****** x ***"},
		{"longest first", []string{"abcd", "abcdefgh"}, "xabcdefghx abcdx", "x***x ***x"},
		{"near miss at the end", []string{"hunter22"}, "hunter2", "hunter2"},
		{"directive", nil, "::add-mask::s3cret\nthe s3cret is out\n", "::add-mask::***\nthe *** is out\n"},
		{"directive with crlf and spaces", nil, "::add-mask::  s3cret \r\ns3cret\r\n", "::add-mask::***\r\n***\r\n"},
		{"directive at eof", nil, "::add-mask::s3cret", "::add-mask::***"},
		{"directive not at a line start", nil, "say ::add-mask::s3cret\ns3cret\n", "say ::add-mask::s3cret\ns3cret\n"},
		{"directive after cr", nil, "50%\r::add-mask::s3cret\ns3cret\n", "50%\r::add-mask::***\n***\n"},
		{"short directive value", nil, "::add-mask::ab\nab\n", "::add-mask::***\nab\n"},
		{"empty directive", nil, "::add-mask::\nx\n", "::add-mask::***\nx\n"},
		{"directive, then a value in the same read", []string{"zzzz"}, "::add-mask::yyyy\nyyyy zzzz\n", "::add-mask::***\n*** ***\n"},
		{"multi-line value", []string{"line-one\nline-two\r\n"}, "line-one\nline-two\n", "***\n***\n"},
		{"binary around", []string{"hunter22"}, "\xff\x00hunter22\xfe", "\xff\x00***\xfe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secrets, _ := maskValues(tc.secrets)
			if got := maskAll(t, secrets, tc.in); got != tc.want {
				t.Errorf("one read: got %q, want %q", got, tc.want)
			}
			// Any split into reads gives the same output.
			for i := 0; i <= len(tc.in); i++ {
				for j := i; j <= len(tc.in); j++ {
					if got := maskAll(t, secrets, tc.in[:i], tc.in[i:j], tc.in[j:]); got != tc.want {
						t.Fatalf("reads %q %q %q: got %q, want %q", tc.in[:i], tc.in[i:j], tc.in[j:], got, tc.want)
					}
				}
			}
			// Byte by byte, each read in a buffer of its own.
			chunks := make([]string, len(tc.in))
			for i := range tc.in {
				chunks[i] = strings.Clone(tc.in[i : i+1])
			}
			m := newMasker(newMaskSet(secrets))
			var out bytes.Buffer
			for _, c := range chunks {
				for _, s := range m.write([]byte(c), nil) {
					out.Write(s)
				}
			}
			for _, s := range m.close(nil) {
				out.Write(s)
			}
			if out.String() != tc.want {
				t.Errorf("byte by byte: got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func TestMaskHoldsOnlyPossiblePrefixes(t *testing.T) {
	m := newMasker(newMaskSet([]string{"hunter22"}))
	var got []string
	for _, s := range m.write([]byte("a line\nthe password is hunt"), nil) {
		got = append(got, string(s))
	}
	if strings.Join(got, "") != "a line\nthe password is " {
		t.Errorf("passed on %q, want everything but the possible secret's start", got)
	}
	if string(m.held) != "hunt" {
		t.Errorf("held %q, want %q", m.held, "hunt")
	}
	// A directive's beginning is held only at a line start.
	m = newMasker(newMaskSet(nil))
	m.write([]byte("x\n::add-m"), nil)
	if string(m.held) != "::add-m" {
		t.Errorf("held %q, want the directive's start", m.held)
	}
	m = newMasker(newMaskSet(nil))
	m.write([]byte("x ::add-m"), nil)
	if len(m.held) != 0 {
		t.Errorf("held %q of a line that is not a directive", m.held)
	}
}

func TestMaskSharedAcrossStreams(t *testing.T) {
	set := newMaskSet(nil)
	out, errs := newMasker(set), newMasker(set)
	out.write([]byte("::add-mask::t0ken\n"), nil)
	var b bytes.Buffer
	for _, s := range errs.write([]byte("stderr has t0ken\n"), nil) {
		b.Write(s)
	}
	if b.String() != "stderr has ***\n" {
		t.Errorf("stderr after a directive on stdout: %q", b.String())
	}
}

func TestMaskLongDirective(t *testing.T) {
	long := strings.Repeat("v", maxAddMaskLine+10)
	in := "::add-mask::" + long + "\nafter\n"
	// In small reads, so that the line outgrows the hold.
	var chunks []string
	for i := 0; i < len(in); i += 4096 {
		chunks = append(chunks, in[i:min(len(in), i+4096)])
	}
	if got := maskAll(t, nil, chunks...); got != "::add-mask::***\nafter\n" {
		t.Errorf("long directive line: got %.80q..., want it hidden", got)
	}
}

func TestMaskString(t *testing.T) {
	if got := MaskString("curl -H 'Authorization: Bearer t0ken-value'", []string{"t0ken-value", "no"}); got != "curl -H 'Authorization: Bearer ***'" {
		t.Errorf("MaskString: %q", got)
	}
}

// FuzzMask checks that masking does not depend on how the output is cut
// into reads.
func FuzzMask(f *testing.F) {
	f.Add("pw hunter22\n::add-mask::s3cret\ns3cret hunter2", 3, 7)
	f.Add("::add-mask::abcd\r\nabcdabcd", 1, 20)
	f.Fuzz(func(t *testing.T, in string, i, j int) {
		secrets := []string{"hunter22", "hunt", "s3cret"}
		want := maskAll(t, secrets, in)
		if len(in) == 0 {
			return
		}
		i, j = abs(i)%(len(in)+1), abs(j)%(len(in)+1)
		if i > j {
			i, j = j, i
		}
		if got := maskAll(t, secrets, in[:i], in[i:j], in[j:]); got != want {
			t.Fatalf("reads %q %q %q: got %q, one read gives %q", in[:i], in[i:j], in[j:], got, want)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// BenchmarkMasker measures masking alone, on 64 KiB reads of 60-byte
// lines in which nothing is to be masked.
func BenchmarkMasker(b *testing.B) {
	var lines []byte
	for i := 0; len(lines) < 64<<10; i++ {
		lines = append(lines, []byte("2024-01-01T00:00:00Z info step 42 of 100 doing work item "+string(rune('a'+i%26))+"\n")...)
	}
	lines = lines[:64<<10]
	for _, n := range []int{0, 1, 8} {
		var secrets []string
		for i := range n {
			secrets = append(secrets, "s3cret-value-"+strings.Repeat(string(rune('a'+i)), 20))
		}
		b.Run("masks="+string(rune('0'+n)), func(b *testing.B) {
			m := newMasker(newMaskSet(secrets))
			var segs [][]byte
			b.SetBytes(int64(len(lines)))
			for b.Loop() {
				segs = m.write(lines, segs[:0])
			}
		})
	}
}
