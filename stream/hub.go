package stream

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// History is the source of truth the Hub replays from. Each store backend
// satisfies it (*sqlite.DB).
type History interface {
	// Job returns one job; an unknown job is an error wrapping
	// jobs.ErrNotFound.
	Job(ctx context.Context, ref jobs.Ref) (jobs.Job, error)
	// Events returns at most limit events of job id with seq > after, in
	// seq order.
	Events(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error)
}

// Changes is how a Hub hears of commits made elsewhere: by other
// processes sharing one SQLite file, or by other replicas on one
// PostgreSQL database. Each store backend offers one (sqlite.DB.Changes
// polls PRAGMA data_version; postgres.DB.Changes LISTENs for the
// notification every commit sends); cmd/jobrun plugs it in.
type Changes interface {
	// NextChanges returns the jobs committed elsewhere since its previous
	// call, each with its last committed seq, waiting up to about poll
	// for news (it may return with none). all is true when any job may
	// have changed (a backend that cannot tell which, a remove).
	NextChanges(ctx context.Context, poll time.Duration) (changed map[jobs.ID]jobs.Seq, all bool, err error)
}

// HubOptions configures a Hub. The zero value of every field means the
// documented default.
type HubOptions struct {
	// RingBytes bounds the recent published events kept in memory per job
	// (estimated by jobs.Event.Size). Default 4 MiB.
	RingBytes int
	// RingBatches bounds the number of batches kept per job. Default 4096.
	RingBatches int
	// PageEvents is the most events read from History at once. Default 8192.
	PageEvents int
	// PageBytes is the target size of one message (a batch); History reads
	// are sized from it too. Default 2 MiB.
	PageBytes int
	// CacheBytes bounds the History pages a job keeps after they were
	// read, for the next subscriber behind at the same point (pages in use
	// by a subscriber live until it is done with them). Default 8 MiB.
	CacheBytes int
	// MaxReads bounds the History reads in flight at once, for all jobs:
	// subscribers behind at the same point share one read, and the others
	// wait their turn. Default 4.
	MaxReads int
	// Changes tells the Hub of commits made elsewhere, asked while
	// subscribers wait (and while a JobWatch is open). nil: only Poke
	// wakes subscribers of jobs that this process does not publish.
	Changes Changes
	// PollInterval is how long one Changes.NextChanges call waits (how
	// often a backend that polls polls). Default 100 ms; negative
	// disables Changes.
	PollInterval time.Duration
	// Logger receives errors of Changes. nil discards them.
	Logger *slog.Logger
}

func (o HubOptions) withDefaults() HubOptions {
	if o.RingBytes <= 0 {
		o.RingBytes = 4 << 20
	}
	if o.RingBatches <= 0 {
		o.RingBatches = 4096
	}
	if o.PageEvents <= 0 {
		o.PageEvents = 8192
	}
	if o.PageBytes <= 0 {
		o.PageBytes = 2 << 20
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 8 << 20
	}
	if o.MaxReads <= 0 {
		o.MaxReads = 4
	}
	if o.PollInterval == 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ErrClosed is returned by Subscription.Next after the Subscription or its
// Hub was closed.
var ErrClosed = errors.New("stream: closed")

// Hub fans a job's events out to any number of subscribers, each resuming
// exactly after the seq it names. See the package documentation for its
// invariants.
//
// Locking: h.mu guards the topics map only; each topic has its own mutex,
// taken after h.mu, so that the viewers of one job never wait on those of
// another. h.wmu (the JobWatches) is taken after a topic's.
type Hub struct {
	history History
	opts    HubOptions

	mu     sync.Mutex // guards topics
	topics map[jobs.ID]*topic

	reads    chan struct{} // a token per History read in flight (MaxReads)
	waiting  atomic.Int64  // subscribers waiting, and JobWatches
	pollWake chan struct{} // cap 1: wakes the idle watcher of Changes
	done     chan struct{} // closed by Close
	closed   atomic.Bool   // set with goMu held
	goMu     sync.Mutex    // guards adding goroutines to wg once closed
	stop     context.CancelFunc
	ctx      context.Context
	closing  sync.Once
	wg       sync.WaitGroup

	wmu     sync.Mutex // guards watches and their marks
	watches map[*JobWatch]struct{}
	nwatch  atomic.Int32 // len(watches), read without wmu by Publish
}

var _ jobs.Publisher = (*Hub)(nil)

// topic is the Hub's state for one job.
type topic struct {
	h  *Hub
	id jobs.ID

	mu        sync.Mutex // guards everything below
	ring      []*Batch   // recent published batches, contiguous, oldest first
	ringBytes int
	local     bool     // this process publishes the job
	lastPub   jobs.Seq // last published seq (when local)
	exited    bool     // the exit event was published
	notify    chan struct{}
	subs      map[*Subscription]struct{}
	progress  chan struct{} // made by WaitDelivered, closed on any ack or close
	pages     pageSet       // History pages, shared by the subscribers behind
}

// NewHub returns a Hub reading from h. With o.Changes (and o.PollInterval
// not negative), the Hub runs a goroutine that asks it for other
// processes' commits; Close stops it.
func NewHub(h History, o HubOptions) *Hub {
	ctx, cancel := context.WithCancel(context.Background())
	o = o.withDefaults()
	hub := &Hub{
		history:  h,
		opts:     o,
		topics:   make(map[jobs.ID]*topic),
		reads:    make(chan struct{}, o.MaxReads),
		pollWake: make(chan struct{}, 1),
		done:     make(chan struct{}),
		ctx:      ctx,
		stop:     cancel,
	}
	if o.Changes != nil && hub.opts.PollInterval > 0 {
		hub.wg.Add(1)
		go hub.watchChanges(o.Changes)
	}
	return hub
}

// PageBytes is the target size of one message (HubOptions.PageBytes, or
// its default), for consumers that cut batches of their own.
func (h *Hub) PageBytes() int { return h.opts.PageBytes }

// Close wakes every waiting subscriber (their Next returns ErrClosed),
// stops the watcher of Changes and the History reads and waits for them. Publish after
// Close does nothing.
func (h *Hub) Close() error {
	h.closing.Do(func() {
		// Under goMu, so that no goroutine is added to wg once Wait runs.
		h.goMu.Lock()
		h.closed.Store(true)
		close(h.done)
		h.goMu.Unlock()
		h.stop()
	})
	h.wg.Wait()
	return nil
}

// goOwned runs fn in a goroutine that Close waits for; false (fn not run)
// once the Hub is closed.
func (h *Hub) goOwned(fn func()) bool {
	h.goMu.Lock()
	defer h.goMu.Unlock()
	if h.isClosed() {
		return false
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		fn()
	}()
	return true
}

// Done is closed when the Hub is closed.
func (h *Hub) Done() <-chan struct{} { return h.done }

func (h *Hub) isClosed() bool { return h.closed.Load() }

// lockTopic returns the topic of id, making it if needed, with its mutex
// held: taken before h.mu is released, so that the topic cannot be dropped
// in between.
func (h *Hub) lockTopic(id jobs.ID) *topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[id]
	if t == nil {
		t = &topic{h: h, id: id, notify: make(chan struct{}), subs: make(map[*Subscription]struct{})}
		h.topics[id] = t
	}
	t.mu.Lock()
	return t
}

// Publish hands committed events of job id to the subscribers. It never
// blocks on them: it appends to the job's ring, evicting the oldest
// batches beyond the bounds, and wakes the waiters. It takes ownership of
// events.
func (h *Hub) Publish(id jobs.ID, events []jobs.Event) {
	if len(events) == 0 || h.isClosed() {
		return
	}
	t := h.lockTopic(id)
	first := !t.local
	t.local = true
	// Drop what was already published (a retried publish), so that the ring
	// stays contiguous.
	for len(events) > 0 && t.lastPub > 0 && events[0].Seq <= t.lastPub {
		events = events[1:]
	}
	if len(events) == 0 {
		t.mu.Unlock()
		return
	}
	t.appendRingLocked(events)
	last := events[len(events)-1]
	t.lastPub = last.Seq
	if last.Type == jobs.TypeExit {
		t.exited = true
	}
	close(t.notify)
	t.notify = make(chan struct{})
	idle := t.idleLocked()
	t.mu.Unlock()
	if idle {
		h.dropIfIdle(t)
	}
	if h.nwatch.Load() > 0 && dashboardNews(first, events) {
		h.markJob(id)
	}
}

// appendRingLocked adds published events to the ring. t.mu is held.
func (t *topic) appendRingLocked(events []jobs.Event) {
	o := t.h.opts
	switch {
	case len(t.ring) > 0 && events[0].Seq != t.lastPub+1:
		// A gap: the ring restarts after it, and subscribers before it
		// read the gap from History, which holds everything.
		o.Logger.Warn("stream: publish skips seq; restarting the ring",
			"job", t.id, "first", events[0].Seq, "last_published", t.lastPub)
		t.ring, t.ringBytes = nil, 0
	case len(t.subs) == 0:
		// Nobody to share batches with: keep no ring (and pin no read
		// buffers). A later subscriber reads History up to lastPub.
		t.ring, t.ringBytes = nil, 0
		return
	case !jobs.Contiguous(events):
		o.Logger.Warn("stream: non-contiguous publish; serving it from History",
			"job", t.id, "first", events[0].Seq)
		t.ring, t.ringBytes = nil, 0
		return
	}
	for _, run := range split(events, o.PageEvents, o.PageBytes) {
		b := newBatch(run)
		t.ring = append(t.ring, b)
		t.ringBytes += b.size()
	}
	for len(t.ring) > 1 && (t.ringBytes > o.RingBytes || len(t.ring) > o.RingBatches) {
		t.ringBytes -= t.ring[0].size()
		t.ring[0] = nil
		t.ring = t.ring[1:]
	}
}

// idleLocked reports whether nobody needs the topic any more: no
// subscriber, and either finished or not published here. t.mu is held.
func (t *topic) idleLocked() bool {
	return len(t.subs) == 0 && (t.exited || !t.local)
}

// dropIfIdle forgets t if it is still idle.
func (h *Hub) dropIfIdle(t *topic) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idleLocked() && h.topics[t.id] == t {
		delete(h.topics, t.id)
	}
}

// Poke wakes every subscriber waiting on a job that this process does not
// publish, so that it re-reads History: call it when another process may
// have written. Jobs published here are not woken: their subscribers
// already know the last seq.
//
// Poke also tells every JobWatch that any job may have changed.
func (h *Hub) Poke() {
	h.mu.Lock()
	ts := make([]*topic, 0, len(h.topics))
	for _, t := range h.topics {
		ts = append(ts, t)
	}
	h.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		if !t.local {
			close(t.notify)
			t.notify = make(chan struct{})
		}
		t.mu.Unlock()
	}
	h.markAll()
}

// Subscribe returns a subscription to job id that delivers every event
// with seq > after exactly once. It does not check that the job exists.
func (h *Hub) Subscribe(id jobs.ID, after jobs.Seq) *Subscription {
	if after < 0 {
		after = 0
	}
	t := h.lockTopic(id)
	defer t.mu.Unlock()
	s := &Subscription{hub: h, t: t, cursor: after, acked: after, closed: make(chan struct{})}
	t.subs[s] = struct{}{}
	return s
}

// WaitDelivered returns when every open subscription of job id has
// delivered seq (its consumer asked for the next batch after the one
// holding seq) or was closed, or with ctx's error.
func (h *Hub) WaitDelivered(ctx context.Context, id jobs.ID, seq jobs.Seq) error {
	h.mu.Lock()
	t := h.topics[id]
	h.mu.Unlock()
	if t == nil {
		return nil
	}
	for {
		t.mu.Lock()
		pending := false
		for s := range t.subs {
			if s.acked < seq {
				pending = true
				break
			}
		}
		if !pending {
			t.mu.Unlock()
			return nil
		}
		if t.progress == nil {
			t.progress = make(chan struct{})
		}
		ch := t.progress
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-h.done:
			return ErrClosed
		}
	}
}

// progressLocked wakes WaitDelivered callers of t. t.mu is held.
func (t *topic) progressLocked() {
	if t.progress != nil {
		close(t.progress)
		t.progress = nil
	}
}

// watchChanges asks c for other processes' commits while subscribers
// wait (or a JobWatch is open), and wakes them. Owned by the Hub: it ends
// when the Hub is closed.
func (h *Hub) watchChanges(c Changes) {
	defer h.wg.Done()
	for {
		if h.waiting.Load() == 0 {
			select {
			case <-h.pollWake:
			case <-h.done:
				return
			}
		}
		changed, all, err := c.NextChanges(h.ctx, h.opts.PollInterval)
		if err != nil {
			if h.ctx.Err() != nil {
				return
			}
			h.opts.Logger.Warn("stream: read other processes' changes", "err", err)
			t := time.NewTimer(h.opts.PollInterval)
			select {
			case <-t.C:
			case <-h.done:
				t.Stop()
				return
			}
			continue
		}
		if all {
			h.Poke()
		}
		for id, seq := range changed {
			h.advance(id, seq)
		}
	}
}

// advance wakes the subscribers of job id, committed elsewhere up to seq.
// A job published here ignores it unless seq is beyond what it published:
// then another process has taken the job over (an agent that reconnected
// to another replica), the ring no longer follows it, and its subscribers
// read the rest from History.
func (h *Hub) advance(id jobs.ID, seq jobs.Seq) {
	h.mu.Lock()
	t := h.topics[id]
	if t != nil {
		t.mu.Lock()
	}
	h.mu.Unlock()
	news := true
	switch {
	case t == nil:
	case !t.local:
		close(t.notify)
		t.notify = make(chan struct{})
	case seq > t.lastPub:
		t.ring, t.ringBytes = nil, 0
		t.lastPub = seq
		close(t.notify)
		t.notify = make(chan struct{})
	default:
		news = false // its own commit, already published
	}
	if t != nil {
		t.mu.Unlock()
	}
	if news {
		h.markJob(id)
	}
}

// addWaiter counts a waiting subscriber (or a JobWatch) and wakes the
// watcher of Changes.
func (h *Hub) addWaiter() {
	h.waiting.Add(1)
	select {
	case h.pollWake <- struct{}{}:
	default:
	}
}
