-- Repository-scoped learnings: notes maintainers ask the bot to keep in mind for one repository.
-- The text is untrusted data: prompts frame it as such, it never becomes an instruction.
CREATE TABLE learnings (
    id         INTEGER PRIMARY KEY,
    repo       TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    number     INTEGER,
    created_at REAL    NOT NULL
) STRICT;
CREATE INDEX learnings_repo ON learnings (repo, id);
