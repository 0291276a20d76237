-- Sync sources: a forge list (a user's starred repos, an organization's or
-- group's repos) polled with ETags; each listed repository gets a pull mirror.
CREATE TABLE mirror_sources (
    id            TEXT PRIMARY KEY,
    forge_id      TEXT NOT NULL REFERENCES forges(id),
    kind          TEXT NOT NULL CHECK (kind IN ('starred', 'org')),
    -- The user, organization or group (GitLab groups may nest: a/b).
    target        TEXT NOT NULL,
    interval_secs INTEGER NOT NULL,
    public        INTEGER NOT NULL DEFAULT 0,
    next_poll     INTEGER NOT NULL,
    last_poll     INTEGER,
    last_success  INTEGER,
    last_error    TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    -- Polls answered 304 (nothing changed) in a row.
    unchanged     INTEGER NOT NULL DEFAULT 0,
    repo_count    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    UNIQUE (forge_id, kind, target)
);

-- The last answer per page: its ETag (sent as If-None-Match), the next
-- page's path, and the repositories it listed (reused when it answers 304).
CREATE TABLE mirror_source_pages (
    source_id TEXT NOT NULL REFERENCES mirror_sources(id) ON DELETE CASCADE,
    page      INTEGER NOT NULL,
    path      TEXT NOT NULL,
    etag      TEXT,
    next_path TEXT,
    repos     TEXT NOT NULL,
    PRIMARY KEY (source_id, page)
);

-- Repositories a source listed and the local mirror made for each.
CREATE TABLE mirror_source_repos (
    source_id TEXT NOT NULL REFERENCES mirror_sources(id) ON DELETE CASCADE,
    remote    TEXT NOT NULL,
    repo_id   TEXT REFERENCES repos(id) ON DELETE SET NULL,
    listed    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (source_id, remote)
);
CREATE INDEX mirror_source_repos_by_repo ON mirror_source_repos(repo_id);
