package jobs

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
)

// Masking keeps secrets out of what jobrun stores, streams and echoes: the
// values given in Runner.Mask (jobrun exec --mask-env NAME) and those a
// job announces with a line "::add-mask::VALUE" are replaced by MaskText.
// It is the one deliberate exception to byte-exact storage.
//
// Each stream's reader runs its bytes through a masker before anything
// else sees them (echo, splitter, progress parser), so a secret split
// across reads, or across the fragments of an unterminated line, is still
// caught: at the end of each read the masker holds back the longest tail
// that could begin a secret (or begin a "::add-mask::" line) until the next
// read, or the end of the stream, shows whether it does. A directive line
// is held back whole until its end of line. Held bytes wait for more
// output, not for a timer: a job that prints the first bytes of a secret
// and then nothing for a long time shows those bytes only when it goes on.

// MaskText replaces every masked value.
const MaskText = "***"

// MinMaskLen is the shortest value that is masked: shorter ones ("1",
// "no") would mask ordinary output everywhere, and are ignored with a
// message.
const MinMaskLen = 4

// addMaskPrefix starts a directive line that adds a value to mask.
const addMaskPrefix = "::add-mask::"

// maxAddMaskLine bounds the bytes of a directive line held back while its
// end of line is awaited. A longer line is replaced by the prefix and
// MaskText, and its value is not added.
const maxAddMaskLine = 64 << 10

var (
	maskText     = []byte(MaskText)
	addMaskBytes = []byte(addMaskPrefix)
)

// maskValues splits values into the secrets to mask: each line of each
// value (a multi-line value such as a key is masked line by line, as no
// line event can hold more than one line), without its "\r", at least
// MinMaskLen bytes long. short lists the lines that were too short.
func maskValues(values []string) (secrets, short []string) {
	for _, v := range values {
		for line := range strings.SplitSeq(v, "\n") {
			line = strings.TrimSuffix(line, "\r")
			switch {
			case line == "":
			case len(line) < MinMaskLen:
				short = append(short, line)
			default:
				secrets = append(secrets, line)
			}
		}
	}
	return secrets, short
}

// MaskString replaces every occurrence of the values (split as Runner.Mask
// splits them) in s with MaskText. The runner masks the job's name and
// command with it; it is not for hot paths.
func MaskString(s string, values []string) string {
	secrets, _ := maskValues(values)
	return newMaskList(nil, secrets).replace(s)
}

// maskList is an immutable set of secrets, longest first (so that at one
// position the longest match wins), with what the hold-back check needs.
type maskList struct {
	secrets [][]byte
	maxLen  int       // the longest secret's length
	first   [256]bool // bytes that start a secret
}

func newMaskList(old *maskList, add []string) *maskList {
	l := &maskList{}
	if old != nil {
		l.secrets = append(l.secrets, old.secrets...)
	}
	for _, s := range add {
		if !l.has(s) {
			l.secrets = append(l.secrets, []byte(s))
		}
	}
	// Longest first; a stable insertion sort is plenty for a few dozen.
	for i := 1; i < len(l.secrets); i++ {
		for j := i; j > 0 && len(l.secrets[j]) > len(l.secrets[j-1]); j-- {
			l.secrets[j], l.secrets[j-1] = l.secrets[j-1], l.secrets[j]
		}
	}
	for _, s := range l.secrets {
		l.maxLen = max(l.maxLen, len(s))
		l.first[s[0]] = true
	}
	return l
}

func (l *maskList) has(s string) bool {
	for _, x := range l.secrets {
		if string(x) == s {
			return true
		}
	}
	return false
}

// replace masks s.
func (l *maskList) replace(s string) string {
	for _, x := range l.secrets {
		s = strings.ReplaceAll(s, string(x), MaskText)
	}
	return s
}

// maskSet is the secrets of one job, shared by its streams: a value a job
// announces on stdout is masked on stderr too, from then on.
type maskSet struct {
	mu   sync.Mutex // serializes add
	list atomic.Pointer[maskList]
}

func newMaskSet(secrets []string) *maskSet {
	s := &maskSet{}
	s.list.Store(newMaskList(nil, secrets))
	return s
}

func (s *maskSet) load() *maskList { return s.list.Load() }

// add adds a secret announced by the job.
func (s *maskSet) add(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.list.Load(); !old.has(v) {
		s.list.Store(newMaskList(old, []string{v}))
	}
}

// masker masks one stream. It is owned by the stream's reader goroutine.
// Its output is a list of segments: slices of the input (never modified;
// a segment's capacity reaches past it only where the bytes that follow in
// memory are the next input, as the splitter expects) and MaskText.
type masker struct {
	set *maskSet
	// held is the withheld tail of the input: a possible beginning of a
	// secret or of a directive line. Its capacity reaches to the end of
	// the read buffer when it is a slice of it, so that the next read,
	// landing right after it, extends it in place.
	held []byte
	// lineStart: the first byte of held (or of the next input when
	// nothing is held) starts a line.
	lineStart bool
	// skipLine: the rest of the current line is dropped (a directive line
	// longer than maxAddMaskLine).
	skipLine bool
	// onShort reports a directive value too short to mask; onLong a
	// directive line too long to hold. Both may be nil.
	onShort, onLong func()
	// Cached search results within the current input (see scan).
	next   []int // per secret: index of its next occurrence at or after from, or -1
	nextOf *maskList
}

func newMasker(set *maskSet) *masker {
	return &masker{set: set, lineStart: true}
}

// write masks p, the bytes read right after everything written before, and
// appends the segments that may be passed on to out.
func (m *masker) write(p []byte, out [][]byte) [][]byte {
	if len(p) == 0 {
		return out
	}
	buf := p
	if len(m.held) > 0 {
		if adjacent(m.held, p) {
			buf = m.held[:len(m.held)+len(p)]
		} else {
			buf = make([]byte, 0, len(m.held)+len(p))
			buf = append(append(buf, m.held...), p...)
		}
		m.held = nil
	}
	return m.scan(buf, out, false)
}

// close passes on everything held: the stream has ended.
func (m *masker) close(out [][]byte) [][]byte {
	buf := m.held
	m.held = nil
	if len(buf) == 0 {
		return out
	}
	return m.scan(buf, out, true)
}

// scan masks buf, which starts at a line start when m.lineStart, emitting
// what is settled and holding back the rest (nothing at eof).
func (m *masker) scan(buf []byte, out [][]byte, eof bool) [][]byte {
	if m.skipLine {
		// The rest of a directive line too long to hold: drop it.
		i := indexEOL(buf)
		if i < 0 {
			return out
		}
		buf, m.skipLine, m.lineStart = buf[i:], false, false
	}
	list := m.set.load()
	from, emitted := 0, 0
	// emit passes on buf[emitted:to]. A segment followed by masked bytes
	// is capped, so that nothing can extend it over them.
	emit := func(to int, capped bool) {
		if to > emitted {
			if capped {
				out = append(out, buf[emitted:to:to])
			} else {
				out = append(out, buf[emitted:to])
			}
		}
	}
	m.resetNext(list)
	dir := -2 // cached index of the next directive at a line start (-2: not searched)
	for from < len(buf) {
		if dir == -2 || dir != -1 && dir < from {
			dir = m.nextDirective(buf, from)
		}
		si, slen := m.nextSecret(list, buf, from)
		if dir >= 0 && (si < 0 || dir <= si) {
			end := dir + len(addMaskPrefix)
			eol := indexEOL(buf[end:])
			switch {
			case eol >= 0:
			case eof:
				eol = len(buf) - end
			case len(buf)-dir <= maxAddMaskLine:
				emit(dir, false)
				m.hold(buf, dir)
				return out
			default:
				// Too long to hold: mask what came and drop the rest of
				// the line; its value is not added.
				emit(end, true)
				out = append(out, maskText)
				m.skipLine, m.lineStart = true, false
				if m.onLong != nil {
					m.onLong()
				}
				return out
			}
			if v := bytes.TrimSpace(buf[end : end+eol]); len(v) >= MinMaskLen {
				m.set.add(string(v))
				list = m.set.load()
				m.resetNext(list)
			} else if len(v) > 0 && m.onShort != nil {
				m.onShort()
			}
			emit(end, true)
			out = append(out, maskText)
			from, emitted = end+eol, end+eol
			dir = -2
			continue
		}
		if si < 0 {
			break
		}
		if !eof && m.longerMayFollow(list, buf[si:], slen) {
			emit(si, false)
			m.hold(buf, si)
			return out
		}
		emit(si, true)
		out = append(out, maskText)
		from, emitted = si+slen, si+slen
	}
	h := 0
	if !eof {
		h = m.holdLen(list, buf, from)
	}
	// The held bytes, when they are passed on, are the next segment: this
	// one keeps its capacity over them.
	emit(len(buf)-h, false)
	m.hold(buf, len(buf)-h)
	return out
}

// hold withholds buf[at:] and records whether it starts a line.
func (m *masker) hold(buf []byte, at int) {
	if at > 0 {
		c := buf[at-1]
		m.lineStart = c == '\n' || c == '\r'
	}
	if at < len(buf) {
		m.held = buf[at:]
	}
}

// atLineStart reports whether buf[i] starts a line.
func (m *masker) atLineStart(buf []byte, i int) bool {
	if i == 0 {
		return m.lineStart
	}
	c := buf[i-1]
	return c == '\n' || c == '\r'
}

// nextDirective returns the index of the next "::add-mask::" at a line
// start at or after from, or -1.
func (m *masker) nextDirective(buf []byte, from int) int {
	for from < len(buf) {
		i := bytes.Index(buf[from:], addMaskBytes)
		if i < 0 {
			return -1
		}
		if m.atLineStart(buf, from+i) {
			return from + i
		}
		from += i + 1
	}
	return -1
}

func (m *masker) resetNext(list *maskList) {
	m.nextOf = list
	m.next = m.next[:0]
	for range list.secrets {
		m.next = append(m.next, -2)
	}
}

// nextSecret returns the earliest occurrence of a secret at or after from
// (the longest one at that index) and its length, or -1.
func (m *masker) nextSecret(list *maskList, buf []byte, from int) (int, int) {
	best, blen := -1, 0
	for k, s := range list.secrets {
		i := m.next[k]
		if i == -2 || i != -1 && i < from {
			i = -1
			if j := bytes.Index(buf[from:], s); j >= 0 {
				i = from + j
			}
			m.next[k] = i
		}
		if i >= 0 && (best < 0 || i < best) {
			best, blen = i, len(s) // longest first: a tie keeps the longer
		}
	}
	return best, blen
}

// longerMayFollow reports whether tail, which starts with a secret of
// length n, is also the beginning of a longer secret: then more bytes must
// be seen, as the longest match wins.
func (m *masker) longerMayFollow(list *maskList, tail []byte, n int) bool {
	if len(tail) >= list.maxLen {
		return false
	}
	for _, s := range list.secrets {
		if len(s) <= n {
			break // longest first
		}
		if len(s) > len(tail) && bytes.HasPrefix(s, tail) {
			return true
		}
	}
	return false
}

// holdLen is the length of the longest tail of buf[from:] that could begin
// a secret, or a directive at a line start, were more bytes to follow.
func (m *masker) holdLen(list *maskList, buf []byte, from int) int {
	n := len(buf)
	longest := max(list.maxLen, len(addMaskPrefix)) - 1
	for l := min(n-from, longest); l > 0; l-- {
		tail := buf[n-l:]
		if l < len(addMaskPrefix) && tail[0] == ':' && m.atLineStart(buf, n-l) && bytes.HasPrefix(addMaskBytes, tail) {
			return l
		}
		if !list.first[tail[0]] {
			continue
		}
		for _, s := range list.secrets {
			if len(s) > l && bytes.HasPrefix(s, tail) {
				return l
			}
		}
	}
	return 0
}

// maskJob masks the job's name and command (the child still gets the real
// command line).
func maskJob(j *Job, secrets []string) {
	if len(secrets) == 0 {
		return
	}
	l := newMaskList(nil, secrets)
	j.Name = l.replace(j.Name)
	cmd := make([]string, len(j.Command))
	for i, a := range j.Command {
		cmd[i] = l.replace(a)
	}
	j.Command = cmd
}
