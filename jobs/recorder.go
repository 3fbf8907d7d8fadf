package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jobrun/jobrun/jobs/progress"
)

// Bounds of the recorder. A commit carries at most maxBatchEvents events or
// about maxBatchBytes (Event.Size); while one is in flight the next batch
// accumulates, up to maxPendingEvents or maxPendingBytes, beyond which the
// readers wait: backpressure from the disk, never from a viewer.
const (
	maxBatchEvents   = 8192
	maxBatchBytes    = 4 << 20
	maxPendingEvents = 16384
	maxPendingBytes  = 4 << 20
)

// Stream indexes used inside the runner.
const (
	stdoutIndex = 0
	stderrIndex = 1
)

// chunk is what a reader hands the recorder: the bytes of one read (which
// nobody modifies afterwards), the end of its stream, or, last of all, the
// exit event.
type chunk struct {
	stream int
	data   []byte
	time   time.Time
	eof    bool
	exit   *Event
}

// recorder turns the chunks of both streams into events: it splits lines,
// assigns seq, visual line numbers and times, and commits them in groups:
// while one AppendEvents is in flight the next batch accumulates, and a
// commit starts as soon as the previous one ends, so batches grow with the
// load and a lone line is stored (then published) at once. It is the only
// goroutine that touches its state; a second goroutine (commit) does the
// store calls.
type recorder struct {
	store      Store
	pub        Publisher
	log        *slog.Logger
	say        func(format string, args ...any) // a message for the user
	id         ID
	ctx        context.Context // for store calls; never canceled by the caller
	flushAfter time.Duration
	storeRetry time.Duration

	in   chan chunk    // from the readers, closed after the exit chunk
	done chan struct{} // closed when run returns

	// Owned by run.
	streams   [2]recStream
	scratch   []piece // reused for the pieces of one chunk
	seq       Seq     // last assigned
	line      int64   // last visual line number assigned
	last      time.Time
	pending   batchQueue
	committed Seq          // last seq known to be stored
	stored    atomic.Int64 // committed, for other goroutines
	exit      *Event
	exitSeq   Seq // seq of the exit event once assigned
	failed    bool
	storeErr  error // result: why storing stopped, if it did

	// Progress: one coalescer per job, whatever the stream, and its timer,
	// armed while it holds a value back; or every value (noCoalesce).
	coal       progress.Coalescer
	noCoalesce bool
	ptimer     *time.Timer
	parmed     bool
}

// recStream is the recorder's state for one output stream.
type recStream struct {
	name  Stream
	sp    splitter
	open  bool  // the last piece left its line open (eol "" or "\r")
	line  int64 // that line's number
	timer *time.Timer
	armed bool
	since time.Time // when the pending bytes started waiting
	last  time.Time // when the stream was last read
	eof   bool

	// Progress of this stream; see progressLine.
	parser    *progress.Parser // nil: progress off
	seg       []byte           // the open segment's bytes already emitted as fragments
	segSkip   bool             // the open segment outgrew maxProgressSegment
	directive bool             // the open segment is a directive: mark its other pieces too
}

func newRecorder(store Store, pub Publisher, log *slog.Logger, say func(string, ...any), id ID,
	ctx context.Context, flushAfter, storeRetry time.Duration) *recorder {
	r := &recorder{
		store: store, pub: pub, log: log, say: say, id: id,
		ctx: ctx, flushAfter: flushAfter, storeRetry: storeRetry,
		in:   make(chan chunk, 16),
		done: make(chan struct{}),
	}
	for i, name := range [2]Stream{StreamStdout, StreamStderr} {
		r.streams[i] = recStream{name: name, sp: newSplitter(), timer: time.NewTimer(time.Hour)}
		r.streams[i].timer.Stop()
	}
	r.ptimer = time.NewTimer(time.Hour)
	r.ptimer.Stop()
	return r
}

// commitResult is the commit goroutine's answer to one batch. retrying
// reports that the first attempt failed and it is retrying; a final answer
// follows.
type commitResult struct {
	batch    []Event
	err      error
	retrying bool
}

type commitReq struct {
	ctx   context.Context
	batch []Event
}

// run is the recorder goroutine. It returns when the exit event has been
// stored (or storing has failed), after the commit goroutine has ended.
func (r *recorder) run() {
	defer close(r.done)
	reqs := make(chan commitReq)
	results := make(chan commitResult, 1)
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		r.commit(reqs, results)
	}()
	defer func() {
		close(reqs)
		<-commitDone
		for i := range r.streams {
			r.streams[i].timer.Stop()
		}
		r.ptimer.Stop()
	}()

	in := r.in
	inflight, retrying := false, false
	cancel := func() {} // cancels the commit in flight
	defer func() { cancel() }()
	for {
		if !inflight && r.pending.n > 0 {
			cancel()
			req := commitReq{batch: r.pending.take()}
			req.ctx, cancel = r.commitContext()
			reqs <- req
			inflight = true
		}
		if r.exit != nil && !inflight && r.pending.n == 0 {
			break
		}
		full := r.pending.full()
		if full && retrying {
			cancel() // give up on the store rather than block the readers on it
		}
		recv := in
		if full {
			recv = nil
		}
		select {
		case c, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			r.handle(c)
		case <-r.streams[0].timer.C:
			in = r.timeout(0, in)
		case <-r.streams[1].timer.C:
			in = r.timeout(1, in)
		case <-r.ptimer.C:
			r.parmed = false
			r.progressDue()
		case res := <-results:
			if res.retrying {
				retrying = true
				continue
			}
			inflight, retrying = false, false
			if res.err != nil {
				r.fail(res.err)
				continue
			}
			r.committed = res.batch[len(res.batch)-1].Seq
			r.stored.Store(int64(r.committed))
		}
	}
	if r.failed && r.exit != nil && r.committed < r.exitSeq {
		r.storeExitOnce()
	}
}

// commitContext is the context of one commit: the recorder cancels it to
// give up retrying.
func (r *recorder) commitContext() (context.Context, context.CancelFunc) {
	return context.WithCancel(r.ctx)
}

// handle processes one chunk from a reader.
func (r *recorder) handle(c chunk) {
	if c.exit != nil {
		r.finish(c.exit)
		return
	}
	st := &r.streams[c.stream]
	st.last = c.time
	if r.failed {
		return
	}
	var pieces []piece
	if c.eof {
		st.eof = true
		pieces = st.sp.close(r.scratch[:0])
	} else {
		was := st.sp.pending()
		pieces = st.sp.write(c.data, r.scratch[:0])
		if st.sp.pending() && (!was || len(pieces) > 0) {
			st.since = c.time
			r.arm(st, c.time)
		}
	}
	if !st.sp.pending() && st.armed {
		st.timer.Stop()
		st.armed = false
	}
	r.add(c.stream, pieces, c.time)
	r.scratch = pieces[:0]
}

// arm starts the stream's flush timer for bytes pending since t.
func (r *recorder) arm(st *recStream, t time.Time) {
	st.timer.Reset(max(0, time.Until(t.Add(r.flushAfter))))
	st.armed = true
}

// timeout handles a stream's flush timer. Chunks already waiting in the
// channel were read before the timer fired, so they go first: they may
// finish the line. It returns the (possibly now nil) input channel.
func (r *recorder) timeout(i int, in chan chunk) chan chunk {
	st := &r.streams[i]
	st.armed = false
	if r.pending.full() {
		// Backlogged: the store is behind, and the chunks queued may
		// continue the fragment. Take nothing more now (the readers wait:
		// the queue stays bounded) and look again later.
		r.arm(st, time.Now())
		return in
	}
	for n := len(in); n > 0 && !r.pending.full(); n-- {
		c, ok := <-in
		if !ok {
			in = nil
			break
		}
		r.handle(c)
	}
	if st.armed || !st.sp.pending() || r.failed {
		return in
	}
	r.add(i, st.sp.flush(nil), st.last)
	if st.sp.pending() { // an incomplete UTF-8 sequence held back once
		r.arm(st, time.Now())
	}
	return in
}

// add turns pieces of stream i into line events at the end of pending.
func (r *recorder) add(i int, pieces []piece, t time.Time) {
	if len(pieces) == 0 {
		return
	}
	if t.Before(r.last) {
		t = r.last // keep times in seq order
	}
	r.last = t
	st := &r.streams[i]
	for _, pc := range pieces {
		if !st.open {
			r.line++
			st.line = r.line
		}
		st.open = pc.EOL == "" || pc.EOL == "\r"
		var pr progress.Report
		found := false
		if st.parser != nil {
			if line, ok := st.progressLine(pc); ok {
				pr, found = st.parser.Parse(line)
			}
		}
		directive := st.directive || found && pr.Directive()
		st.directive = directive && pc.EOL == ""
		r.seq++
		r.pending.push(Event{
			Seq: r.seq, Time: t, Type: TypeLine, Stream: st.name,
			Line: st.line, Data: pc.Data, EOL: pc.EOL, Directive: directive,
		})
		if found {
			r.offerProgress(pr, t)
		}
	}
}

// finish flushes both streams and queues the exit event.
func (r *recorder) finish(exit *Event) {
	for i := range r.streams {
		st := &r.streams[i]
		if !r.failed {
			r.add(i, st.sp.close(nil), st.last)
		}
		st.timer.Stop()
		st.armed = false
	}
	r.ptimer.Stop()
	r.parmed = false
	if p, ok := r.coal.Flush(); ok && !r.failed {
		r.pushProgress(p, r.last) // the last value is never lost
	}
	e := *exit
	if e.Time.Before(r.last) {
		e.Time = r.last
	}
	if r.failed {
		e.Seq = r.committed + 1
	} else {
		r.seq++
		e.Seq = r.seq
		r.pending.push(e)
	}
	r.exit, r.exitSeq = &e, e.Seq
}

// fail stops storing for the rest of the job: it reports err once and
// drops what was pending. Reading and echoing go on.
func (r *recorder) fail(err error) {
	r.failed = true
	r.storeErr = err
	r.pending.reset()
	for i := range r.streams {
		r.streams[i].timer.Stop()
		r.streams[i].armed = false
	}
	r.ptimer.Stop()
	r.parmed = false
	if r.exit != nil {
		e := *r.exit
		e.Seq = r.committed + 1
		r.exit, r.exitSeq = &e, e.Seq
	}
	r.log.Warn("storing output failed", "job", r.id, "err", err, "stored_seq", r.committed)
	r.say("job %d: storing output failed: %v; the command keeps running and its output still passes through, but the stored log stops at seq %d",
		r.id, err, r.committed)
}

// storeExitOnce tries once to append the exit event after storing failed,
// so that the job at least ends with its status, marked incomplete: the
// stored log ends before it.
func (r *recorder) storeExitOnce() {
	r.exit.Incomplete = true
	r.exit.IncompleteReason = incompleteReason(r.storeErr, r.committed)
	ev := []Event{*r.exit}
	if err := r.store.AppendEvents(r.ctx, r.id, ev); err != nil {
		r.log.Warn("storing the exit event failed", "job", r.id, "err", err)
		r.say("job %d: storing the exit status failed too: %v", r.id, err)
		return
	}
	r.committed = r.exit.Seq
	r.stored.Store(int64(r.committed))
	if r.pub != nil {
		r.pub.Publish(r.id, ev)
	}
}

// incompleteReason says in words why the stored log of a job ends after
// seq stored: the store's error.
func incompleteReason(err error, stored Seq) string {
	s := fmt.Sprintf("storing the output failed after seq %d: %v", stored, err)
	if len(s) > MaxIncompleteReason {
		s = s[:MaxIncompleteReason]
	}
	return strings.ToValidUTF8(s, "") // also drops a character cut in two
}

// commit is the commit goroutine: it appends each batch, retrying a failing
// store for up to storeRetry, and publishes what was committed.
func (r *recorder) commit(reqs <-chan commitReq, results chan<- commitResult) {
	for req := range reqs {
		err := r.appendRetry(req.ctx, req.batch, func() { results <- commitResult{retrying: true} })
		if err == nil && r.pub != nil {
			r.pub.Publish(r.id, req.batch)
		}
		results <- commitResult{batch: req.batch, err: err}
	}
}

// appendRetry appends batch, retrying with backoff while the error may be
// passing (a locked database, a full disk being cleaned up) for up to
// storeRetry, or until ctx is canceled. It calls retrying once, after the
// first failure.
func (r *recorder) appendRetry(ctx context.Context, batch []Event, retrying func()) error {
	err := r.store.AppendEvents(ctx, r.id, batch)
	if err == nil || permanent(err) {
		return err
	}
	retrying()
	deadline := time.Now().Add(r.storeRetry)
	backoff := 20 * time.Millisecond
	for {
		r.log.Debug("storing output failed, retrying", "job", r.id, "first_seq", batch[0].Seq, "err", err)
		wait := min(backoff, time.Until(deadline))
		if wait <= 0 {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		prev := err
		if err = r.store.AppendEvents(ctx, r.id, batch); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return prev // canceled by the recorder: report the store's error
		}
		if permanent(err) {
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// permanent reports whether retrying err cannot help.
func permanent(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound)
}
