-- Pull requests the bot has seen (PR events, CI triggers, reviews), with the chat poller's
-- cursors: the highest comment id already looked at, per comment kind. NULL = not yet seeded.
CREATE TABLE tracked_prs (
    owner          TEXT NOT NULL,
    repo           TEXT NOT NULL,
    number         INTEGER NOT NULL,
    head_sha       TEXT,
    is_open        INTEGER NOT NULL DEFAULT 1,
    draft          INTEGER NOT NULL DEFAULT 0,
    issue_cursor   INTEGER,
    review_cursor  INTEGER,
    refreshed_at   REAL NOT NULL,
    updated_at     REAL NOT NULL,
    PRIMARY KEY (owner, repo, number)
) STRICT;
CREATE INDEX tracked_prs_open ON tracked_prs (is_open);
