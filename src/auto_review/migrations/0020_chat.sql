-- Chat: which comment each reply answers (idempotency), one-time notices, model-spending usage
-- (rate limits) and approval overrides recorded on a PR.

-- One row per command of a comment that was taken on; the primary key makes a redelivered or
-- re-polled comment a no-op. state: 'started' while running, 'done' once answered. holder names
-- the service instance (process) that took it, so a claim left by a killed process is retaken.
CREATE TABLE chat_replies (
    repo          TEXT    NOT NULL,
    comment_kind  TEXT    NOT NULL,
    comment_id    INTEGER NOT NULL,
    command_index INTEGER NOT NULL,
    number        INTEGER NOT NULL,
    author        TEXT    NOT NULL,
    command       TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('started', 'done')),
    reply_ref     TEXT,
    holder        TEXT    NOT NULL DEFAULT '',
    created_at    REAL    NOT NULL,
    PRIMARY KEY (repo, comment_kind, comment_id, command_index)
) STRICT;

-- Notices sent at most once per (repo, PR, user, kind, window): permission refusals, rate-limit
-- notes. bucket is 0 for "once ever", else an hour bucket.
CREATE TABLE chat_notices (
    repo       TEXT    NOT NULL,
    number     INTEGER NOT NULL,
    login      TEXT    NOT NULL,
    notice     TEXT    NOT NULL,
    bucket     INTEGER NOT NULL,
    created_at REAL    NOT NULL,
    PRIMARY KEY (repo, number, login, notice, bucket)
) STRICT;

-- Each accepted model-spending command; counted over the last hour per user and per PR.
CREATE TABLE chat_usage (
    id      INTEGER PRIMARY KEY,
    repo    TEXT    NOT NULL,
    number  INTEGER NOT NULL,
    login   TEXT    NOT NULL,
    command TEXT    NOT NULL,
    at      REAL    NOT NULL
) STRICT;
CREATE INDEX chat_usage_login_at ON chat_usage (login, at);
CREATE INDEX chat_usage_pr_at ON chat_usage (repo, number, at);

-- Approval overrides: who overrode the bot's requested changes on which head, and why.
CREATE TABLE chat_overrides (
    id         INTEGER PRIMARY KEY,
    repo       TEXT    NOT NULL,
    number     INTEGER NOT NULL,
    head_sha   TEXT    NOT NULL,
    login      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    review_id  INTEGER NOT NULL,
    approval_id INTEGER,
    created_at REAL    NOT NULL
) STRICT;
CREATE INDEX chat_overrides_pr ON chat_overrides (repo, number);
