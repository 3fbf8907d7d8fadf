package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
	"github.com/jobrun/jobrun/stream"
)

// agentFlags are serve's flags about jobs reported by agents (exec
// --server).
func agentFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "agent-timeout", Value: store.DefaultAgentTimeout,
			Usage: "a running job whose agent (jobrun exec --server) is silent this long shows as unreachable"},
		&cli.DurationFlag{Name: "lost-after", Value: time.Hour,
			Usage: "a job whose agent is silent this long is ended as lost; its agent's later reports are refused"},
	}
}

// checkAgentFlags validates agentFlags. Agents send a heartbeat every
// heartbeat (0: the default 20 s), so a shorter agent timeout would show
// connected agents as unreachable.
func checkAgentFlags(c *cli.Context, heartbeat time.Duration) error {
	if heartbeat <= 0 {
		heartbeat = 20 * time.Second
	}
	timeout, lost := c.Duration("agent-timeout"), c.Duration("lost-after")
	if timeout < 2*heartbeat {
		return usageError("serve: --agent-timeout %s is too short: agents send a heartbeat every %s, so give them at least %s",
			timeout, heartbeat, 2*heartbeat)
	}
	if lost < timeout {
		return usageError("serve: --lost-after %s is shorter than --agent-timeout %s", lost, timeout)
	}
	return nil
}

// expireAgents ends the jobs whose agents have been silent for longer than
// lostAfter as lost, and publishes their exit events, until ctx ends. On
// PostgreSQL one replica at a time does it (ExpireAgents takes a lock),
// and the others hear of the exit through the database.
func expireAgents(ctx context.Context, db serverStore, hub *stream.Hub, lostAfter time.Duration, logger *slog.Logger) {
	t := time.NewTicker(min(5*time.Second, max(lostAfter/10, 100*time.Millisecond)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		expired, err := db.ExpireAgents(ctx, time.Now().Add(-lostAfter))
		for _, e := range expired {
			logger.Warn("agent silent for longer than --lost-after; job ended as lost", "job", e.ID, "lost_after", lostAfter)
			hub.Publish(e.ID, []jobs.Event{e.Exit})
		}
		if err != nil && ctx.Err() == nil {
			logger.Warn("expire agent jobs", "err", err)
		}
	}
}
