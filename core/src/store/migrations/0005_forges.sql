-- Forges (GitHub, GitLab accounts), the repositories hosted there that this
-- agent mirrors and builds, webhook deliveries, pull requests, and the
-- outbox of commit statuses to report back. Tokens and webhook secrets live
-- in the SecretStore, never here.
CREATE TABLE forges (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    provider    TEXT NOT NULL CHECK (provider IN ('github', 'gitlab')),
    base_url    TEXT NOT NULL,
    allow_http  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE hosted_repos (
    repo_id     TEXT PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,
    forge_id    TEXT NOT NULL REFERENCES forges(id),
    -- OWNER/NAME on GitHub, GROUP/.../NAME on GitLab.
    remote      TEXT NOT NULL,
    web_url     TEXT,
    hook_id     TEXT,
    hook_url    TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (forge_id, remote)
);

CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,
    provider     TEXT NOT NULL,
    hook_id      TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    forge_id     TEXT REFERENCES forges(id) ON DELETE SET NULL,
    event        TEXT NOT NULL,
    body         BLOB NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'done', 'ignored', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    result       TEXT,
    received_at  INTEGER NOT NULL,
    processed_at INTEGER,
    UNIQUE (provider, hook_id, delivery_id)
);
CREATE INDEX deliveries_pending ON deliveries(state, next_attempt);

CREATE TABLE pulls (
    repo_id     TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    forge_id    TEXT NOT NULL REFERENCES forges(id),
    title       TEXT NOT NULL,
    author      TEXT NOT NULL,
    head_ref    TEXT NOT NULL,
    head_sha    TEXT NOT NULL,
    base_ref    TEXT NOT NULL,
    base_sha    TEXT,
    state       TEXT NOT NULL,
    url         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (repo_id, number)
);

-- The outbox: one row per job and forge state, written by the same
-- transaction that changes the job (these triggers), sent by the agent later.
CREATE TABLE commit_statuses (
    id           INTEGER PRIMARY KEY,
    job_id       TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'success', 'failure', 'error')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    sent_at      INTEGER,
    created_at   INTEGER NOT NULL,
    UNIQUE (job_id, state)
);
CREATE INDEX commit_statuses_unsent ON commit_statuses(sent_at, id);

CREATE TRIGGER jobs_status_insert AFTER INSERT ON jobs
WHEN EXISTS (SELECT 1 FROM builds b JOIN hosted_repos h ON h.repo_id = b.repo_id WHERE b.id = NEW.build_id)
BEGIN
    INSERT OR IGNORE INTO commit_statuses (job_id, state, next_attempt, created_at)
    VALUES (NEW.id,
            CASE NEW.status WHEN 'queued' THEN 'pending' WHEN 'running' THEN 'pending'
                 WHEN 'success' THEN 'success' WHEN 'skipped' THEN 'success'
                 WHEN 'failure' THEN 'failure' ELSE 'error' END,
            CAST(strftime('%s', 'now') AS INTEGER) * 1000,
            CAST(strftime('%s', 'now') AS INTEGER) * 1000);
END;

CREATE TRIGGER jobs_status_update AFTER UPDATE OF status ON jobs
WHEN NEW.status <> OLD.status
 AND EXISTS (SELECT 1 FROM builds b JOIN hosted_repos h ON h.repo_id = b.repo_id WHERE b.id = NEW.build_id)
BEGIN
    INSERT OR IGNORE INTO commit_statuses (job_id, state, next_attempt, created_at)
    VALUES (NEW.id,
            CASE NEW.status WHEN 'queued' THEN 'pending' WHEN 'running' THEN 'pending'
                 WHEN 'success' THEN 'success' WHEN 'skipped' THEN 'success'
                 WHEN 'failure' THEN 'failure' ELSE 'error' END,
            CAST(strftime('%s', 'now') AS INTEGER) * 1000,
            CAST(strftime('%s', 'now') AS INTEGER) * 1000);
END;
