-- Builds: one per workflow planned for an event (or run by hand), one row per
-- job, its steps and annotations. Events gain a mark once they are planned.
ALTER TABLE events ADD COLUMN planned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_unplanned ON events(planned, id);

CREATE TABLE builds (
    id            TEXT PRIMARY KEY,
    repo_id       TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    event_id      TEXT REFERENCES events(id) ON DELETE SET NULL,
    number        INTEGER NOT NULL,
    workflow_file TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    title         TEXT NOT NULL,
    trigger       TEXT NOT NULL,
    git_ref       TEXT NOT NULL,
    sha           TEXT NOT NULL,
    status        TEXT NOT NULL,
    error         TEXT,
    concurrency   TEXT,
    context       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    UNIQUE (repo_id, workflow_file, number)
);
CREATE INDEX builds_by_repo ON builds(repo_id, id);
CREATE INDEX builds_by_status ON builds(status);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    build_id    TEXT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    needs       TEXT NOT NULL,
    executor    TEXT NOT NULL,
    spec        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 1,
    reason      TEXT,
    outputs     TEXT NOT NULL DEFAULT '{}',
    -- The running step's process group and the host's boot time, so a
    -- restart can stop what a crashed agent left running.
    pgid        INTEGER,
    boot_time   INTEGER,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX jobs_by_build ON jobs(build_id);
CREATE INDEX jobs_by_status ON jobs(status);

CREATE TABLE steps (
    job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (job_id, number)
);

CREATE TABLE annotations (
    id         INTEGER PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL,
    file       TEXT,
    line       INTEGER,
    log_line   INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX annotations_by_job ON annotations(job_id);
