-- 0001: jobs and their event logs in chunk rows.

CREATE TABLE jobs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	uid         TEXT    NOT NULL UNIQUE,
	name        TEXT    NOT NULL DEFAULT '',
	command     TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
	cwd         TEXT    NOT NULL DEFAULT '',
	host        TEXT    NOT NULL DEFAULT '',
	status      TEXT    NOT NULL,
	exit_code   INTEGER,
	signal      TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER, -- unix microseconds
	started_at  INTEGER,
	finished_at INTEGER,
	last_seq    INTEGER NOT NULL DEFAULT 0,
	last_line   INTEGER NOT NULL DEFAULT 0
);

-- RecoverLost: running jobs of one host.
CREATE INDEX jobs_running_host ON jobs (host) WHERE status = 'running';

-- One row per contiguous seq range of one job's events; body is last so
-- that reading the other columns does not load its overflow pages.
CREATE TABLE chunks (
	job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	first_seq  INTEGER NOT NULL,
	last_seq   INTEGER NOT NULL,
	first_line INTEGER NOT NULL DEFAULT 0, -- 0: the chunk has no line event
	last_line  INTEGER NOT NULL DEFAULT 0,
	n          INTEGER NOT NULL,
	body       BLOB    NOT NULL,
	UNIQUE (job_id, first_seq),
	CHECK (first_seq >= 1 AND n = last_seq - first_seq + 1)
);

-- Events: seek to the chunk holding seq after+1 without scanning the
-- chunks before it.
CREATE INDEX chunks_job_last_seq ON chunks (job_id, last_seq);
