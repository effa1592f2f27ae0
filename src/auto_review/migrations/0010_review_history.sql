-- One row per finished review run: what was reviewed, what was decided, what it cost.
CREATE TABLE review_runs (
    id                INTEGER PRIMARY KEY,
    repo              TEXT    NOT NULL,
    number            INTEGER NOT NULL,
    head_sha          TEXT    NOT NULL,
    outcome           TEXT    NOT NULL,
    event             TEXT,
    errors            INTEGER NOT NULL DEFAULT 0,
    warnings          INTEGER NOT NULL DEFAULT 0,
    notes             INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL    NOT NULL DEFAULT 0,
    finished_at       REAL    NOT NULL
) STRICT;
CREATE INDEX review_runs_pr ON review_runs (repo, number, id);

-- Findings the bot posted on a PR, so incremental reviews keep earlier blocking findings alive
-- while their code is unchanged. ``evidence`` is the quoted code (untrusted text).
CREATE TABLE review_findings (
    repo        TEXT    NOT NULL,
    number      INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    line        INTEGER NOT NULL,
    severity    TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    evidence    TEXT    NOT NULL,
    head_sha    TEXT    NOT NULL,
    posted_at   REAL    NOT NULL,
    PRIMARY KEY (repo, number, fingerprint)
) STRICT;
