package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobrun/jobrun/stream"
	"github.com/jobrun/jobrun/stream/streamtest"
)

func TestProbes(t *testing.T) {
	ctx := streamtest.Ctx(t)
	db := streamtest.OpenDB(t)
	hub := streamtest.NewHub(t, db, stream.HubOptions{})
	srv := streamtest.NewServer(db, hub)
	base := streamtest.Serve(t, srv)

	t.Run("sse", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/probe/sse?hold=100ms", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
			t.Errorf("headers %v, want an event stream that proxies must not buffer", resp.Header)
		}
		var data []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data = append(data, d)
			}
		}
		if len(data) != 2 || !strings.HasPrefix(data[0], `{"n":1,`) || !strings.HasPrefix(data[1], `{"n":2,`) {
			t.Fatalf("probe events %q, want n 1 and 2", data)
		}
		var second struct{ MS int64 }
		json.Unmarshal([]byte(data[1]), &second)
		if second.MS < 100 {
			t.Errorf("the second event was sent after %d ms, want the 100 ms hold", second.MS)
		}
	})
	t.Run("poll", func(t *testing.T) {
		code, typ, body := get(t, base, "/api/probe/poll?wait=50ms")
		var got struct {
			WaitedMS int64 `json:"waited_ms"`
		}
		if code != 200 || typ != "application/json" || json.Unmarshal(body, &got) != nil || got.WaitedMS < 50 {
			t.Errorf("poll: %d %s %s, want waited_ms >= 50", code, typ, body)
		}
	})
	t.Run("bad durations", func(t *testing.T) {
		for _, path := range []string{"/api/probe/sse?hold=11s", "/api/probe/poll?wait=soon", "/api/probe/poll?wait=-1s", "/api/probe/idle?max=1h"} {
			if code, _, body := get(t, base, path); code != 400 && code != 426 {
				t.Errorf("GET %s: %d %s, want 400", path, code, body)
			}
		}
	})
	t.Run("idle", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, streamtest.WSURL(base, "/api/probe/idle?max=300ms"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		start := time.Now()
		_, msg, err := c.Read(ctx)
		if code := websocket.CloseStatus(err); code != websocket.StatusNormalClosure || msg != nil {
			t.Errorf("idle probe: %q, %v; want nothing, then 1000", msg, err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("idle probe closed after %s, before its max", d)
		}
	})
	t.Run("idle closed by the server", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, streamtest.WSURL(base, "/api/probe/idle"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		read := make(chan error, 1)
		go func() {
			_, _, err := c.Read(context.Background())
			read <- err
		}()
		srv.Close()
		if code := websocket.CloseStatus(<-read); code != websocket.StatusGoingAway {
			t.Errorf("idle probe at Server.Close: %v, want 1001", code)
		}
	})
}
