// Package benchws is what the benchmark tools share: reading a job's
// WebSocket stream to its end as a careful client would.
package benchws

import (
	"bytes"
	"context"

	"github.com/coder/websocket"
)

// DialCount opens a job stream (ws://.../api/jobs/N/stream?after=0) and
// counts its events (Count).
func DialCount(ctx context.Context, url string) (int, error) {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return 0, err
	}
	return Count(ctx, c)
}

// Count reads a stream to its end (close 1000) and returns how many events
// it carried, reading each message into one reused buffer. It closes c.
func Count(ctx context.Context, c *websocket.Conn) (int, error) {
	defer c.CloseNow()
	c.SetReadLimit(256 << 20)
	n := 0
	var buf bytes.Buffer
	for {
		_, r, err := c.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return n, nil
			}
			return n, err
		}
		n += bytes.Count(buf.Bytes(), []byte(`{"seq":`))
	}
}
