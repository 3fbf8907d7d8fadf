package api_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/remote"
	"github.com/jobrun/jobrun/stream/streamtest"
)

// TestDamagedDatabaseBreaksTransfers: when reading the log fails after the
// answer has begun (a damaged page in a real database file), no transport
// ends as if the log were complete: the raw log and the event stream are
// cut without their end (a broken chunked transfer), the WebSocket closes
// with 1011, range reads and long polls answer 500 before sending anything,
// and the Go client reports each failure.
func TestDamagedDatabaseBreaksTransfers(t *testing.T) {
	ctx := streamtest.Ctx(t)
	path := filepath.Join(t.TempDir(), "jobrun.db")
	d := streamtest.DamagedDB(t, path)
	db := streamtest.OpenDBAt(t, path)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	logs := &streamtest.LogBuffer{}
	srv := streamtest.NewServer(db, hub)
	srv.Logger = slog.New(slog.NewTextHandler(logs, nil))
	base := streamtest.Serve(t, srv)

	// The raw log: 200, the bytes before the damaged chunk, then a broken
	// transfer, as curl and Go's client see it.
	resp, err := http.Get(base + "/api/jobs/1/log")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("GET /log: %d, %d bytes, read error %v; want 200 and a broken transfer (unexpected EOF)", resp.StatusCode, len(body), err)
	}
	if len(body) == 0 || len(body) >= len(d.Log) || !bytes.HasPrefix(d.Log, body) {
		t.Errorf("GET /log gave %d of %d bytes; want a proper prefix of the log", len(body), len(d.Log))
	}
	if !logs.HasLine("response aborted", "/api/jobs/1/log", "damaged") {
		t.Errorf("the abort was not logged with its cause:\n%s", logs)
	}

	cl := &remote.Client{BaseURL: base, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	rc, err := cl.Log(ctx, "1", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "the transfer broke off") {
		t.Errorf("Client.Log read: %v; want a broken transfer, said so", err)
	}

	// The event stream: the same.
	sse := openSSE(t, ctx, base+"/api/jobs/1/events")
	es, err := readSSE(t, sse.Body, nil)
	if sse.StatusCode != http.StatusOK || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("event stream: %d, %d events, read error %v; want 200 and a broken transfer", sse.StatusCode, len(es), err)
	}
	if evs := sseEvents(t, es); len(evs) == 0 || evs[len(evs)-1].Seq >= d.Seq {
		t.Errorf("event stream: %d events; want those before the damaged chunk", len(evs))
	}

	// The WebSocket: 1011 once the history read fails.
	evs, code := readWS(t, ctx, base, "")
	if code != websocket.StatusInternalError || len(evs) == 0 || evs[len(evs)-1].Seq >= d.Seq {
		t.Errorf("stream: %d events, close %v; want those before the damaged chunk, then 1011", len(evs), code)
	}
	// Follow retries 1011, and gives up when it recurs at the same seq.
	var got jobs.Seq
	err = cl.Follow(ctx, "1", 0, func(evs []jobs.Event) error {
		got = evs[len(evs)-1].Seq
		return nil
	})
	var ce *stream.CloseError
	if !errors.As(err, &ce) || ce.Code != int(websocket.StatusInternalError) || !strings.Contains(err.Error(), fmt.Sprintf("3 times in a row after seq %d", got)) {
		t.Errorf("Follow: %v (after seq %d); want the 1011 after 3 tries", err, got)
	}

	// Range reads and long polls read before they answer: a plain 500.
	for _, q := range []string{
		fmt.Sprintf("after=%d&limit=10", d.Seq-5),
		fmt.Sprintf("before=%d&limit=10", d.Seq+5),
		fmt.Sprintf("line=%d&limit=10", d.Seq),
		fmt.Sprintf("after=%d&limit=10&wait=1s", d.Seq-5),
	} {
		resp, body := request(t, ctx, base+"/api/jobs/1/events?"+q)
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"internal error"`) {
			t.Errorf("events?%s: %d %.100s; want 500 with the JSON error", q, resp.StatusCode, body)
		}
	}
	// What lies before the damaged chunk still reads.
	if status, _, evs := getEvents(t, ctx, base, "/api/jobs/1/events?after=0&limit=100"); status != http.StatusOK || len(evs) != 100 {
		t.Errorf("events?after=0: %d, %d events; want the first 100", status, len(evs))
	}
}
