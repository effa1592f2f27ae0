-- Automatic reviews paused on a PR (a row present = paused).
CREATE TABLE pr_pauses (
    repo      TEXT    NOT NULL,
    number    INTEGER NOT NULL,
    paused_by TEXT    NOT NULL,
    paused_at REAL    NOT NULL,
    PRIMARY KEY (repo, number)
) STRICT;
