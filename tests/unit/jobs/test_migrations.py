"""The jobs table rebuild (0006) keeps existing rows, their ids, and the id sequence."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from auto_review.hosts import HeadSha, RepoRef
from auto_review.jobs import SqliteJobQueue
from auto_review.review import Trigger
from auto_review.store import Store, _split_sql, known_migrations


def test_jobs_rebuild_keeps_rows_and_continues_ids(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at REAL NOT NULL)"
    )
    for migration in known_migrations():
        if migration.version > 5:
            break
        for statement in _split_sql(migration.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time()),
        )
    conn.execute(
        "INSERT INTO jobs (id, kind, state, owner, repo, number, head_sha, trigger, max_attempts,"
        " not_before, created_at, updated_at, full) VALUES (41, 'review', 'failed', 'a', 'b', 1,"
        " ?, 'ci', 3, 0, 0, 0, 1)",
        ("a" * 40,),
    )
    conn.close()
    store = Store.open(path)  # applies 0006
    queue = SqliteJobQueue(store)
    old = queue.get(41)
    assert old is not None
    assert (old.head_sha, old.full) == ("a" * 40, True)
    new = queue.enqueue_review(
        RepoRef("a", "b"), 2, HeadSha("b" * 40), trigger=Trigger.CI, force=False
    )
    assert new.job_id == 42
