-- Embeddings of code definitions for similar-code retrieval. Every row belongs to ONE
-- repository; queries always filter by repo, so snippets never cross repositories.
-- ``last_seen`` drives garbage collection of moved or deleted definitions.
CREATE TABLE code_vectors (
    repo         TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    line_start   INTEGER NOT NULL,
    line_end     INTEGER NOT NULL,
    content_hash TEXT    NOT NULL,
    content      TEXT    NOT NULL,
    model        TEXT    NOT NULL,
    embedding    BLOB    NOT NULL,
    last_seen    REAL    NOT NULL,
    PRIMARY KEY (repo, path, name, line_start)
) STRICT;
CREATE INDEX code_vectors_seen ON code_vectors (repo, last_seen);
