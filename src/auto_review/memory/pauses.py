"""Whether automatic reviews are paused on a PR (``@bot pause`` / ``@bot resume``).

A paused PR gets no *automatic* review (CI trigger, PR events); an explicit ``@bot review`` from
a user with write access still runs. The queue or the pipeline calls ``is_paused`` before an
automatic review; chat is the only writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from auto_review.hosts import RepoRef
from auto_review.store import Store

__all__ = ["is_paused", "set_paused"]


def is_paused(store: Store, repo: RepoRef, number: int) -> bool:
    """True when automatic reviews of ``repo#number`` are paused."""
    with store.read() as conn:
        row = conn.execute(
            "SELECT 1 FROM pr_pauses WHERE repo = ? AND number = ?", (repo.full_name, number)
        ).fetchone()
    return row is not None


def set_paused(
    store: Store,
    repo: RepoRef,
    number: int,
    *,
    paused: bool,
    by: str,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Pause or resume; returns True when the state changed (False: it already was so)."""
    with store.write() as conn:
        if paused:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO pr_pauses (repo, number, paused_by, paused_at)"
                " VALUES (?, ?, ?, ?)",
                (repo.full_name, number, by, clock()),
            )
        else:
            cursor = conn.execute(
                "DELETE FROM pr_pauses WHERE repo = ? AND number = ?", (repo.full_name, number)
            )
        return cursor.rowcount > 0
