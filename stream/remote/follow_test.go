package remote_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/api"
	"github.com/jobrun/jobrun/stream/remote"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// TestFollowReconnectsSilentStream: a stream that delivers neither events
// nor heartbeats (a server that stopped answering, a half-open connection)
// is taken for dead after DeadAfter and resumed on a new connection.
func TestFollowReconnectsSilentStream(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	j := streamtest.NewJob(t, db)
	streamtest.Commit(t, db, hub, j.ID, streamtest.Lines(1, 5))
	// The server's heartbeat is far longer than the client's patience.
	srv := &api.Server{Hub: hub, Store: streamtest.StoreAdapter{DB: db}, Heartbeat: time.Hour}
	var dials atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dials.Add(1)
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	cl := &remote.Client{BaseURL: ts.URL, MinBackoff: 10 * time.Millisecond, DeadAfter: 200 * time.Millisecond}
	var check streamtest.SeqChecker
	done := make(chan error, 1)
	go func() {
		done <- cl.Follow(ctx, "1", 0, func(evs []jobs.Event) error { return check.Add(evs) })
	}()
	// Wait for a reconnect caused by silence alone, then end the job.
	for dials.Load() < 3 {
		select {
		case err := <-done:
			t.Fatalf("Follow returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	streamtest.Commit(t, db, hub, j.ID, []jobs.Event{streamtest.ExitEvent(6)})
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if check.Last != 6 {
		t.Errorf("last seq %d, want 6 exactly once each", check.Last)
	}
}
