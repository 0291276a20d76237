-- Mirrors: a repository fetched from, or pushed to, another host, and its health.
CREATE TABLE mirrors (
    repo_id       TEXT PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('pull', 'push')),
    url           TEXT NOT NULL,
    allow_http    INTEGER NOT NULL DEFAULT 0,
    interval_secs INTEGER NOT NULL,
    branches      TEXT,
    state         TEXT NOT NULL CHECK (state IN ('new', 'syncing', 'ok', 'retrying', 'failing', 'paused', 'archived')),
    progress      TEXT,
    last_success  INTEGER,
    last_attempt  INTEGER,
    last_error    TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    next_attempt  INTEGER NOT NULL,
    last_bytes    INTEGER,
    last_refs     INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX mirrors_by_next ON mirrors(next_attempt);
