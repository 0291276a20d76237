-- Concurrency groups: whether a build's workflow-level group cancels the
-- build in progress (the group's name is in builds.concurrency). Job-level
-- groups are read from the job's spec.
ALTER TABLE builds ADD COLUMN cancel_in_progress INTEGER NOT NULL DEFAULT 0;
CREATE INDEX builds_by_concurrency ON builds(repo_id, concurrency) WHERE concurrency IS NOT NULL;
