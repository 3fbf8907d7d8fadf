package stream_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// drain reads sub until io.EOF, checking seq after+1.. exactly once, and
// returns the last seq and the batches.
func drain(ctx context.Context, sub *stream.Subscription, after jobs.Seq) (jobs.Seq, []*stream.Batch, error) {
	c := streamtest.SeqChecker{Last: after}
	var got []*stream.Batch
	for {
		b, err := sub.Next(ctx)
		if errors.Is(err, io.EOF) {
			return c.Last, got, nil
		}
		if err != nil {
			return c.Last, got, err
		}
		if b.First != c.Last+1 || b.Last != b.Events[len(b.Events)-1].Seq {
			return c.Last, got, errors.New("batch bounds do not match its events")
		}
		if err := c.Add(b.Events); err != nil {
			return c.Last, got, err
		}
		got = append(got, b)
	}
}

// TestSwitchOver publishes while many subscribers replay from different
// cursors: each gets after+1..N exactly once, across the switch between
// History and the ring (and back, as the small ring overflows).
func TestSwitchOver(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{RingBytes: 64 << 10, PageEvents: 700})
	j := streamtest.NewJob(t, db)

	// Stored before this Hub published anything: only History has them.
	const stored, total = 3000, 15000
	for s := jobs.Seq(1); s <= stored; s += 500 {
		streamtest.Commit(t, db, nil, j.ID, streamtest.Lines(s, 500))
	}

	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		next := jobs.Seq(stored + 1)
		for next <= total {
			n := min(1+rng.IntN(300), int(total-next+1))
			streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(next, n))
			next += jobs.Seq(n)
			if next > stored+2000 {
				select {
				case <-started:
				default:
					close(started)
				}
			}
		}
		streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(total + 1)})
	})

	afters := []jobs.Seq{0, 0, 1, 100, 2999, 3000, 3001, 4000, 0, 10, 2500, 500}
	errs := make(chan error, 2*len(afters))
	for i, after := range afters {
		// Half start at once, half when live publishing is under way.
		late := i%2 == 1
		wg.Go(func() {
			if late {
				<-started
			}
			sub := hub.Subscribe(j.ID, after)
			defer sub.Close()
			last, _, err := drain(ctx, sub, after)
			if err == nil && last != total+1 {
				err = errors.New("stream ended early")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRingOverrun: a subscriber that does not read while far more than the
// ring holds is published falls back to History and still gets
// everything; once caught up it gets live batches from the ring, the same
// Batch as every other subscriber.
func TestRingOverrun(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{RingBytes: 4 << 10, RingBatches: 2})
	j := streamtest.NewJob(t, db)

	slow := hub.Subscribe(j.ID, 0)
	defer slow.Close()
	for s := jobs.Seq(1); s <= 2000; s += 10 {
		streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(s, 10))
	}
	c := streamtest.SeqChecker{}
	fromHistory := false
	for c.Last < 2000 {
		b, err := slow.Next(ctx)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if err := c.Add(b.Events); err != nil {
			t.Fatal(err)
		}
		fromHistory = fromHistory || len(b.Events) > 10
	}
	if !fromHistory {
		t.Error("no batch larger than a published one: the overrun subscriber did not read History")
	}

	other := hub.Subscribe(j.ID, 2000)
	defer other.Close()
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(2001, 5))
	b1, err := slow.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := other.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b1 != b2 {
		t.Error("live batch is not shared between subscribers")
	}
	if string(b1.JSON()) != string(jobs.AppendJSONArray(nil, b1.Events)) {
		t.Errorf("JSON() = %s, want the events' array", b1.JSON())
	}
	if b1.First != 2001 || b1.Last != 2005 {
		t.Errorf("live batch %d..%d, want 2001..2005", b1.First, b1.Last)
	}
}

// TestPublishGap: events committed but never published (or published out
// of order) are still delivered, from History, exactly once.
func TestPublishGap(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	j := streamtest.NewJob(t, db)
	evs := append(streamtest.Lines(1, 40), streamtest.ExitEvent(41))
	if err := db.AppendEvents(ctx, j.ID, evs); err != nil {
		t.Fatal(err)
	}
	hub.Publish(j.ID, evs[:10])
	hub.Publish(j.ID, evs[15:20])
	hub.Publish(j.ID, evs[5:12]) // a retry overlapping what was published
	hub.Publish(j.ID, evs[20:])
	sub := hub.Subscribe(j.ID, 0)
	defer sub.Close()
	if last, _, err := drain(ctx, sub, 0); err != nil || last != 41 {
		t.Errorf("drain = %d, %v; want 41, nil", last, err)
	}
}

// TestWaitDelivered: WaitDelivered returns once every subscription asked
// for the batch after the exit event, or closed.
func TestWaitDelivered(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	j := streamtest.NewJob(t, db)
	a := hub.Subscribe(j.ID, 0)
	b := hub.Subscribe(j.ID, 0)
	streamtest.Commit(t, db, hub, j.ID, append(streamtest.Lines(1, 3), streamtest.ExitEvent(4)))

	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := hub.WaitDelivered(done, j.ID, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitDelivered before delivery = %v, want context.Canceled", err)
	}
	if _, err := a.Next(ctx); err != nil {
		t.Fatal(err)
	}
	// a has the batch but has not asked for more: not yet delivered.
	if err := hub.WaitDelivered(done, j.ID, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitDelivered with a batch in flight = %v, want context.Canceled", err)
	}
	result := make(chan error, 1)
	go func() { result <- hub.WaitDelivered(ctx, j.ID, 4) }()
	if _, err := a.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("a.Next after exit = %v, want io.EOF", err)
	}
	b.Close()
	if err := <-result; err != nil {
		t.Fatalf("WaitDelivered = %v", err)
	}
	a.Close()
	if err := hub.WaitDelivered(done, j.ID, 4); err != nil {
		t.Errorf("WaitDelivered with no subscriber = %v", err)
	}
}

// TestNextClosed: Next returns ErrClosed after the subscription or the Hub
// closes, including one already waiting.
func TestNextClosed(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := stream.NewHub(db, stream.HubOptions{PollInterval: -1})
	j := streamtest.NewJob(t, db)
	a := hub.Subscribe(j.ID, 0)
	a.Close()
	if _, err := a.Next(ctx); !errors.Is(err, stream.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	b := hub.Subscribe(j.ID, 0)
	result := make(chan error, 1)
	go func() {
		_, err := b.Next(ctx)
		result <- err
	}()
	hub.Close()
	if err := <-result; !errors.Is(err, stream.ErrClosed) {
		t.Errorf("waiting Next after Hub.Close = %v, want ErrClosed", err)
	}
}

// TestPollerSeesOtherWriter: events appended by another *sqlite.DB on the
// same file (another process, as far as SQLite can tell) reach a
// subscriber through the DataVersion poller.
func TestPollerSeesOtherWriter(t *testing.T) {
	ctx := streamtest.Ctx(t)
	writer := streamtest.OpenDB(t)
	reader := streamtest.OpenDBAt(t, writer.Path())
	hub := streamtest.NewHub(t, reader, stream.HubOptions{PollInterval: 5 * time.Millisecond})
	j := streamtest.NewJob(t, writer)

	sub := hub.Subscribe(j.ID, 0)
	defer sub.Close()
	result := make(chan error, 1)
	go func() {
		last, _, err := drain(ctx, sub, 0)
		if err == nil && last != 501 {
			err = errors.New("ended early")
		}
		result <- err
	}()
	for s := jobs.Seq(1); s <= 500; s += 50 {
		streamtest.Commit(t, writer, nil, j.ID, streamtest.Lines(s, 50))
	}
	streamtest.Commit(t, writer, nil, j.ID, []jobs.Event{streamtest.ExitEvent(501)})
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}

// TestPoke: without a poller, Poke makes waiting subscribers re-read
// History.
func TestPoke(t *testing.T) {
	ctx := streamtest.Ctx(t)
	writer := streamtest.OpenDB(t)
	reader := streamtest.OpenDBAt(t, writer.Path())
	hub := streamtest.NewHub(t, reader, stream.HubOptions{PollInterval: -1})
	j := streamtest.NewJob(t, writer)
	sub := hub.Subscribe(j.ID, 0)
	defer sub.Close()
	got := make(chan *stream.Batch)
	go func() {
		for {
			b, err := sub.Next(ctx)
			if err != nil {
				close(got)
				return
			}
			got <- b
		}
	}()
	for s := jobs.Seq(1); s <= 30; s += 10 {
		streamtest.Commit(t, writer, nil, j.ID, streamtest.Lines(s, 10))
		hub.Poke()
		if b := <-got; b == nil || b.First != s || b.Last != s+9 {
			t.Fatalf("after poke got %v, want %d..%d", b, s, s+9)
		}
	}
}

// countingHistory counts History reads of a real store.
type countingHistory struct {
	*sqlite.DB
	reads atomic.Int64
}

func (c *countingHistory) Events(ctx context.Context, id jobs.ID, after jobs.Seq, limit int) ([]jobs.Event, error) {
	c.reads.Add(1)
	return c.DB.Events(ctx, id, after, limit)
}

// TestPokeSkipsLocalJobs: subscribers of a job published by this process
// are served from the ring and are not sent to History by pokes.
func TestPokeSkipsLocalJobs(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	h := &countingHistory{DB: db}
	hub := streamtest.NewHub(t, h, stream.HubOptions{PollInterval: -1})
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 10))
	sub := hub.Subscribe(j.ID, 0)
	defer sub.Close()
	got := make(chan *stream.Batch)
	go func() {
		for {
			b, err := sub.Next(ctx)
			if err != nil {
				close(got)
				return
			}
			got <- b
		}
	}()
	<-got
	// Seq 1..10 were published before anyone subscribed, so the ring did not
	// keep them and they came from History; from now on the ring serves.
	h.reads.Store(0)
	for s := jobs.Seq(11); s <= 50; s += 10 {
		for range 5 {
			hub.Poke()
		}
		streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(s, 10))
		if b := <-got; b == nil || b.First != s {
			t.Fatalf("got %v, want a batch from %d", b, s)
		}
	}
	if n := h.reads.Load(); n != 0 {
		t.Errorf("History read %d times, want 0 (everything was in the ring)", n)
	}
}

// TestHistoryPagesShared: subscribers replaying the same history at once
// share its pages: the store is read about once per page, not once per
// subscriber, and every subscriber gets every event once.
func TestHistoryPagesShared(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	j := streamtest.NewJob(t, db)
	const total = 20000
	for s := jobs.Seq(1); s <= total; s += 1000 {
		streamtest.Commit(t, db, nil, j.ID, streamtest.Lines(s, 1000))
	}
	streamtest.Commit(t, db, nil, j.ID, []jobs.Event{streamtest.ExitEvent(total + 1)})
	hist := &countingHistory{DB: db}
	hub := streamtest.NewHub(t, hist, stream.HubOptions{PageEvents: 1000, PageBytes: 64 << 10})

	const viewers = 20
	var wg sync.WaitGroup
	errs := make(chan error, viewers)
	start := make(chan struct{})
	for range viewers {
		sub := hub.Subscribe(j.ID, 0)
		t.Cleanup(sub.Close)
		wg.Go(func() {
			<-start
			last, _, err := drain(ctx, sub, 0)
			if err == nil && last != total+1 {
				err = errors.New("did not get to the exit event")
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// 20 pages of 1000 events; alone, each viewer would read them all.
	pages := int64(total / 1000)
	if n := hist.reads.Load(); n > 3*pages {
		t.Errorf("%d History reads for %d viewers of %d pages: the pages are not shared (one viewer alone reads %d)", n, viewers, pages, pages+1)
	}
}
