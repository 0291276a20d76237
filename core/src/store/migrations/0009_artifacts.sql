-- Artifacts a build's jobs uploaded (files under DATA/artifacts/BUILD/), kept
-- until they expire, and the per-repository cache of `actions/cache`
-- (files under DATA/cache/REPO/), evicted least recently used first.
CREATE TABLE artifacts (
    build_id   TEXT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    files      INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (build_id, name)
);
CREATE INDEX artifacts_by_expiry ON artifacts(expires_at);

CREATE TABLE cache_entries (
    repo_id      TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    -- A hash of the cached paths: the same key saved for other paths is
    -- another entry, as with GitHub's cache service.
    version      TEXT NOT NULL,
    file         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, key, version)
);
CREATE INDEX cache_by_use ON cache_entries(last_used_at);
