package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// gateWriter records what is written, in order, after gate is closed;
// tagged writers share one log so that the order across streams shows.
type gateWriter struct {
	gate chan struct{}
	mu   *sync.Mutex
	log  *bytes.Buffer
	tag  string
}

func (w gateWriter) Write(p []byte) (int, error) {
	<-w.gate
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log.WriteString(w.tag)
	w.log.Write(p)
	return len(p), nil
}

// TestEchoSpillKeepsOrder: with the writers stuck, everything beyond the
// memory limit goes to the spill file; once they move, every chunk comes
// out once, in push order, across both streams; after the file drains,
// the queue goes back to memory.
func TestEchoSpillKeepsOrder(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	var got bytes.Buffer
	e := newEcho(gateWriter{gate, &mu, &got, "O:"}, gateWriter{gate, &mu, &got, "E:"}, func(err error) { t.Error(err) }, nil)
	e.memLimit = 100
	var want bytes.Buffer
	push := func(i int) {
		stream := i % 3 % 2
		data := fmt.Appendf(nil, "chunk %d|", i)
		want.WriteString([]string{"O:", "E:"}[stream])
		want.Write(data)
		e.push(stream, data)
	}
	for i := range 200 {
		push(i)
	}
	e.mu.Lock()
	spilled := e.fileW
	e.mu.Unlock()
	if spilled == 0 {
		t.Errorf("nothing spilled beyond a memory limit of 100 bytes")
	}
	close(gate)
	for i := 200; i < 300; i++ {
		push(i)
	}
	e.close()
	if got.String() != want.String() {
		t.Errorf("echo out of order or incomplete:\n got  %.200s\n want %.200s", got.String(), want.String())
	}
}

// failWriter fails every write after the first.
type failWriter struct {
	n int
	b bytes.Buffer
}

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n > 1 {
		return 0, errors.New("broken pipe")
	}
	return w.b.Write(p)
}

func TestEchoWriterFails(t *testing.T) {
	var out failWriter
	var errs bytes.Buffer
	e := newEcho(&out, &errs, nil, nil)
	for i := range 10 {
		e.push(stdoutIndex, fmt.Appendf(nil, "out %d\n", i))
		e.push(stderrIndex, fmt.Appendf(nil, "err %d\n", i))
	}
	e.close()
	if out.b.String() != "out 0\n" || out.n != 2 {
		t.Errorf("stdout got %q in %d writes, want the first chunk, then nothing after the failed write", out.b.String(), out.n)
	}
	var want bytes.Buffer
	for i := range 10 {
		fmt.Fprintf(&want, "err %d\n", i)
	}
	if errs.String() != want.String() {
		t.Errorf("stderr %q, want all of it: one failing writer does not stop the other", errs.String())
	}
}

func TestEchoNilWriter(t *testing.T) {
	var errs bytes.Buffer
	e := newEcho(nil, &errs, nil, nil)
	e.push(stdoutIndex, []byte("dropped"))
	e.push(stderrIndex, []byte("kept"))
	e.close()
	e.close() // idempotent
	if errs.String() != "kept" {
		t.Errorf("stderr %q, want %q", errs.String(), "kept")
	}
}
