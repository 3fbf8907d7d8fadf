package ingest

import (
	"time"

	"github.com/jobrun/jobrun/jobs"
)

// The ingest protocol (docs/protocol.md, "Agents: /api/ingest"): an agent
// (jobrun exec --server) reports one job per WebSocket connection.
//
//	agent  -> server  {"type":"hello","job":{uid,name,command,cwd,host,created_at,started_at}}
//	server -> agent   {"type":"welcome","id":N,"last_seq":M,"heartbeat_ms":H}
//	agent  -> server  {"type":"events","events":[...]}        (seq from M+1, or any resend)
//	server -> agent   {"type":"ack","seq":S}                  (every seq <= S is committed)
//	either way        {"type":"heartbeat"}                    (every H ms)
//	server -> agent   {"type":"cancel"}                       (a viewer canceled the job)
//
// Errors close the connection with a code and a reason.

// Message types of the ingest protocol.
const (
	msgHello     = "hello"
	msgWelcome   = "welcome"
	msgEvents    = "events"
	msgAck       = "ack"
	msgHeartbeat = "heartbeat"
	msgCancel    = "cancel"
)

// Limits of the ingest endpoint, documented in docs/protocol.md.
const (
	// MaxMessage is the largest message the server reads.
	MaxMessage = 16 << 20
	// MaxEvents is the most events one events message may carry.
	MaxEvents = 8192
)

// message is every message of the protocol, both ways; Type says
// which fields are set.
type message struct {
	Type      string       `json:"type"`
	Job       *helloJob    `json:"job,omitempty"`
	Events    []jobs.Event `json:"events,omitempty"`
	ID        jobs.ID      `json:"id,omitempty"`
	LastSeq   *jobs.Seq    `json:"last_seq,omitempty"`
	Seq       jobs.Seq     `json:"seq,omitempty"`
	Heartbeat int64        `json:"heartbeat_ms,omitempty"`
}

// helloJob is the job's metadata in a hello: what the agent knows when it
// starts the job.
type helloJob struct {
	UID       jobs.UID   `json:"uid"`
	Name      string     `json:"name"`
	Command   []string   `json:"command"`
	Cwd       string     `json:"cwd"`
	Host      string     `json:"host"`
	CreatedAt time.Time  `json:"created_at"`
	StartedAt *time.Time `json:"started_at"`
}

func helloOf(j jobs.Job) *helloJob {
	return &helloJob{UID: j.UID, Name: j.Name, Command: j.Command, Cwd: j.Cwd, Host: j.Host,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt}
}

func (h *helloJob) job() jobs.Job {
	return jobs.Job{UID: h.UID, Name: h.Name, Command: h.Command, Cwd: h.Cwd, Host: h.Host,
		CreatedAt: h.CreatedAt, StartedAt: h.StartedAt}
}
