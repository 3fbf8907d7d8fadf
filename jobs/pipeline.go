package jobs

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"
)

// The pipeline of one run, in the order the bytes take: a reader goroutine
// per output stream (read) reads the pipe or the PTY, the stream's masker
// (mask.go) replaces secrets, and pass hands each segment to the echo
// (echo.go: the terminal, never waited for) and to the recorder
// (recorder.go: split into line events, progress found, committed in
// batches, then published). Every goroutine of the pipeline defers guard,
// so that a panic never leaves the user's terminal raw.

// read is a stream's reader goroutine: it hands every read to the echo
// and the recorder until EOF, or, once the child has exited, until the
// pipe stays quiet for DrainTimeout (grandchildren may hold it open). The
// drain deadline is renewed before every read, so time spent waiting for
// the recorder (a slow store) never cuts off output still in the pipe.
func (run *Run) read(stream int, f *os.File) {
	defer run.readers.Done()
	defer run.guard()
	drain := orDefault(run.r.DrainTimeout, DefaultDrainTimeout)
	var buf []byte
	var segs [][]byte
	m := run.masks[stream]
	for {
		select {
		case <-run.childGone:
			f.SetReadDeadline(time.Now().Add(drain))
		default:
		}
		if cap(buf)-len(buf) < minRead {
			buf = make([]byte, 0, bufSize)
		}
		n, err := f.Read(buf[len(buf):min(cap(buf), len(buf)+readSize)])
		if n > 0 {
			now := time.Now()
			data := buf[len(buf) : len(buf)+n : cap(buf)] // capacity lets the splitter extend a line in place
			buf = buf[:len(buf)+n]
			segs = m.write(data, segs[:0])
			run.pass(stream, segs, now)
		}
		if err != nil {
			// A terminal's master side reads EIO once every process has
			// closed the terminal (Linux): its end of file.
			eof := errors.Is(err, io.EOF) || run.pty != nil && errors.Is(err, syscall.EIO)
			if !eof && !errors.Is(err, os.ErrDeadlineExceeded) {
				run.rec.log.Warn("reading output failed", "job", run.job.ID, "stream", stream, "err", err)
			}
			break
		}
	}
	run.pass(stream, m.close(segs[:0]), time.Now())
	run.rec.in <- chunk{stream: stream, eof: true, time: time.Now()}
}

// setupMasks gives each stream its masker, sharing one set of secrets.
func (run *Run) setupMasks(secrets, short []string) {
	if len(short) > 0 {
		run.say("%d value(s) to mask are shorter than %d bytes and are not masked", len(short), MinMaskLen)
	}
	set := newMaskSet(secrets)
	for i := range run.masks {
		m := newMasker(set)
		m.onShort = func() {
			run.say("an ::add-mask:: value shorter than %d bytes is not masked (it is hidden on its own line only)", MinMaskLen)
		}
		m.onLong = func() {
			run.say("an ::add-mask:: line longer than %d bytes is hidden, but its value is not masked", maxAddMaskLine)
		}
		run.masks[i] = m
	}
}

// pass hands the masked segments of one read to the echo and the recorder.
func (run *Run) pass(stream int, segs [][]byte, t time.Time) {
	for _, p := range segs {
		if run.echo != nil {
			run.echo.push(stream, p[:len(p):len(p)])
		}
		run.rec.in <- chunk{stream: stream, data: p, time: t}
	}
}

// guard restores the terminal if the calling goroutine panics, then
// panics on: a crashing jobrun must not leave the user's terminal raw.
func (run *Run) guard() {
	if p := recover(); p != nil {
		run.RestoreTerminal()
		panic(p)
	}
}
