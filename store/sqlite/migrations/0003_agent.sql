-- 0003: jobs reported by agents (jobrun exec --server) over /api/ingest.

-- 1 for a job an agent reported: its runner lives elsewhere, so RecoverLost
-- (the runner-lock check) never applies to it.
ALTER TABLE jobs ADD COLUMN agent INTEGER NOT NULL DEFAULT 0;

-- Unix microseconds: when the server last heard from the job's agent. A
-- running agent job silent for longer than the agent timeout reads as
-- "unreachable"; after --lost-after the server ends it as lost.
ALTER TABLE jobs ADD COLUMN last_heard INTEGER;

-- ExpireAgents: running agent jobs by last_heard.
CREATE INDEX jobs_running_agent ON jobs (last_heard) WHERE status = 'running' AND agent = 1;
