package jobs

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
)

// echoMemLimit is how many bytes the echo queue keeps in memory before it
// spills to a temporary file.
const echoMemLimit = 4 << 20

// echo passes the raw bytes of every read, in read order, to the writer of
// their stream (jobrun's own stdout and stderr), like tee. push never
// blocks on the writers: what they have not taken yet waits in memory, and
// past memLimit in an unlinked temporary file, so a slow terminal slows
// the echo and nothing else. A writer that fails (EPIPE after `| head`) is
// dropped silently; the other one goes on.
//
// One goroutine, started by newEcho and ended by close, does the writing.
type echo struct {
	w        [2]io.Writer // indexed by streamIndex; nil: no echo
	memLimit int
	onError  func(error) // spill file trouble; called once, from push
	guard    func()      // deferred by the writer goroutine, if set (see Run.guard)

	mu       sync.Mutex
	dead     [2]bool // writer failed or absent: drop its bytes
	mem      []echoChunk
	memBytes int
	file     *os.File // spill queue, after everything in mem
	fileR    int64    // read offset in file
	fileW    int64    // write offset in file
	closed   bool
	wake     chan struct{} // capacity 1: "there is something new"
	done     chan struct{} // closed when the writer goroutine returns
	stopOnce sync.Once
}

type echoChunk struct {
	stream int
	data   []byte
}

// echoHeader is the size of a spilled chunk's header: stream, length.
const echoHeader = 5

// newEcho starts the writer goroutine. stdout or stderr may be nil; guard,
// if not nil, is deferred by the goroutine.
func newEcho(stdout, stderr io.Writer, onError func(error), guard func()) *echo {
	e := &echo{
		w:        [2]io.Writer{stdout, stderr},
		memLimit: echoMemLimit,
		onError:  onError,
		guard:    guard,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	for i, w := range e.w {
		e.dead[i] = w == nil
	}
	go e.loop()
	return e
}

// push queues data (which the caller never modifies afterwards) for the
// writer of stream.
func (e *echo) push(stream int, data []byte) {
	if len(data) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead[stream] || e.closed {
		return
	}
	if e.fileW > e.fileR || e.memBytes+len(data) > e.memLimit {
		if err := e.spill(stream, data); err != nil {
			e.dead = [2]bool{true, true}
			e.mem, e.memBytes = nil, 0
			if e.onError != nil {
				e.onError(err)
			}
			return
		}
	} else {
		e.mem = append(e.mem, echoChunk{stream, data})
		e.memBytes += len(data)
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// spill appends a chunk to the spill file, creating it (unlinked) first.
// Called with mu held.
func (e *echo) spill(stream int, data []byte) error {
	if e.file == nil {
		f, err := os.CreateTemp("", "jobrun-echo-*")
		if err != nil {
			return fmt.Errorf("echo spill file: %w", err)
		}
		os.Remove(f.Name()) // nobody else needs to see it; the fd keeps it
		e.file = f
	}
	var h [echoHeader]byte
	h[0] = byte(stream)
	binary.LittleEndian.PutUint32(h[1:], uint32(len(data)))
	if _, err := e.file.WriteAt(h[:], e.fileW); err != nil {
		return fmt.Errorf("echo spill file: %w", err)
	}
	if _, err := e.file.WriteAt(data, e.fileW+echoHeader); err != nil {
		return fmt.Errorf("echo spill file: %w", err)
	}
	e.fileW += echoHeader + int64(len(data))
	return nil
}

// close lets the writer finish what is queued and waits for it.
func (e *echo) close() {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		select {
		case e.wake <- struct{}{}:
		default:
		}
	})
	<-e.done
}

// loop writes queued chunks in order until close and an empty queue.
func (e *echo) loop() {
	defer close(e.done)
	if e.guard != nil {
		defer e.guard()
	}
	var buf []byte // reused for chunks read back from the spill file
	for {
		e.mu.Lock()
		var c echoChunk
		var fromFile int64 // bytes of the file that c used
		switch {
		case len(e.mem) > 0:
			c = e.mem[0]
			e.mem[0] = echoChunk{}
			e.mem = e.mem[1:]
			e.memBytes -= len(c.data)
		case e.fileW > e.fileR:
			var err error
			c, buf, err = e.readSpilled(buf)
			if err != nil {
				e.dead = [2]bool{true, true}
				e.fileR, e.fileW = 0, 0
				e.mu.Unlock()
				continue
			}
			fromFile = echoHeader + int64(len(c.data))
		case e.closed:
			if e.file != nil {
				e.file.Close()
			}
			e.mu.Unlock()
			return
		default:
			e.mu.Unlock()
			<-e.wake
			continue
		}
		dead := e.dead[c.stream]
		e.mu.Unlock()

		var err error
		if !dead {
			_, err = e.w[c.stream].Write(c.data)
		}

		e.mu.Lock()
		if err != nil {
			e.dead[c.stream] = true
		}
		if fromFile > 0 {
			e.fileR += fromFile
			if e.fileR == e.fileW { // drained: start the file over
				e.fileR, e.fileW = 0, 0
				e.file.Truncate(0)
			}
		}
		e.mu.Unlock()
	}
}

// readSpilled reads the chunk at fileR into buf. Called with mu held; the
// bytes it reads were written before and are not touched again until
// fileR moves past them.
func (e *echo) readSpilled(buf []byte) (echoChunk, []byte, error) {
	var h [echoHeader]byte
	if _, err := e.file.ReadAt(h[:], e.fileR); err != nil {
		return echoChunk{}, buf, err
	}
	n := int(binary.LittleEndian.Uint32(h[1:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := e.file.ReadAt(buf, e.fileR+echoHeader); err != nil {
		return echoChunk{}, buf, err
	}
	return echoChunk{stream: int(h[0]), data: buf}, buf, nil
}
