package main

import (
	"fmt"
	"sync"
	"time"
)

// degradedFor is how long serve reports itself degraded after a write to
// its database failed. Agents retry a failed delivery within seconds, so
// while the failure lasts (a full disk) it keeps being renewed; once writes
// succeed again it ends a minute after the last failure. A successful
// small write meanwhile (a heartbeat) does not end it: it says nothing of
// the large ones.
const degradedFor = time.Minute

// writeHealth remembers the latest write that the database failed
// (sqlite.Options.OnWriteError), for /healthz and jobrun_store_degraded:
// the database can answer queries while every write fails.
type writeHealth struct {
	mu       sync.Mutex
	err      error     // the latest failed write's error, if any
	failedAt time.Time // when it failed
}

// failed records a write that the database failed.
func (h *writeHealth) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.failedAt = err, time.Now()
}

// check says why serve is degraded (a write failed within degradedFor), or
// returns nil.
func (h *writeHealth) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ago := time.Since(h.failedAt)
	if h.err == nil || ago > degradedFor {
		return nil
	}
	return fmt.Errorf("a write to the database failed %s ago: %w", ago.Round(time.Second), h.err)
}
