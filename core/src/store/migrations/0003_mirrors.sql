-- Mirrors (a repository fetched from, or pushed to, another host) and the
-- forge lists (starred repos, organizations) that create them.
CREATE TABLE mirror_sources (
    id            TEXT PRIMARY KEY,
    forge         TEXT NOT NULL CHECK (forge IN ('github', 'gitlab')),
    kind          TEXT NOT NULL CHECK (kind IN ('starred', 'org')),
    name          TEXT NOT NULL,
    api_url       TEXT NOT NULL,
    interval_secs INTEGER NOT NULL,
    delete_missing INTEGER NOT NULL DEFAULT 0,
    allow_http    INTEGER NOT NULL DEFAULT 0,
    etag          TEXT,
    last_poll     INTEGER,
    last_error    TEXT,
    next_poll     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (forge, kind, name, api_url)
);

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
    source_id     TEXT REFERENCES mirror_sources(id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX mirrors_by_next ON mirrors(next_attempt);
CREATE INDEX mirrors_by_source ON mirrors(source_id);
