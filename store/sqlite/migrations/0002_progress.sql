-- 0002: the latest progress of each job, its ETA state, and the indexes
-- that find past runs of the same command for expected_seconds.

ALTER TABLE jobs ADD COLUMN progress_percent REAL;           -- NULL: no progress reported
ALTER TABLE jobs ADD COLUMN progress_message TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN progress_time INTEGER;           -- unix microseconds of the last progress event
ALTER TABLE jobs ADD COLUMN progress_state TEXT NOT NULL DEFAULT '';
-- progress.Estimate: the start of the current estimate and the
-- smoothed rate in percent per second (the last value is the columns above).
ALTER TABLE jobs ADD COLUMN progress_base_percent REAL;
ALTER TABLE jobs ADD COLUMN progress_base_time INTEGER;
ALTER TABLE jobs ADD COLUMN progress_rate REAL;

-- expected_seconds: the latest succeeded runs with the same name, or the
-- same command and working directory.
CREATE INDEX jobs_succeeded_name ON jobs (name, id) WHERE status = 'succeeded';
CREATE INDEX jobs_succeeded_command ON jobs (command, cwd, id) WHERE status = 'succeeded';
