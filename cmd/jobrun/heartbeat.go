package main

import (
	"fmt"
	"os"
	"time"
)

// heartbeatFromEnv returns the stream heartbeat interval that the hidden
// JOBRUN_HEARTBEAT (a Go duration such as "1s", 100ms..10m) asks for, or 0
// for the server's default (20 s). Tests set it so that a page notices a
// paused server within seconds.
func heartbeatFromEnv() (time.Duration, error) {
	v := os.Getenv("JOBRUN_HEARTBEAT")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
		return 0, fmt.Errorf("JOBRUN_HEARTBEAT=%q: want a duration from 100ms to 10m", v)
	}
	return d, nil
}
