-- 0004: jobs whose runner could not store all of their output (a full
-- disk, a database locked past the retry): set from the exit event, whose
-- stored JSON carries the same flag and reason.

ALTER TABLE jobs ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN incomplete_reason TEXT NOT NULL DEFAULT '';
