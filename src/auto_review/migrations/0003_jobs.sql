-- The durable job queue: review and chat jobs, one row each, never deleted by the queue itself.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL CHECK (kind IN ('review', 'chat')),
    state        TEXT NOT NULL
                 CHECK (state IN ('queued', 'running', 'done', 'failed', 'superseded', 'cancelled')),
    owner        TEXT NOT NULL,
    repo         TEXT NOT NULL,
    number       INTEGER NOT NULL,
    head_sha     TEXT,
    trigger      TEXT NOT NULL,
    force        INTEGER NOT NULL DEFAULT 0,
    comment_id   INTEGER,
    comment_kind TEXT,
    author       TEXT,
    body         TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    not_before   REAL NOT NULL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    result       TEXT,
    reason       TEXT,
    -- 1 while a final commit status `error` is owed to the PR head and not yet posted.
    status_owed  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX jobs_state ON jobs (state, not_before, id);
CREATE INDEX jobs_pr ON jobs (owner, repo, number, kind, state);
-- The webhook and the poller may both see a comment; it becomes at most one chat job.
CREATE UNIQUE INDEX jobs_chat_comment ON jobs (comment_kind, comment_id) WHERE kind = 'chat';

-- One row per finished review job: what happened to which head, and what it cost.
CREATE TABLE review_outcomes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id            INTEGER,
    owner             TEXT NOT NULL,
    repo              TEXT NOT NULL,
    number            INTEGER NOT NULL,
    head_sha          TEXT NOT NULL,
    trigger           TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    reason            TEXT NOT NULL,
    errors            INTEGER NOT NULL DEFAULT 0,
    warnings          INTEGER NOT NULL DEFAULT 0,
    notes             INTEGER NOT NULL DEFAULT 0,
    dropped           INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0,
    duration_secs     REAL NOT NULL DEFAULT 0,
    finished_at       REAL NOT NULL
) STRICT;
CREATE INDEX review_outcomes_pr ON review_outcomes (owner, repo, number, finished_at);
